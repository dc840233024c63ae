namespace Concord.Tests.Conformance;

/// <summary>Interactive optimistic transactions: snapshot reads, read-set and prefix validation, retries.</summary>
public abstract partial class StoreConformanceTests
{
    private static readonly RetryOptions NoDelay = new() { MaxAttempts = 5, BaseDelay = TimeSpan.Zero, MaxDelay = TimeSpan.Zero };

    [Fact]
    public async Task Optimistic_ReadsSeeOneSnapshot()
    {
        var (store, s) = await OpenAsync();
        var other = Session(store, "other");
        await s.PutAsync("a", N(1), cancellationToken: Ct);
        await s.PutAsync("b", N(1), cancellationToken: Ct);

        var tx = await s.BeginTransactionAsync(Ct);
        Assert.Equal(1, NOf(await tx.GetAsync("a", Ct)));
        await other.PutAsync("b", N(2), cancellationToken: Ct);
        await other.PutAsync("c", N(2), cancellationToken: Ct);

        Assert.Equal(1, NOf(await tx.GetAsync("b", Ct)));
        Assert.Null(await tx.GetAsync("c", Ct));
        Assert.Empty(await tx.ListAsync("c", Ct));
    }

    [Fact]
    public async Task Optimistic_ReadKeyChangedBeforeCommit_ReadSetChangedAndNothingApplied()
    {
        var (store, s) = await OpenAsync();
        var other = Session(store, "other");
        await s.PutAsync("a", N(1), cancellationToken: Ct);

        var tx = await s.BeginTransactionAsync(Ct);
        var a = await tx.GetAsync("a", Ct);
        tx.Put("b", N(NOf(a) + 1));
        tx.Put("a", N(NOf(a) + 1));
        await other.PatchAsync("a", JsonPatch.Create().Increment("/n", 10), cancellationToken: Ct);
        var before = await CaptureAsync(store);

        var commit = await tx.CommitAsync(cancellationToken: Ct);

        Assert.False(commit.Committed);
        Assert.Equal(ConflictKind.ReadSetChanged, commit.Conflict);
        Assert.Contains("a", commit.Message, StringComparison.Ordinal);
        Assert.Equal(before, await CaptureAsync(store));
    }

    [Fact]
    public async Task Optimistic_ReadAbsentKeyCreatedBeforeCommit_ReadSetChanged()
    {
        var (store, s) = await OpenAsync();
        var tx = await s.BeginTransactionAsync(Ct);
        Assert.Null(await tx.GetAsync("slot", Ct));
        tx.Put("slot", N(1));
        await Session(store, "other").PutAsync("slot", N(2), cancellationToken: Ct);

        var commit = await tx.CommitAsync(cancellationToken: Ct);

        Assert.Equal(ConflictKind.ReadSetChanged, commit.Conflict);
        Assert.Equal(2, NOf(await s.GetAsync("slot", Ct)));
    }

    [Fact]
    public async Task Optimistic_UnrelatedConcurrentWrite_CommitsEveryWriteAtOneRevision()
    {
        var (store, s) = await OpenAsync(agent: "tx-agent");
        await s.PutAsync("a", N(1), cancellationToken: Ct);
        await s.PutAsync("gone", N(1), cancellationToken: Ct);

        var tx = await s.BeginTransactionAsync(Ct);
        var a = await tx.GetAsync("a", Ct);
        await Session(store, "other").PutAsync("unrelated", N(1), cancellationToken: Ct);
        tx.Put("a", N(NOf(a) + 1));
        tx.Put("b", N(5));
        tx.Patch("counter", JsonPatch.Create().Increment("/n", 3));
        tx.Delete("gone");

        var commit = await tx.CommitAsync(cancellationToken: Ct);

        Assert.True(commit.Committed, commit.Message);
        Assert.Equal(ConflictKind.None, commit.Conflict);
        Assert.Equal(commit.Revision, await store.GetRevisionAsync(Ct));
        foreach (var key in new[] { "a", "b", "counter" })
        {
            var record = await s.GetAsync(key, Ct);
            Assert.Equal(commit.Revision, record!.Revision);
            Assert.Equal("tx-agent", record.Writer);
        }
        Assert.Equal(2, NOf(await s.GetAsync("a", Ct)));
        Assert.Equal(3, NOf(await s.GetAsync("counter", Ct)));
        Assert.Null(await s.GetAsync("gone", Ct));
    }

    [Fact]
    public async Task Optimistic_ListedPrefix_InsertUpdateOrDeleteUnderIt_PreventsCommit()
    {
        var (store, s) = await OpenAsync();
        var other = Session(store, "other");
        await s.PutAsync("oncall/alice", N(1), cancellationToken: Ct);
        await s.PutAsync("oncall/bob", N(1), cancellationToken: Ct);

        async Task<CommitResult> Attempt(Func<Task> interfere)
        {
            var tx = await s.BeginTransactionAsync(Ct);
            var onCall = await tx.ListAsync("oncall/", Ct);
            tx.Put("roster/count", N(onCall.Count));
            await interfere();
            return await tx.CommitAsync(cancellationToken: Ct);
        }

        // A phantom: a key that did not exist when the prefix was read.
        Assert.Equal(ConflictKind.ReadSetChanged, (await Attempt(async () => await other.PutAsync("oncall/carol", N(1), cancellationToken: Ct))).Conflict);
        Assert.Equal(ConflictKind.ReadSetChanged, (await Attempt(async () => await other.PutAsync("oncall/alice", N(0), cancellationToken: Ct))).Conflict);
        Assert.Equal(ConflictKind.ReadSetChanged, (await Attempt(async () => await other.DeleteAsync("oncall/bob", cancellationToken: Ct))).Conflict);
        Assert.Null(await s.GetAsync("roster/count", Ct));

        // Writes outside the prefix do not invalidate it.
        var ok = await Attempt(async () => await other.PutAsync("oncallish", N(1), cancellationToken: Ct));
        Assert.True(ok.Committed, ok.Message);
        Assert.Equal(2, NOf(await s.GetAsync("roster/count", Ct)));
    }

    [Fact]
    public async Task Optimistic_WriteSkew_DoctorsOnCall_OnlyOneCommits()
    {
        // Classic write skew: "at least one doctor on call". Each doctor reads both, sees the other on call, and goes off.
        var store = await OpenStoreAsync();
        var admin = Session(store, "admin");
        await admin.PutAsync("doctors/alice", J("""{"onCall":true}"""), cancellationToken: Ct);
        await admin.PutAsync("doctors/bob", J("""{"onCall":true}"""), cancellationToken: Ct);
        var alice = Session(store, "alice");
        var bob = Session(store, "bob");

        var txA = await alice.BeginTransactionAsync(Ct);
        var txB = await bob.BeginTransactionAsync(Ct);
        async Task GoOffCall(OptimisticTransaction tx, string me, string other)
        {
            var mine = await tx.GetAsync($"doctors/{me}", Ct);
            var theirs = await tx.GetAsync($"doctors/{other}", Ct);
            Assert.True(mine!.Value.GetProperty("onCall").GetBoolean());
            if (theirs!.Value.GetProperty("onCall").GetBoolean()) tx.Put($"doctors/{me}", J("""{"onCall":false}"""));
        }
        await GoOffCall(txA, "alice", "bob");
        await GoOffCall(txB, "bob", "alice");

        var commitA = await txA.CommitAsync(cancellationToken: Ct);
        var commitB = await txB.CommitAsync(cancellationToken: Ct);

        Assert.True(commitA.Committed);
        Assert.False(commitB.Committed);
        Assert.Equal(ConflictKind.ReadSetChanged, commitB.Conflict);
        var onCall = (await admin.ListAsync("doctors/", cancellationToken: Ct)).Records.Count(r => r.Value.GetProperty("onCall").GetBoolean());
        Assert.Equal(1, onCall);
    }

    [Fact]
    public async Task Optimistic_WriteSkew_UnderRealConcurrency_InvariantHolds()
    {
        var store = await OpenStoreAsync();
        var admin = Session(store, "admin");
        var names = Enumerable.Range(0, 6).Select(i => $"doc{i}").ToArray();
        foreach (var name in names) await admin.PutAsync($"doctors/{name}", J("""{"onCall":true}"""), cancellationToken: Ct);

        var results = await Task.WhenAll(names.Select(name => Task.Run(async () =>
        {
            var s = Session(store, name);
            return await s.RunTransactionAsync(async (tx, ct) =>
            {
                var all = await tx.ListAsync("doctors/", ct);
                if (all.Count(r => r.Value.GetProperty("onCall").GetBoolean()) > 1) tx.Put($"doctors/{name}", J("""{"onCall":false}"""));
            }, new RetryOptions { MaxAttempts = 100, BaseDelay = TimeSpan.Zero, MaxDelay = TimeSpan.Zero }, cancellationToken: Ct);
        }, Ct)));

        Assert.All(results, r => Assert.True(r.Committed));
        var onCall = (await admin.ListAsync("doctors/", cancellationToken: Ct)).Records.Count(r => r.Value.GetProperty("onCall").GetBoolean());
        Assert.Equal(1, onCall);
    }

    [Fact]
    public async Task Optimistic_OwnBufferedWrites_AreVisibleToLaterReads()
    {
        var (_, s) = await OpenAsync();
        await s.PutAsync("a", N(1), cancellationToken: Ct);
        var tx = await s.BeginTransactionAsync(Ct);

        tx.Put("a", N(2));
        Assert.Equal(2, NOf(await tx.GetAsync("a", Ct)));
        tx.Delete("a");
        Assert.Null(await tx.GetAsync("a", Ct));
        Assert.Equal(1, NOf(await s.GetAsync("a", Ct)));
    }

    [Fact]
    public async Task Optimistic_ReadOnly_CommitsWithoutANewRevision()
    {
        var (store, s) = await OpenAsync();
        await s.PutAsync("a", N(1), cancellationToken: Ct);
        var revision = await store.GetRevisionAsync(Ct);
        var tx = await s.BeginTransactionAsync(Ct);
        await tx.GetAsync("a", Ct);
        await Session(store, "other").PutAsync("a", N(2), cancellationToken: Ct);

        var commit = await tx.CommitAsync(cancellationToken: Ct);

        Assert.True(commit.Committed);
        Assert.Equal(revision, commit.Revision);
        Assert.Equal(revision + 1, await store.GetRevisionAsync(Ct));
    }

    [Fact]
    public async Task Optimistic_UseAfterCommit_Throws()
    {
        var (_, s) = await OpenAsync();
        var tx = await s.BeginTransactionAsync(Ct);
        tx.Put("a", N(1));
        await tx.CommitAsync(cancellationToken: Ct);

        await Assert.ThrowsAsync<InvalidOperationException>(async () => await tx.CommitAsync(cancellationToken: Ct));
        Assert.Throws<InvalidOperationException>(() => tx.Put("a", N(2)));
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await tx.GetAsync("a", Ct));
    }

    [Fact]
    public async Task Optimistic_StrictMode_WriteOfAKeyTheTransactionRead_IsNotBlind()
    {
        var (_, s) = await OpenAsync(new StoreFixtureOptions { StrictMode = true });
        await s.PutAsync("a", N(1), cancellationToken: Ct);
        await s.PutAsync("b", N(1), cancellationToken: Ct);

        var tx = await s.BeginTransactionAsync(Ct);
        var a = await tx.GetAsync("a", Ct);
        tx.Put("a", N(NOf(a) + 1));
        Assert.True((await tx.CommitAsync(cancellationToken: Ct)).Committed);

        var blind = await s.BeginTransactionAsync(Ct);
        blind.Put("b", N(5));
        var refused = await blind.CommitAsync(cancellationToken: Ct);
        Assert.False(refused.Committed);
        Assert.Equal(ConflictKind.BlindWriteRefused, refused.Conflict);
        Assert.Equal(1, NOf(await s.GetAsync("b", Ct)));
    }

    [Fact]
    public async Task RunTransaction_ReadSetChanged_RerunsBodyOnAFreshSnapshot()
    {
        var (store, s) = await OpenAsync();
        var other = Session(store, "other");
        await s.PutAsync("balance", N(100), cancellationToken: Ct);
        var seen = new List<long>();

        var result = await s.RunTransactionAsync(async (tx, ct) =>
        {
            var balance = NOf(await tx.GetAsync("balance", ct));
            seen.Add(balance);
            if (seen.Count == 1) await other.PatchAsync("balance", JsonPatch.Create().Increment("/n", 50), cancellationToken: ct);
            tx.Put("balance", N(balance - 30));
        }, NoDelay, cancellationToken: Ct);

        Assert.True(result.Committed);
        Assert.Equal(2, result.Attempts);
        Assert.Equal([100L, 150L], seen);
        Assert.Equal(120, NOf(await s.GetAsync("balance", Ct)));
    }

    [Fact]
    public async Task RunTransaction_ConflictOnEveryAttempt_StopsAtTheAttemptLimit()
    {
        var (store, s) = await OpenAsync();
        var other = Session(store, "other");
        await s.PutAsync("hot", N(0), cancellationToken: Ct);
        var runs = 0;

        var result = await s.RunTransactionAsync(async (tx, ct) =>
        {
            runs++;
            var hot = await tx.GetAsync("hot", ct);
            await other.PatchAsync("hot", JsonPatch.Create().Increment("/n"), cancellationToken: ct);
            tx.Put("mine", N(NOf(hot)));
        }, NoDelay with { MaxAttempts = 3 }, cancellationToken: Ct);

        Assert.False(result.Committed);
        Assert.Equal(ConflictKind.ReadSetChanged, result.Conflict);
        Assert.Equal(3, result.Attempts);
        Assert.Equal(3, runs);
        Assert.Null(await s.GetAsync("mine", Ct));
    }

    [Fact]
    public async Task RunTransaction_OpConflictOtherThanReadSet_IsNotRetried()
    {
        var (_, s) = await OpenAsync(new StoreFixtureOptions { StrictMode = true });
        await s.PutAsync("b", N(1), cancellationToken: Ct);
        var runs = 0;

        var result = await s.RunTransactionAsync((tx, _) =>
        {
            runs++;
            tx.Put("b", N(2)); // blind: b was not read
            return ValueTask.CompletedTask;
        }, NoDelay, cancellationToken: Ct);

        Assert.False(result.Committed);
        Assert.Equal(ConflictKind.BlindWriteRefused, result.Conflict);
        Assert.Equal(1, runs);
    }
}
