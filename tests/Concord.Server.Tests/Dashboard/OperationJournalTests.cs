using System.Text.Json;
using Concord.Engine;
using Concord.Server.Dashboard;

namespace Concord.Server.Tests.Dashboard;

public sealed class OperationJournalTests
{
    private const string Ns = "t";
    private const string Key = "acct/42";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static JsonElement J(object value) => JsonSerializer.SerializeToElement(value);

    private static (ConcordEngine Engine, OperationJournal Journal) Open(int capacity = 20_000)
    {
        var engine = ConcordEngine.CreateInMemory(new ConcordEngineOptions { StrictMode = false });
        return (engine, new OperationJournal(engine, new DashboardOptions { JournalCapacity = capacity }));
    }

    [Fact]
    public async Task BlindPut_OverAVersionItsAgentNeverRead_IsALostUpdateNamingVersionAndWriters()
    {
        var (engine, journal) = Open();
        await using var _ = engine;
        var onboarding = new ConcordSession(journal, Ns, "onboarding");
        var status = new ConcordSession(journal, Ns, "status");
        var fees = new ConcordSession(journal, Ns, "fees");
        await onboarding.PutAsync(Key, J(new { status = "active" }), Expect.Absent, cancellationToken: Ct);
        await status.GetAsync(Key, Ct);
        await fees.GetAsync(Key, Ct);
        await fees.PutAsync(Key, J(new { status = "active", fees = "unpaid" }), cancellationToken: Ct);
        await status.PutAsync(Key, J(new { status = "restricted" }), cancellationToken: Ct);

        var finding = Assert.Single(journal.Findings());
        Assert.Equal("status overwrote version 2 of acct/42 (written by fees) without having read it (it had read version 1); fees's update was lost.", finding.Explanation);
        Assert.Equal(3, finding.OverwriteVersion);
        var lost = Assert.Single(finding.Lost);
        Assert.Equal(2, lost.Version);
        Assert.Equal("fees", lost.Writer);

        var entries = journal.Entries(Ns);
        var overwrite = entries.Single(e => e.Seq == finding.OverwriteSeq);
        Assert.True(overwrite.Blind);
        Assert.Equal(1, overwrite.BasedOn);
        Assert.Equal(entries.Single(e => e.Op == "put" && e.Version == 1).Seq, overwrite.BasedOnSeq);
        Assert.Equal(entries.Single(e => e.Op == "put" && e.Version == 2).Seq, lost.Seq);
        Assert.Equal(1, journal.Agents(Ns).Single(a => a.Agent == "status").Overwrote);
        Assert.Equal(1, journal.Agents(Ns).Single(a => a.Agent == "fees").LostUpdates);
    }

    [Fact]
    public async Task BlindPut_AfterReadingTheLatestVersion_IsNotALostUpdate()
    {
        var (engine, journal) = Open();
        await using var _ = engine;
        var a = new ConcordSession(journal, Ns, "a");
        var b = new ConcordSession(journal, Ns, "b");
        await a.PutAsync(Key, J(1), cancellationToken: Ct);
        await b.PutAsync(Key, J(2), Expect.Version(1), cancellationToken: Ct);
        await a.GetAsync(Key, Ct);                       // a has seen v2
        await a.PutAsync(Key, J(3), cancellationToken: Ct); // blind, but over what it read
        await a.PutAsync(Key, J(4), cancellationToken: Ct); // blind over its own write

        Assert.Empty(journal.Findings());
        Assert.All(journal.Entries(Ns).Where(e => e.Op == "put" && e.Version > 2), e => Assert.True(e.Blind));
    }

    [Fact]
    public async Task BlindDelete_OfAnUnreadVersion_IsReportedAsADeletion()
    {
        var (engine, journal) = Open();
        await using var _ = engine;
        var a = new ConcordSession(journal, Ns, "a");
        var b = new ConcordSession(journal, Ns, "b");
        await a.PutAsync(Key, J(1), cancellationToken: Ct);
        await b.GetAsync(Key, Ct);
        await a.PutAsync(Key, J(2), Expect.Version(1), cancellationToken: Ct);
        await b.DeleteAsync(Key, cancellationToken: Ct);

        var finding = Assert.Single(journal.Findings());
        Assert.True(finding.Delete);
        Assert.StartsWith("b deleted version 2 of acct/42 (written by a)", finding.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConflictsAndRetries_UnderRealConcurrency_AreRecordedAndNothingIsLost()
    {
        var (engine, journal) = Open();
        await using var _ = engine;
        const int agents = 6, updates = 40;
        await new ConcordSession(journal, Ns, "setup").PutAsync(Key, J(new { n = 0 }), Expect.Absent, cancellationToken: Ct);
        await Task.WhenAll(Enumerable.Range(0, agents).Select(i => Task.Run(async () =>
        {
            var session = new ConcordSession(journal, Ns, $"agent-{i}", new SessionOptions { Retry = new RetryOptions { MaxAttempts = 1000, BaseDelay = TimeSpan.Zero, MaxDelay = TimeSpan.Zero } });
            for (var k = 0; k < updates; k++)
            {
                var r = i % 2 == 0
                    ? await session.UpdateAsync(Key, (rec, _) => ValueTask.FromResult<JsonElement?>(J(new { n = rec!.Value.GetProperty("n").GetInt32() + 1 })), cancellationToken: Ct)
                    : new UpdateResult(await session.IncrementAsync(Key, path: "/n", cancellationToken: Ct), 1);
                Assert.True(r.IsApplied);
            }
        }, Ct)));

        var final = await engine.GetAsync(Ns, Key, cancellationToken: Ct);
        Assert.Equal(agents * updates, final!.Value.GetProperty("n").GetInt32());
        Assert.Empty(journal.Findings());
        var entries = journal.Entries(Ns);
        var conflicts = entries.Where(e => e.Outcome == "conflict").ToList();
        Assert.All(conflicts, c => Assert.Equal("versionMismatch", c.Conflict));
        Assert.All(conflicts.Where(c => c.ConflictWithSeq is not null), c => Assert.Equal(c.Version, entries.Single(e => e.Seq == c.ConflictWithSeq).Version));
        // Every write after a refusal by the same agent is numbered as a retry.
        Assert.Equal(conflicts.Count, entries.Count(e => e.Op == "put" && e.Attempt > 1));
        Assert.Equal(conflicts.Count, journal.Namespaces().Single().Conflicts);
    }

    [Fact]
    public async Task NaiveCounter_UnderRealConcurrency_EveryVanishedIncrementIsInAFinding()
    {
        var (engine, journal) = Open();
        await using var _ = engine;
        const int agents = 6, increments = 60;
        await new ConcordSession(journal, Ns, "setup").PutAsync(Key, J(0), Expect.Absent, cancellationToken: Ct);
        await Task.WhenAll(Enumerable.Range(0, agents).Select(i => Task.Run(async () =>
        {
            var session = new ConcordSession(journal, Ns, $"agent-{i}");
            for (var k = 0; k < increments; k++)
            {
                var read = await session.GetAsync(Key, Ct);
                await Task.Yield();
                await session.PutAsync(Key, J(read!.Value.GetInt32() + 1), cancellationToken: Ct);
            }
        }, Ct)));

        // Chain of "based on" from the final version back to the start: the increments that survived.
        var writes = journal.Entries(Ns).Where(e => e.Op == "put").ToDictionary(e => e.Version!.Value);
        var final = await engine.GetAsync(Ns, Key, cancellationToken: Ct);
        var chain = new HashSet<long>();
        for (var v = final!.Version; v > 0; v = writes[v].BasedOn!.Value) chain.Add(v);
        Assert.Equal(final.Value.GetInt32() + 1, chain.Count); // value n sits on a chain of n+1 writes (setup wrote 0)

        var vanished = writes.Keys.Where(v => !chain.Contains(v)).ToHashSet();
        var findings = journal.Findings();
        // Each vanished increment lies in the range of versions some blind write discarded unseen.
        Assert.All(vanished, v => Assert.Contains(findings, f => f.ReadVersion < v && v < f.OverwriteVersion));
        Assert.All(findings, f =>
        {
            Assert.True(f.ReadVersion < f.OverwriteVersion - 1);
            Assert.Equal(f.OverwriteVersion - 1, f.Lost[0].Version);
            Assert.InRange(f.LostCount, f.Lost.Count, f.OverwriteVersion - 1 - f.ReadVersion);
            Assert.All(f.Lost, l => Assert.NotEqual(f.Overwriter, l.Writer));
        });
        // The named versions are exactly those the journal still remembers: each points at the write that made it.
        Assert.All(findings.SelectMany(f => f.Lost).Where(l => l.Seq is not null), l => Assert.Equal(writes[l.Version].Seq, l.Seq));
        if (vanished.Count > 0) Assert.NotEmpty(findings);
    }

    [Fact]
    public async Task Reads_AreAttributedToTheReadOptionsAgentThenTheAmbientAgent()
    {
        await using var engine = ConcordEngine.CreateInMemory();
        string? ambient = null;
        var journal = new OperationJournal(engine, new DashboardOptions(), ambientAgent: () => ambient);
        await journal.GetAsync(Ns, Key, new ReadOptions { Agent = "explicit" }, Ct);
        ambient = "from-header";
        await journal.GetAsync(Ns, Key, null, Ct);
        ambient = null;
        await journal.GetAsync(Ns, Key, null, Ct);
        Assert.Equal(["explicit", "from-header", "anonymous"], journal.Entries(Ns).Select(e => e.Agent));
        Assert.All(journal.Entries(Ns), e => Assert.Equal("absent", e.Outcome));
    }

    [Fact]
    public async Task ReservedKeys_PassThroughUnrecorded()
    {
        var (engine, journal) = Open();
        await using var _ = engine;
        await journal.PutAsync(Ns, "_sys/locks/x", J(1), cancellationToken: Ct);
        await journal.GetAsync(Ns, "_sys/locks/x", cancellationToken: Ct);
        await journal.ListAsync(Ns, new ListRequest { Prefix = "_sys/" }, Ct);
        Assert.Empty(journal.Entries());
        Assert.NotNull(await engine.GetAsync(Ns, "_sys/locks/x", cancellationToken: Ct));
    }

    [Fact]
    public async Task Ring_KeepsTheNewestEntries_AndSubscribersSeeEveryEntryInOrder()
    {
        var (engine, journal) = Open(capacity: 100);
        await using var _ = engine;
        using var subscriber = journal.Subscribe(null, _ => true);
        for (var i = 0; i < 250; i++) await journal.PutAsync(Ns, $"k{i % 7}", J(i), cancellationToken: Ct);
        var entries = journal.Entries();
        Assert.Equal(100, entries.Count);
        Assert.Equal(Enumerable.Range(151, 100).Select(i => (long)i), entries.Select(e => e.Seq));
        Assert.Equal(151, journal.FirstRetainedSeq);
        var seen = new List<long>();
        while (subscriber.Reader.TryRead(out var e)) if (e.Type == "op") seen.Add(e.Id);
        Assert.Equal(Enumerable.Range(1, 250).Select(i => (long)i), seen);
        Assert.False(subscriber.Overflowed);
    }

    [Fact]
    public async Task Subscriber_ThatFallsBehind_IsMarkedOverflowed()
    {
        var (engine, _) = Open();
        await using var __ = engine;
        var journal = new OperationJournal(engine, new DashboardOptions { SubscriberBuffer = 100 });
        using var subscriber = journal.Subscribe(null, _ => true);
        for (var i = 0; i < 150; i++) await journal.PutAsync(Ns, "k", J(i), cancellationToken: Ct);
        Assert.True(subscriber.Overflowed);
    }

    [Fact]
    public async Task Subscriber_SeesOnlyNamespacesItMayRead()
    {
        var (engine, journal) = Open();
        await using var _ = engine;
        using var subscriber = journal.Subscribe(null, ns => ns == "mine");
        await journal.PutAsync("mine", "k", J(1), cancellationToken: Ct);
        await journal.PutAsync("theirs", "k", J(1), cancellationToken: Ct);
        var seen = new List<string>();
        while (subscriber.Reader.TryRead(out var e)) seen.Add(e.Ns);
        Assert.Equal(["mine"], seen);
    }
}
