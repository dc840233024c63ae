using System.Text.Json;
using Concord.Engine;
using Concord.Lab.Checkers;
using Concord.Lab.Checkers.Linearizability;
using Concord.Lab.History;
using Concord.Server.Dashboard;

namespace Concord.Server.Tests.Dashboard;

public sealed class JournalHistoryTests
{
    private const string Ns = "t";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static JsonElement J(object value) => JsonSerializer.SerializeToElement(value);

    private static LinearizabilityResult Check(OperationJournal journal)
    {
        var (history, _) = JournalHistory.Build(journal.Snapshot(Ns));
        return LinearizabilityChecker.Check(history, new LinearizabilityOptions { Model = LinearizabilityModel.Register }, Ct);
    }

    [Fact]
    public async Task ConcurrentReadersAndWriters_OnTheEngine_AreLinearizable_AndTheHistoryRoundTrips()
    {
        await using var engine = ConcordEngine.CreateInMemory(new ConcordEngineOptions { StrictMode = false });
        var journal = new OperationJournal(engine, new DashboardOptions());
        await Task.WhenAll(Enumerable.Range(0, 6).Select(i => Task.Run(async () =>
        {
            var session = new ConcordSession(journal, Ns, $"agent-{i}");
            for (var k = 0; k < 50; k++)
            {
                var key = $"k{(i + k) % 3}";
                if (k % 3 == 0) await session.DeleteAsync(key, cancellationToken: Ct);
                else if (k % 2 == 0) await session.PutAsync(key, J(k), cancellationToken: Ct);
                else await session.GetAsync(key, Ct);
            }
        }, Ct)));

        var (history, _) = JournalHistory.Build(journal.Snapshot(Ns));
        var result = LinearizabilityChecker.Check(history, new LinearizabilityOptions { Model = LinearizabilityModel.Register }, Ct);
        Assert.Equal(Verdict.Valid, result.Verdict);
        Assert.Equal(3, result.Keys.Count);

        var text = HistoryWriter.Format(history);
        var reread = HistoryReader.Parse(text);
        Assert.Equal(history.Operations.Count, reread.Operations.Count);
        Assert.Equal("register", reread.Meta.Model);
    }

    [Fact]
    public async Task KeysOlderThanTheJournal_AndEvictedWindows_DoNotLookLikeViolations()
    {
        await using var engine = ConcordEngine.CreateInMemory(new ConcordEngineOptions { StrictMode = false });
        await engine.PutAsync(Ns, "old", J("before the server"), cancellationToken: Ct); // never seen by the journal
        var journal = new OperationJournal(engine, new DashboardOptions { JournalCapacity = 100 });
        var session = new ConcordSession(journal, Ns, "a");
        for (var i = 0; i < 400; i++)
        {
            await session.GetAsync("old", Ct);
            await session.PutAsync($"k{i % 5}", J(i), cancellationToken: Ct);
            await session.GetAsync($"k{(i + 1) % 5}", Ct);
        }
        var result = Check(journal);
        Assert.Equal(Verdict.Valid, result.Verdict);
        Assert.Contains(journal.Snapshot(Ns).Baselines.Keys, k => k.StartsWith('k'));
    }

    [Fact]
    public async Task StaleReads_FromAStoreThatIsNotLinearizable_AreCaught()
    {
        await using var engine = ConcordEngine.CreateInMemory(new ConcordEngineOptions { StrictMode = false });
        var journal = new OperationJournal(new StaleReadStore(engine), new DashboardOptions());
        var session = new ConcordSession(journal, Ns, "a");
        await session.PutAsync("k", J(1), cancellationToken: Ct);
        await session.GetAsync("k", Ct);
        await session.PutAsync("k", J(2), cancellationToken: Ct);
        await session.GetAsync("k", Ct); // the broken store answers with version 1 after version 2 was acknowledged

        var result = Check(journal);
        Assert.Equal(Verdict.Invalid, result.Verdict);
        Assert.Contains("k", result.Explanation, StringComparison.Ordinal);
    }

    /// <summary>A deliberately broken store: reads return the first version ever read of a key.</summary>
    private sealed class StaleReadStore(IConcordStore inner) : IConcordStore
    {
        private readonly Dictionary<string, ConcordRecord> _first = [];

        public ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default) => inner.GetRevisionAsync(cancellationToken);

        public async ValueTask<ConcordRecord?> GetAsync(string ns, string key, ReadOptions? options = null, CancellationToken cancellationToken = default)
        {
            var record = await inner.GetAsync(ns, key, options, cancellationToken);
            if (record is null) return null;
            lock (_first) return _first.TryGetValue(key, out var first) ? first : _first[key] = record;
        }

        public ValueTask<ListResult> ListAsync(string ns, ListRequest request, CancellationToken cancellationToken = default) => inner.ListAsync(ns, request, cancellationToken);
        public ValueTask<WriteResult> PutAsync(string ns, string key, JsonElement value, WriteOptions? options = null, CancellationToken cancellationToken = default) => inner.PutAsync(ns, key, value, options, cancellationToken);
        public ValueTask<WriteResult> DeleteAsync(string ns, string key, WriteOptions? options = null, CancellationToken cancellationToken = default) => inner.DeleteAsync(ns, key, options, cancellationToken);
        public ValueTask<WriteResult> PatchAsync(string ns, string key, JsonPatch patch, WriteOptions? options = null, CancellationToken cancellationToken = default) => inner.PatchAsync(ns, key, patch, options, cancellationToken);
        public ValueTask<TxnResult> TransactAsync(string ns, TxnRequest request, WriteOptions? options = null, CancellationToken cancellationToken = default) => inner.TransactAsync(ns, request, options, cancellationToken);
        public IAsyncEnumerable<ChangeEvent> WatchAsync(string ns, WatchRequest request, CancellationToken cancellationToken = default) => inner.WatchAsync(ns, request, cancellationToken);
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
