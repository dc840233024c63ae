using System.Collections.Concurrent;
using System.Text.Json;

namespace Concord.Tests.Conformance;

/// <summary>
/// Real-concurrency stress tests, bounded by operation counts (never by time) and ending with integrity checks:
/// exact counts, gap-free distinct versions, conserved totals, complete ordered change feeds.
/// Durable backends scale the counts down through <see cref="StoreTestBase.StressScale"/>.
/// </summary>
[Trait("Category", "Stress")]
public abstract class StoreStressTests : StoreTestBase
{
    private const int Tasks = 32;

    private static readonly RetryOptions Unbounded = new() { MaxAttempts = 1_000_000, BaseDelay = TimeSpan.Zero, MaxDelay = TimeSpan.Zero };

    /// <summary>Runs <paramref name="count"/> workers on the thread pool at once.</summary>
    private static Task Workers(int count, Func<int, Task> body) =>
        Task.WhenAll(Enumerable.Range(0, count).Select(i => Task.Run(() => body(i), Ct)));

    /// <summary>Every applied write of one key got its own version, versions have no gaps, and revisions follow versions.</summary>
    private static void AssertGapFreeHistory(IReadOnlyCollection<(long Version, long Revision, long Value)> applied, long firstVersion)
    {
        var ordered = applied.OrderBy(a => a.Version).ToList();
        Assert.Equal(Enumerable.Range(0, ordered.Count).Select(i => firstVersion + i), ordered.Select(a => a.Version));
        for (var i = 1; i < ordered.Count; i++)
        {
            Assert.True(ordered[i].Revision > ordered[i - 1].Revision, $"version {ordered[i].Version} has revision {ordered[i].Revision}, not after {ordered[i - 1].Revision}");
        }
        Assert.All(ordered, a => Assert.Equal(a.Version - firstVersion + 1, a.Value));
    }

    [Fact]
    public async Task CasIncrements_ManyTasksOnOneKey_ExactCountGapFreeVersionsAndMonotonicReads()
    {
        var perTask = Scaled(1000, 10);
        var store = await OpenStoreAsync();
        await Session(store, "init").PutAsync("counter", N(0), Expect.Absent, cancellationToken: Ct);
        var applied = new ConcurrentBag<(long Version, long Revision, long Value)>();
        var violations = new ConcurrentQueue<string>();
        long conflicts = 0;

        await Workers(Tasks, async worker =>
        {
            var s = Session(store, $"cas-{worker}");
            var current = await s.GetAsync("counter", Ct);
            for (var i = 0; i < perTask; i++)
            {
                while (true)
                {
                    var next = NOf(current) + 1;
                    var w = await s.PutAsync("counter", N(next), Expect.Version(current!.Version), cancellationToken: Ct);
                    if (w.IsApplied)
                    {
                        applied.Add((w.Version, w.Revision, next));
                        current = w.Record;
                        break;
                    }
                    Interlocked.Increment(ref conflicts);
                    if (w.Conflict != ConflictKind.VersionMismatch || w.Record is null || w.Record.Version <= current.Version)
                        violations.Enqueue($"bad conflict after v{current.Version}: {w}");
                    // Having been told about version n, a read must not go back in time.
                    var seen = w.Record!;
                    var read = await s.GetAsync("counter", Ct);
                    if (read is null || read.Version < seen.Version)
                        violations.Enqueue($"read v{read?.Version} after a conflict reported v{seen.Version} (rev {seen.Revision})");
                    var revision = await store.GetRevisionAsync(Ct);
                    if (revision < seen.Revision)
                        violations.Enqueue($"revision {revision} after a conflict reported rev {seen.Revision}");
                    current = read ?? seen;
                }
            }
        });

        Assert.Empty(violations);
        var total = Tasks * perTask;
        Assert.Equal(total, applied.Count);
        AssertGapFreeHistory(applied, firstVersion: 2);
        var final = await Session(store).GetAsync("counter", Ct);
        Assert.Equal(total, NOf(final));
        Assert.Equal(total + 1, final!.Version);
        TestContext.Current.SendDiagnosticMessage($"{total} CAS increments, {conflicts} conflicts");
    }

    [Fact]
    public async Task UpdateAsync_ManyTasksOnOneKey_ExactCountAndGapFreeVersions()
    {
        var perTask = Scaled(250, 5);
        var store = await OpenStoreAsync();
        var applied = new ConcurrentBag<(long Version, long Revision, long Value)>();

        await Workers(Tasks, async worker =>
        {
            var s = Session(store, $"upd-{worker}", options: new SessionOptions { Retry = Unbounded });
            for (var i = 0; i < perTask; i++)
            {
                var result = await s.UpdateAsync("counter", (record, _) =>
                    ValueTask.FromResult<JsonElement?>(N((record is null ? 0 : NOf(record)) + 1)), cancellationToken: Ct);
                Assert.True(result.IsApplied);
                applied.Add((result.Record!.Version, result.Write!.Revision, NOf(result.Record)));
            }
        });

        var total = Tasks * perTask;
        AssertGapFreeHistory(applied, firstVersion: 1);
        Assert.Equal(total, NOf(await Session(store).GetAsync("counter", Ct)));
    }

    [Fact]
    public async Task PatchIncrements_ManyTasksOnOneKey_ExactCountAndGapFreeVersions()
    {
        var perTask = Scaled(1000, 200); // patches never conflict, so a durable backend batches them
        var store = await OpenStoreAsync();
        var applied = new ConcurrentBag<(long Version, long Revision, long Value)>();

        await Workers(Tasks, async worker =>
        {
            var s = Session(store, $"inc-{worker}");
            for (var i = 0; i < perTask; i++)
            {
                var w = await s.PatchAsync("counter", JsonPatch.Create().Increment("/n"), cancellationToken: Ct);
                Assert.True(w.IsApplied);
                applied.Add((w.Version, w.Revision, NOf(w.Record)));
            }
        });

        var total = Tasks * perTask;
        AssertGapFreeHistory(applied, firstVersion: 1);
        var final = await Session(store).GetAsync("counter", Ct);
        Assert.Equal(total, NOf(final));
        Assert.Equal(total, final!.Version);
    }

    [Fact]
    public async Task OptimisticTransfers_ConcurrentAgents_ConserveTheTotalInEverySnapshot()
    {
        const int accounts = 8;
        const long initial = 1000;
        var workers = 16;
        var perWorker = Scaled(200, 20);
        var store = await OpenStoreAsync();
        var admin = Session(store, "admin");
        for (var a = 0; a < accounts; a++) await admin.PutAsync($"acct/{a}", N(initial), Expect.Absent, cancellationToken: Ct);
        var total = accounts * initial;
        long transfers = 0, audits = 0;
        var violations = new ConcurrentQueue<string>();
        using var done = CancellationTokenSource.CreateLinkedTokenSource(Ct);

        var auditors = Enumerable.Range(0, 2).Select(i => Task.Run(async () =>
        {
            var s = Session(store, $"auditor-{i}");
            while (!done.IsCancellationRequested)
            {
                // A consistent snapshot: an optimistic read-only transaction, and a one-revision scan.
                var tx = await s.BeginTransactionAsync(Ct);
                var seen = await tx.ListAsync("acct/", Ct);
                var sum = seen.Sum(NOf);
                if (sum != total) violations.Enqueue($"snapshot at rev {tx.SnapshotRevision} sums to {sum}");
                var page = await s.ListAsync("acct/", cancellationToken: Ct);
                var pageSum = page.Records.Sum(NOf);
                if (pageSum != total) violations.Enqueue($"scan at rev {page.Revision} sums to {pageSum}");
                Interlocked.Increment(ref audits);
            }
        }, Ct)).ToList();

        await Workers(workers, async worker =>
        {
            var s = Session(store, $"teller-{worker}");
            var random = new Random(worker);
            for (var i = 0; i < perWorker; i++)
            {
                var from = random.Next(accounts);
                var to = (from + 1 + random.Next(accounts - 1)) % accounts;
                var amount = 1 + random.Next(300);
                var wrote = false;
                var result = await s.RunTransactionAsync(async (tx, ct) =>
                {
                    wrote = false;
                    var a = NOf(await tx.GetAsync($"acct/{from}", ct));
                    var b = NOf(await tx.GetAsync($"acct/{to}", ct));
                    if (a < amount) return;
                    tx.Put($"acct/{from}", N(a - amount));
                    tx.Put($"acct/{to}", N(b + amount));
                    wrote = true;
                }, Unbounded, cancellationToken: Ct);
                Assert.True(result.Committed, result.Message);
                if (wrote) Interlocked.Increment(ref transfers);
            }
        });
        await done.CancelAsync();
        await Task.WhenAll(auditors);

        Assert.Empty(violations);
        var final = (await admin.ListAsync("acct/", cancellationToken: Ct)).Records;
        Assert.Equal(accounts, final.Count);
        Assert.Equal(total, final.Sum(NOf));
        Assert.All(final, r => Assert.True(NOf(r) >= 0, $"{r.Key} went negative: {NOf(r)}"));
        // Each committed transfer wrote exactly two versions: no write was lost, none applied twice.
        Assert.Equal(2 * transfers, final.Sum(r => r.Version - 1));
        Assert.True(audits > 0);
    }

    [Fact]
    public async Task Watchers_ConcurrentWriters_EachWatcherSeesEveryRevisionOnceInOrder()
    {
        var writers = 8;
        var perWriter = Scaled(250, 100);
        var total = writers * perWriter;
        var store = await OpenStoreAsync();
        var from = await store.GetRevisionAsync(Ct) + 1;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);

        async Task<List<ChangeEvent>> Collect(WatchRequest request, int count)
        {
            var events = new List<ChangeEvent>(count);
            await foreach (var e in store.WatchAsync(Ns, request, cts.Token))
            {
                events.Add(e);
                if (events.Count == count) break;
            }
            return events;
        }

        // Two watchers subscribe before the writes, two join while they run (backlog, then live, under load),
        // and one watches a single key.
        var early = Enumerable.Range(0, 2).Select(_ => Task.Run(() => Collect(new WatchRequest { Prefix = "w/", FromRevision = from }, total), Ct)).ToList();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var keyWrites = new ConcurrentBag<long>();
        var writing = Workers(writers, async worker =>
        {
            var s = Session(store, $"writer-{worker}");
            for (var i = 0; i < perWriter; i++)
            {
                var key = $"w/{worker}/{i % 4}";
                var w = i % 3 == 0
                    ? await s.PatchAsync(key, JsonPatch.Create().Increment("/n"), cancellationToken: Ct)
                    : await s.PutAsync(key, N(i), cancellationToken: Ct);
                Assert.True(w.IsApplied);
                if (key == "w/0/0") keyWrites.Add(w.Revision);
                if (i == perWriter / 4) started.TrySetResult();
            }
        });
        await started.Task.WaitAsync(Ct);
        var late = Enumerable.Range(0, 2).Select(_ => Task.Run(() => Collect(new WatchRequest { Prefix = "w/", FromRevision = from }, total), Ct)).ToList();
        var keyWatcher = Task.Run(() => Collect(new WatchRequest { Key = "w/0/0", FromRevision = from }, (perWriter + 3) / 4), Ct);
        await writing;

        var expected = Enumerable.Range(0, total).Select(i => from + i).ToList();
        foreach (var watcher in early.Concat(late))
        {
            var events = await watcher.WaitAsync(Ct);
            Assert.Equal(expected, events.Select(e => e.Revision));
        }
        var keyEvents = await keyWatcher.WaitAsync(Ct);
        Assert.Equal(keyWrites.Order(), keyEvents.Select(e => e.Revision));
        Assert.Equal(Enumerable.Range(1, keyEvents.Count).Select(v => (long)v), keyEvents.Select(e => e.Record.Version));
        await cts.CancelAsync();
    }

    [Fact]
    public async Task SnapshotReads_WhileHistoryIsCompacted_ReturnTheRecordOrRevisionCompacted()
    {
        RequireRetention();
        var writes = Scaled(4000, 400);
        var store = await OpenStoreAsync(new StoreFixtureOptions { RetainedRevisions = 8 });
        var writer = Session(store, "writer");
        var created = (await writer.PutAsync("hot", N(0), cancellationToken: Ct)).Revision;
        await writer.PutAsync("cold", N(0), cancellationToken: Ct);
        var violations = new ConcurrentQueue<string>();
        long reads = 0, compacted = 0;
        using var done = CancellationTokenSource.CreateLinkedTokenSource(Ct);

        var readers = Enumerable.Range(0, 2).Select(i => Task.Run(async () =>
        {
            var s = Session(store, $"reader-{i}");
            while (!done.IsCancellationRequested)
            {
                var at = Math.Max(created + 1, await store.GetRevisionAsync(Ct) - 7); // the oldest readable: one commit away from compaction
                try
                {
                    // Both keys exist at every revision after creation: a snapshot read may be refused, never empty.
                    if (await s.GetAsync("hot", at, Ct) is null) violations.Enqueue($"'hot' missing at revision {at}");
                    if (await s.GetAsync("cold", at, Ct) is null) violations.Enqueue($"'cold' missing at revision {at}");
                    Interlocked.Increment(ref reads);
                }
                catch (RevisionCompactedException)
                {
                    Interlocked.Increment(ref compacted);
                }
            }
        }, Ct)).ToList();

        for (var i = 1; i <= writes; i++) await writer.PutAsync("hot", N(i), cancellationToken: Ct);
        await done.CancelAsync();
        await Task.WhenAll(readers);

        Assert.Empty(violations.Take(10));
        TestContext.Current.SendDiagnosticMessage($"{reads} snapshot reads, {compacted} refused as compacted");
    }
}
