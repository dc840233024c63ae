using Concord.Engine;
using Concord.Lab.Scenarios;

namespace Concord.Lab.Tests.Scenarios;

public sealed class AccountScenarioTests
{
    private const string Ns = "acct";

    [Fact]
    public async Task Naive_ManySeeds_EveryReportedLossMatchesTheStoreHistory()
    {
        // "Exactly which updates were lost" must be the truth, not a story: check each reported loss against the
        // versions the store actually kept (MVCC reads at every revision).
        var ct = TestContext.Current.CancellationToken;
        var totalLost = 0;
        for (var seed = 0; seed < 25; seed++)
        {
            await using var store = ConcordEngine.CreateInMemory();
            var run = await new AccountScenario(seed).RunAsync(store, Ns, ConcurrencyMode.Naive, strict: false, ct);
            var history = await VersionsAsync(store, ct);

            var kept = AccountScenario.Updates.Count(u => AccountScenario.FieldOf(run.Final, u.Field) == u.Value);
            Assert.Equal(kept, run.Kept);
            Assert.Equal(AccountScenario.Updates.Count - kept, run.Lost.Count);
            foreach (var lost in run.Lost)
            {
                var written = history[lost.Version];
                Assert.Equal(lost.Agent, written.Writer);
                Assert.Equal(lost.Value, AccountScenario.FieldOf(written.Value, lost.Field));
                // The overwriting version is the first one after it without the value, written by the named agent.
                var erasing = history.Values.First(r => r.Version > lost.Version && AccountScenario.FieldOf(r.Value, lost.Field) != lost.Value);
                Assert.Equal(lost.OverwrittenAtVersion, erasing.Version);
                Assert.Equal(lost.OverwrittenBy, erasing.Writer);
                Assert.True(lost.OverwriterReadVersion < lost.Version);
            }
            totalLost += run.Lost.Count;
        }
        Assert.True(totalLost > 0);
    }

    [Theory]
    [InlineData(ConcurrencyMode.Optimistic)]
    [InlineData(ConcurrencyMode.Patch)]
    public async Task SafeModes_ManySeeds_KeepEveryUpdate(ConcurrencyMode mode)
    {
        var ct = TestContext.Current.CancellationToken;
        for (var seed = 0; seed < 25; seed++)
        {
            await using var store = ConcordEngine.CreateInMemory(new ConcordEngineOptions { StrictMode = true });
            var run = await new AccountScenario(seed).RunAsync(store, Ns, mode, strict: true, ct);

            Assert.Empty(run.Lost);
            Assert.Equal(3, run.Kept);
            Assert.Equal(AccountScenario.ExpectedValue.GetRawText(), run.Final.GetRawText());
            Assert.True(run.Risk.Correct);
            Assert.Equal(1 + 3, run.FinalVersion); // the reset plus exactly one applied write per agent
        }
    }

    [Fact]
    public async Task RunAsync_SameSeed_SameSchedulesVersionsAndOutcome()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var a = ConcordEngine.CreateInMemory();
        await using var b = ConcordEngine.CreateInMemory();

        var first = await new AccountScenario(5).RunAsync(a, Ns, ConcurrencyMode.Optimistic, strict: false, ct);
        var second = await new AccountScenario(5).RunAsync(b, Ns, ConcurrencyMode.Optimistic, strict: false, ct);

        Assert.Equal(first.Agents, second.Agents, (x, y) => x with { Written = null } == y with { Written = null });
        Assert.Equal(first.VirtualMs, second.VirtualMs);
    }

    private static async Task<SortedDictionary<long, ConcordRecord>> VersionsAsync(ConcordEngine store, CancellationToken ct)
    {
        var versions = new SortedDictionary<long, ConcordRecord>();
        var last = await store.GetRevisionAsync(ct);
        for (var revision = 1L; revision <= last; revision++)
        {
            var record = await store.GetAsync(Ns, AccountScenario.Key, new ReadOptions { AtRevision = revision }, ct);
            if (record is not null) versions[record.Version] = record;
        }
        return versions;
    }
}
