namespace Concord.Tests.Conformance;

/// <summary>etcd-style compare / then / else transactions.</summary>
public abstract partial class StoreConformanceTests
{
    [Fact]
    public async Task Txn_ComparesHold_ThenBranchCommitsEveryOpAtOneRevision()
    {
        var (store, s) = await OpenAsync(agent: "planner");
        await s.PutAsync("acct/a", N(100), cancellationToken: Ct);
        await s.PutAsync("acct/b", N(0), cancellationToken: Ct);
        await s.PutAsync("old", N(1), cancellationToken: Ct);
        var start = await store.GetRevisionAsync(Ct);

        var result = await s.TransactAsync(new TxnRequest
        {
            Compares = [TxnCompare.Version("acct/a", CompareOp.Equal, 1), TxnCompare.Absent("acct/c")],
            Then =
            [
                TxnOp.Put("acct/a", N(60), Expect.Version(1)),
                TxnOp.PatchKey("acct/b", JsonPatch.Create().Increment("/n", 40)),
                TxnOp.Put("acct/c", N(0), Expect.Absent),
                TxnOp.Delete("old"),
            ],
            Else = [TxnOp.Put("never", N(1))],
        }, cancellationToken: Ct);

        Assert.True(result.Succeeded);
        Assert.True(result.IsApplied);
        Assert.Equal(-1, result.FailedOpIndex);
        Assert.Null(result.Conflict);
        Assert.Equal(start + 1, result.Revision);
        Assert.Equal(start + 1, await store.GetRevisionAsync(Ct));
        Assert.Equal([TxnOpKind.Put, TxnOpKind.Patch, TxnOpKind.Put, TxnOpKind.Delete], result.Results.Select(r => r.Kind));
        Assert.Equal(["acct/a", "acct/b", "acct/c", "old"], result.Results.Select(r => r.Key));
        Assert.All(result.Results, r => Assert.Equal(result.Revision, r.Record!.Revision));
        Assert.All(result.Results, r => Assert.Equal("planner", r.Record!.Writer));
        Assert.Equal([2L, 2L, 1L, 2L], result.Results.Select(r => r.Record!.Version));
        Assert.True(result.Results[3].Record!.IsDeleted);

        Assert.Equal(60, NOf(await s.GetAsync("acct/a", Ct)));
        Assert.Equal(40, NOf(await s.GetAsync("acct/b", Ct)));
        Assert.Equal(0, NOf(await s.GetAsync("acct/c", Ct)));
        Assert.Null(await s.GetAsync("old", Ct));
        Assert.Null(await s.GetAsync("never", Ct));
        // Nothing of the transaction is visible just before its revision.
        Assert.Equal(100, NOf(await s.GetAsync("acct/a", start, Ct)));
        Assert.Null(await s.GetAsync("acct/c", start, Ct));
    }

    [Fact]
    public async Task Txn_SameKeyWrittenTwice_ReadsAtItsRevisionSeeTheLastWrite()
    {
        var (store, s) = await OpenAsync();
        await s.PutAsync("k", N(1), cancellationToken: Ct);

        var result = await s.TransactAsync(new TxnRequest
        {
            Then = [TxnOp.Put("k", N(8)), TxnOp.PatchKey("k", JsonPatch.Create().Increment("/n", -1)), TxnOp.PatchKey("k", JsonPatch.Create().Increment("/n", 10))],
        }, cancellationToken: Ct);
        await s.PutAsync("other", N(0), cancellationToken: Ct);

        Assert.True(result.IsApplied);
        var latest = await s.GetAsync("k", Ct);
        var atRevision = await s.GetAsync("k", result.Revision, Ct);
        Assert.Equal(17, NOf(latest));
        Assert.Equal(4, latest!.Version);
        Assert.Equal(17, NOf(atRevision));
        Assert.Equal(4, atRevision!.Version);
        var listed = await store.ListAsync(s.Namespace, new ListRequest { AtRevision = result.Revision }, Ct);
        Assert.Equal(17, NOf(Assert.Single(listed.Records, r => r.Key == "k")));
    }

    [Fact]
    public async Task Txn_CompareFails_ElseBranchRuns()
    {
        var (_, s) = await OpenAsync();
        await s.PutAsync("lock", N(1), cancellationToken: Ct);

        var result = await s.TransactAsync(new TxnRequest
        {
            Compares = [TxnCompare.Absent("lock")],
            Then = [TxnOp.Put("then", N(1))],
            Else = [TxnOp.Get("lock"), TxnOp.Put("else", N(2))],
        }, cancellationToken: Ct);

        Assert.False(result.Succeeded);
        Assert.True(result.IsApplied);
        Assert.Equal(2, result.Results.Count);
        Assert.Equal(1, NOf(result.Results[0].Record));
        Assert.Null(await s.GetAsync("then", Ct));
        Assert.Equal(2, NOf(await s.GetAsync("else", Ct)));
    }

    [Fact]
    public async Task Txn_CompareFailsWithEmptyElse_ChangesNothing()
    {
        var (store, s) = await OpenAsync();
        await s.PutAsync("k", N(1), cancellationToken: Ct);
        var before = await CaptureAsync(store);

        var result = await s.TransactAsync(new TxnRequest
        {
            Compares = [TxnCompare.Version("k", CompareOp.Equal, 5)],
            Then = [TxnOp.Put("k", N(2))],
        }, cancellationToken: Ct);

        Assert.False(result.Succeeded);
        Assert.True(result.IsApplied);
        Assert.Empty(result.Results);
        Assert.Equal(before, await CaptureAsync(store));
    }

    [Fact]
    public async Task Txn_OpExpectationFails_NothingAppliedAndFailedOpIndexSet()
    {
        var (store, s) = await OpenAsync();
        await s.PutAsync("a", N(1), cancellationToken: Ct);
        await s.PutAsync("b", N(1), cancellationToken: Ct);
        await s.PutAsync("b", N(2), cancellationToken: Ct);
        var before = await CaptureAsync(store);
        var revision = await store.GetRevisionAsync(Ct);

        var result = await s.TransactAsync(new TxnRequest
        {
            Then =
            [
                TxnOp.Put("a", N(10), Expect.Version(1)),
                TxnOp.PatchKey("c", JsonPatch.Create().Increment("/n")),
                TxnOp.Put("b", N(10), Expect.Version(1)),
                TxnOp.Delete("a"),
            ],
        }, cancellationToken: Ct);

        Assert.True(result.Succeeded);
        Assert.False(result.IsApplied);
        Assert.Equal(2, result.FailedOpIndex);
        Assert.Empty(result.Results);
        Assert.NotNull(result.Conflict);
        Assert.Equal("b", result.Conflict.Key);
        Assert.Equal(ConflictKind.VersionMismatch, result.Conflict.Conflict);
        Assert.Equal(2, NOf(result.Conflict.Record));
        Assert.Equal(revision, result.Revision);
        Assert.Equal(before, await CaptureAsync(store));
    }

    [Fact]
    public async Task Txn_ElseBranchOpFails_FailedOpIndexRefersToElseBranch()
    {
        var (store, s) = await OpenAsync();
        await s.PutAsync("x", N(1), cancellationToken: Ct);
        var before = await CaptureAsync(store);

        var result = await s.TransactAsync(new TxnRequest
        {
            Compares = [TxnCompare.Absent("x")],
            Then = [TxnOp.Put("t", N(1))],
            Else = [TxnOp.Put("e", N(1)), TxnOp.Put("x", N(2), Expect.Absent)],
        }, cancellationToken: Ct);

        Assert.False(result.Succeeded);
        Assert.False(result.IsApplied);
        Assert.Equal(1, result.FailedOpIndex);
        Assert.Equal(ConflictKind.AlreadyExists, result.Conflict!.Conflict);
        Assert.Equal(before, await CaptureAsync(store));
    }

    [Fact]
    public async Task Txn_DeleteOfAbsentKey_FailsWholeTransaction()
    {
        var (store, s) = await OpenAsync();
        var before = await CaptureAsync(store);
        var result = await s.TransactAsync(new TxnRequest { Then = [TxnOp.Put("a", N(1)), TxnOp.Delete("missing")] }, cancellationToken: Ct);

        Assert.False(result.IsApplied);
        Assert.Equal(1, result.FailedOpIndex);
        Assert.Equal(ConflictKind.NotFound, result.Conflict!.Conflict);
        Assert.Equal(before, await CaptureAsync(store));
    }

    [Fact]
    public async Task Txn_PatchTestFails_FailsWholeTransaction()
    {
        var (store, s) = await OpenAsync();
        await s.PutAsync("doc", J("""{"state":"open"}"""), cancellationToken: Ct);
        var before = await CaptureAsync(store);

        var result = await s.TransactAsync(new TxnRequest
        {
            Then = [TxnOp.Put("a", N(1)), TxnOp.PatchKey("doc", JsonPatch.Create().Test("/state", Node("\"closed\"")).Add("/x", Node("1")))],
        }, cancellationToken: Ct);

        Assert.False(result.IsApplied);
        Assert.Equal(1, result.FailedOpIndex);
        Assert.Equal(ConflictKind.TestFailed, result.Conflict!.Conflict);
        Assert.Equal(before, await CaptureAsync(store));
    }

    [Theory]
    [InlineData(CompareOp.Equal, 2, true)]
    [InlineData(CompareOp.Equal, 1, false)]
    [InlineData(CompareOp.NotEqual, 1, true)]
    [InlineData(CompareOp.NotEqual, 2, false)]
    [InlineData(CompareOp.Less, 3, true)]
    [InlineData(CompareOp.Less, 2, false)]
    [InlineData(CompareOp.LessOrEqual, 2, true)]
    [InlineData(CompareOp.LessOrEqual, 1, false)]
    [InlineData(CompareOp.Greater, 1, true)]
    [InlineData(CompareOp.Greater, 2, false)]
    public async Task Txn_VersionCompare_EvaluatesEveryOperator(CompareOp op, long version, bool holds)
    {
        var (_, s) = await OpenAsync();
        await s.PutAsync("k", N(1), cancellationToken: Ct);
        await s.PutAsync("k", N(2), cancellationToken: Ct);

        var result = await s.TransactAsync(new TxnRequest { Compares = [TxnCompare.Version("k", op, version)] }, cancellationToken: Ct);
        Assert.Equal(holds, result.Succeeded);
    }

    [Fact]
    public async Task Txn_ExistsAbsentAndValueCompares_FollowTheCurrentState()
    {
        var (_, s) = await OpenAsync();
        await s.PutAsync("here", J("""{"a":1,"b":[1,2]}"""), cancellationToken: Ct);
        await s.PutAsync("gone", N(1), cancellationToken: Ct);
        await s.DeleteAsync("gone", cancellationToken: Ct);

        async Task<bool> Holds(TxnCompare c) => (await s.TransactAsync(new TxnRequest { Compares = [c] }, cancellationToken: Ct)).Succeeded;

        Assert.True(await Holds(TxnCompare.Exists("here")));
        Assert.False(await Holds(TxnCompare.Absent("here")));
        Assert.True(await Holds(TxnCompare.Absent("gone")));
        Assert.False(await Holds(TxnCompare.Exists("gone")));
        Assert.True(await Holds(TxnCompare.Absent("never")));
        Assert.True(await Holds(TxnCompare.ValueEquals("here", J("""{"b":[1,2],"a":1.0}"""))));
        Assert.False(await Holds(TxnCompare.ValueEquals("here", J("""{"a":1}"""))));
        Assert.False(await Holds(TxnCompare.ValueEquals("never", J("null"))));
        Assert.True(await Holds(TxnCompare.ValueEquals("here", J("""{"a":1}""")) with { Op = CompareOp.NotEqual }));
        Assert.True(await Holds(TxnCompare.ValueEquals("never", J("null")) with { Op = CompareOp.NotEqual }));
    }

    [Fact]
    public async Task Txn_ModRevisionCompares_SeeWritesAndDeletes()
    {
        var (_, s) = await OpenAsync();
        var w = await s.PutAsync("k", N(1), cancellationToken: Ct);
        async Task<bool> Holds(TxnCompare c) => (await s.TransactAsync(new TxnRequest { Compares = [c] }, cancellationToken: Ct)).Succeeded;

        Assert.True(await Holds(TxnCompare.ModRevision("k", CompareOp.Equal, w.Revision)));
        Assert.True(await Holds(TxnCompare.ModRevision("never", CompareOp.Equal, 0)));
        var del = await s.DeleteAsync("k", cancellationToken: Ct);
        Assert.False(await Holds(TxnCompare.ModRevision("k", CompareOp.LessOrEqual, w.Revision)));
        Assert.True(await Holds(TxnCompare.ModRevision("k", CompareOp.Equal, del.Revision)));
    }

    [Fact]
    public async Task Txn_PrefixUnchangedSince_DetectsCreatesUpdatesAndDeletesUnderThePrefixOnly()
    {
        var (store, s) = await OpenAsync();
        await s.PutAsync("oncall/alice", N(1), cancellationToken: Ct);
        var r0 = await store.GetRevisionAsync(Ct);
        async Task<bool> Unchanged(string prefix, long since) =>
            (await s.TransactAsync(new TxnRequest { Compares = [TxnCompare.PrefixUnchangedSince(prefix, since)] }, cancellationToken: Ct)).Succeeded;

        Assert.True(await Unchanged("oncall/", r0));
        await s.PutAsync("oncallx", N(1), cancellationToken: Ct);
        await s.PutAsync("other/bob", N(1), cancellationToken: Ct);
        Assert.True(await Unchanged("oncall/", r0));

        var r1 = (await s.PutAsync("oncall/bob", N(1), cancellationToken: Ct)).Revision;
        Assert.False(await Unchanged("oncall/", r0));
        Assert.True(await Unchanged("oncall/", r1));

        var r2 = (await s.PutAsync("oncall/alice", N(2), cancellationToken: Ct)).Revision;
        Assert.False(await Unchanged("oncall/", r1));

        await s.DeleteAsync("oncall/bob", cancellationToken: Ct);
        Assert.False(await Unchanged("oncall/", r2));
    }

    [Fact]
    public async Task Txn_GetOps_SeeEarlierWritesOfTheSameTransaction()
    {
        var (_, s) = await OpenAsync();
        await s.PutAsync("k", N(1), cancellationToken: Ct);

        var result = await s.TransactAsync(new TxnRequest
        {
            Then = [TxnOp.Get("k"), TxnOp.Put("k", N(2)), TxnOp.Get("k"), TxnOp.Get("absent")],
        }, cancellationToken: Ct);

        Assert.True(result.IsApplied);
        Assert.Equal(1, NOf(result.Results[0].Record));
        Assert.Equal(2, NOf(result.Results[2].Record));
        Assert.Null(result.Results[3].Record);
    }

    [Fact]
    public async Task Txn_ReadOnly_DoesNotAdvanceTheRevision()
    {
        var (store, s) = await OpenAsync();
        await s.PutAsync("k", N(1), cancellationToken: Ct);
        var revision = await store.GetRevisionAsync(Ct);

        var result = await s.TransactAsync(new TxnRequest { Compares = [TxnCompare.Exists("k")], Then = [TxnOp.Get("k")] }, cancellationToken: Ct);

        Assert.True(result.Succeeded);
        Assert.Equal(revision, result.Revision);
        Assert.Equal(revision, await store.GetRevisionAsync(Ct));
    }

    [Fact]
    public async Task Txn_StrictMode_BlindWriteRefusedUnlessGuardedByACompareOnTheKey()
    {
        var (store, s) = await OpenAsync(new StoreFixtureOptions { StrictMode = true });
        await s.PutAsync("k", N(1), cancellationToken: Ct);
        var before = await CaptureAsync(store);

        var blind = await s.TransactAsync(new TxnRequest { Then = [TxnOp.Put("other", N(1)), TxnOp.Put("k", N(2))] }, cancellationToken: Ct);
        Assert.False(blind.IsApplied);
        Assert.Equal(1, blind.FailedOpIndex);
        Assert.Equal(ConflictKind.BlindWriteRefused, blind.Conflict!.Conflict);
        Assert.Equal(1, NOf(blind.Conflict.Record));
        Assert.Equal(before, await CaptureAsync(store));

        var guarded = await s.TransactAsync(new TxnRequest
        {
            Compares = [TxnCompare.Version("k", CompareOp.Equal, 1)],
            Then = [TxnOp.Put("k", N(2))],
        }, cancellationToken: Ct);
        Assert.True(guarded.IsApplied);
        Assert.Equal(2, NOf(await s.GetAsync("k", Ct)));
    }

    [Fact]
    public async Task Txn_ConcurrentConditionalTransfers_NoneLostNoneDoubled()
    {
        // Many agents race the same compare-guarded transaction; each success must have seen the version it replaced.
        var store = await OpenStoreAsync();
        var seed = Session(store, "seed");
        await seed.PutAsync("slots", N(5), Expect.Absent, cancellationToken: Ct);

        async Task<bool> TryTake(int agent)
        {
            var s = Session(store, $"agent-{agent}");
            while (true)
            {
                var current = await s.GetAsync("slots", Ct);
                var left = NOf(current);
                if (left == 0) return false;
                var result = await s.TransactAsync(new TxnRequest
                {
                    Compares = [TxnCompare.Version("slots", CompareOp.Equal, current!.Version)],
                    Then = [TxnOp.Put("slots", N(left - 1)), TxnOp.Put($"holder/{agent}", N(left))],
                }, cancellationToken: Ct);
                if (result.Succeeded) return true;
            }
        }

        var taken = await Task.WhenAll(Enumerable.Range(0, 12).Select(i => Task.Run(() => TryTake(i), Ct)));

        Assert.Equal(5, taken.Count(t => t));
        Assert.Equal(0, NOf(await seed.GetAsync("slots", Ct)));
        var holders = (await seed.ListAsync("holder/", cancellationToken: Ct)).Records;
        Assert.Equal([1L, 2L, 3L, 4L, 5L], holders.Select(NOf).Order());
    }
}
