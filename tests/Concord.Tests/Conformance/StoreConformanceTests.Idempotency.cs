using Microsoft.Extensions.Time.Testing;

namespace Concord.Tests.Conformance;

/// <summary>Operation ids: replay of the original result, reuse detection, retention.</summary>
public abstract partial class StoreConformanceTests
{
    [Fact]
    public async Task Idempotency_SamePutRetried_ReplaysTheOriginalResult()
    {
        var (store, s) = await OpenAsync();
        var first = await s.PutAsync("k", N(1), Expect.Absent, idempotencyKey: "op-1", cancellationToken: Ct);
        await Session(store, "other").PutAsync("k", N(2), Expect.Version(1), cancellationToken: Ct);
        var before = await CaptureAsync(store);

        // The retry arrives after someone else changed the key: it still gets the original result, and changes nothing.
        var retry = await s.PutAsync("k", N(1), Expect.Absent, idempotencyKey: "op-1", cancellationToken: Ct);

        Assert.True(retry.IsApplied);
        Assert.True(retry.Replayed);
        Assert.False(first.Replayed);
        Assert.Equal(first.Revision, retry.Revision);
        Assert.Equal(1, retry.Version);
        Assert.Equal(1, NOf(retry.Record));
        Assert.Equal(before, await CaptureAsync(store));
    }

    [Fact]
    public async Task Idempotency_SamePatchRetried_AppliesOnce()
    {
        var (store, s) = await OpenAsync();
        var patch = JsonPatch.Create().Increment("/n", 10);
        var first = await s.PatchAsync("counter", patch, idempotencyKey: "charge-17", cancellationToken: Ct);
        var revision = await store.GetRevisionAsync(Ct);

        for (var i = 0; i < 3; i++)
        {
            var retry = await s.PatchAsync("counter", JsonPatch.Create().Increment("/n", 10), idempotencyKey: "charge-17", cancellationToken: Ct);
            Assert.True(retry.Replayed);
            Assert.Equal(first.Revision, retry.Revision);
            Assert.Equal(first.Version, retry.Version);
        }
        Assert.Equal(10, NOf(await s.GetAsync("counter", Ct)));
        Assert.Equal(revision, await store.GetRevisionAsync(Ct));
    }

    [Fact]
    public async Task Idempotency_SameDeleteRetried_ReplaysTheTombstone()
    {
        var (store, s) = await OpenAsync();
        await s.PutAsync("k", N(1), cancellationToken: Ct);
        var first = await s.DeleteAsync("k", Expect.Version(1), idempotencyKey: "del-1", cancellationToken: Ct);
        var revision = await store.GetRevisionAsync(Ct);

        var retry = await s.DeleteAsync("k", Expect.Version(1), idempotencyKey: "del-1", cancellationToken: Ct);

        Assert.True(retry.IsApplied);
        Assert.True(retry.Replayed);
        Assert.True(retry.Record!.IsDeleted);
        Assert.Equal(first.Version, retry.Version);
        Assert.Equal(revision, await store.GetRevisionAsync(Ct));
    }

    public static TheoryData<string> DifferentRequests() => ["other value", "other key", "other expectation", "other ttl", "delete", "patch", "txn"];

    [Theory]
    [MemberData(nameof(DifferentRequests))]
    public async Task Idempotency_SameKeyDifferentRequest_ThrowsAndChangesNothing(string variant)
    {
        var (store, s) = await OpenAsync();
        await s.PutAsync("k", N(1), Expect.Absent, idempotencyKey: "op-7", cancellationToken: Ct);

        Func<Task> reuse = variant switch
        {
            "other value" => async () => await s.PutAsync("k", N(2), Expect.Absent, idempotencyKey: "op-7", cancellationToken: Ct),
            "other key" => async () => await s.PutAsync("k2", N(1), Expect.Absent, idempotencyKey: "op-7", cancellationToken: Ct),
            "other expectation" => async () => await s.PutAsync("k", N(1), Expect.Version(1), idempotencyKey: "op-7", cancellationToken: Ct),
            "other ttl" => async () => await s.PutAsync("k", N(1), Expect.Absent, idempotencyKey: "op-7", ttl: TimeSpan.FromHours(1), cancellationToken: Ct),
            "delete" => async () => await s.DeleteAsync("k", idempotencyKey: "op-7", cancellationToken: Ct),
            "patch" => async () => await s.PatchAsync("k", JsonPatch.Create().Increment("/n"), idempotencyKey: "op-7", cancellationToken: Ct),
            // (A one-op transaction without compares is the same request as the put itself, so the txn adds a compare.)
            _ => async () => await s.TransactAsync(new TxnRequest { Compares = [TxnCompare.Absent("k")], Then = [TxnOp.Put("k", N(1), Expect.Absent)] }, "op-7", Ct),
        };

        var e = await AssertRejectedAsync<IdempotencyKeyReusedException>(store, reuse, "op-7");
        Assert.Equal("op-7", e.IdempotencyKey);
        Assert.Equal("idempotency-key-reused", e.Code);
    }

    [Fact]
    public async Task Idempotency_ConflictIsNotRemembered_RetryAppliesOnceTheStateAllows()
    {
        var (_, s) = await OpenAsync();
        await s.PutAsync("k", N(1), cancellationToken: Ct);

        var conflict = await s.PutAsync("k", N(2), Expect.Absent, idempotencyKey: "create-k", cancellationToken: Ct);
        Assert.Equal(ConflictKind.AlreadyExists, conflict.Conflict);
        var again = await s.PutAsync("k", N(2), Expect.Absent, idempotencyKey: "create-k", cancellationToken: Ct);
        Assert.Equal(ConflictKind.AlreadyExists, again.Conflict);
        Assert.False(again.Replayed);

        await s.DeleteAsync("k", cancellationToken: Ct);
        var applied = await s.PutAsync("k", N(2), Expect.Absent, idempotencyKey: "create-k", cancellationToken: Ct);
        Assert.True(applied.IsApplied);
        Assert.False(applied.Replayed);

        // A conflicting first use does not reserve the key either: another request may still use it.
        var conflictOther = await s.PutAsync("x", N(1), Expect.Version(9), idempotencyKey: "free", cancellationToken: Ct);
        Assert.Equal(ConflictKind.VersionMismatch, conflictOther.Conflict);
        Assert.True((await s.PutAsync("y", N(1), idempotencyKey: "free", cancellationToken: Ct)).IsApplied);
    }

    [Fact]
    public async Task Idempotency_AfterRetention_KeyCanBeReused()
    {
        RequireFakeTime();
        var time = new FakeTimeProvider(Epoch);
        var (store, s) = await OpenAsync(new StoreFixtureOptions { TimeProvider = time, IdempotencyRetention = TimeSpan.FromMinutes(10) });
        await s.PutAsync("k", N(1), idempotencyKey: "op", cancellationToken: Ct);

        time.Advance(TimeSpan.FromMinutes(9));
        var replay = await s.PutAsync("k", N(1), idempotencyKey: "op", cancellationToken: Ct);
        Assert.True(replay.Replayed);
        await AssertRejectedAsync<IdempotencyKeyReusedException>(store, async () => await s.PutAsync("k", N(2), idempotencyKey: "op", cancellationToken: Ct), "op");

        time.Advance(TimeSpan.FromMinutes(2));
        var fresh = await s.PutAsync("k", N(2), idempotencyKey: "op", cancellationToken: Ct);
        Assert.True(fresh.IsApplied);
        Assert.False(fresh.Replayed);
        Assert.Equal(2, fresh.Version);
    }

    [Fact]
    public async Task Idempotency_AfterRetention_SameRequestAppliesAgain()
    {
        RequireFakeTime();
        var time = new FakeTimeProvider(Epoch);
        var (_, s) = await OpenAsync(new StoreFixtureOptions { TimeProvider = time, IdempotencyRetention = TimeSpan.FromMinutes(1) });
        await s.IncrementAsync("c", idempotencyKey: "inc", cancellationToken: Ct);
        time.Advance(TimeSpan.FromMinutes(2));

        var again = await s.IncrementAsync("c", idempotencyKey: "inc", cancellationToken: Ct);

        Assert.False(again.Replayed);
        Assert.Equal(2, again.Version);
    }

    [Fact]
    public async Task Idempotency_Transaction_ReplaysTheOriginalResult()
    {
        var (store, s) = await OpenAsync();
        TxnRequest Request() => new()
        {
            Compares = [TxnCompare.Absent("order/1")],
            Then = [TxnOp.Put("order/1", N(1)), TxnOp.PatchKey("stats", JsonPatch.Create().Increment("/n"))],
            Else = [TxnOp.Get("order/1")],
        };

        var first = await s.TransactAsync(Request(), "place-order-1", Ct);
        var revision = await store.GetRevisionAsync(Ct);
        var retry = await s.TransactAsync(Request(), "place-order-1", Ct);

        Assert.True(first.Succeeded);
        Assert.True(retry.Replayed);
        Assert.True(retry.Succeeded);
        Assert.Equal(first.Revision, retry.Revision);
        Assert.Equal(first.Results.Select(r => r.Record!.Version), retry.Results.Select(r => r.Record!.Version));
        Assert.Equal(revision, await store.GetRevisionAsync(Ct));
        Assert.Equal(1, NOf(await s.GetAsync("stats", Ct)));
        await AssertRejectedAsync<IdempotencyKeyReusedException>(store,
            async () => await s.TransactAsync(new TxnRequest { Then = [TxnOp.Put("order/2", N(1))] }, "place-order-1", Ct), "place-order-1");
    }

    [Fact]
    public async Task Idempotency_OptimisticTransactionRetriedWithTheSameKey_AppliesOnce()
    {
        // A client that lost the reply of RunTransactionAsync retries the whole logical operation with the same key.
        var (store, s) = await OpenAsync();
        await s.PutAsync("from", N(100), cancellationToken: Ct);
        await s.PutAsync("to", N(0), cancellationToken: Ct);
        async ValueTask Transfer(OptimisticTransaction tx, CancellationToken ct)
        {
            var from = NOf(await tx.GetAsync("from", ct));
            var to = NOf(await tx.GetAsync("to", ct));
            tx.Put("from", N(from - 30));
            tx.Put("to", N(to + 30));
        }

        var first = await s.RunTransactionAsync(Transfer, NoDelay, "transfer-1", Ct);
        var revision = await store.GetRevisionAsync(Ct);
        var retry = await s.RunTransactionAsync(Transfer, NoDelay, "transfer-1", Ct);

        Assert.True(first.Committed);
        Assert.True(retry.Committed);
        Assert.True(retry.Replayed);
        Assert.Equal(first.Revision, retry.Revision);
        Assert.Equal(revision, await store.GetRevisionAsync(Ct));
        Assert.Equal(70, NOf(await s.GetAsync("from", Ct)));
        Assert.Equal(30, NOf(await s.GetAsync("to", Ct)));
    }

    [Fact]
    public async Task Idempotency_KeysAreScopedToTheirNamespace()
    {
        var store = await OpenStoreAsync();
        var a = Session(store, "agent", "ns-a");
        var b = Session(store, "agent", "ns-b");

        var wa = await a.PutAsync("k", N(1), idempotencyKey: "shared-id", cancellationToken: Ct);
        var wb = await b.PutAsync("other", N(2), idempotencyKey: "shared-id", cancellationToken: Ct);

        Assert.True(wa.IsApplied);
        Assert.True(wb.IsApplied);
        Assert.False(wb.Replayed);
    }

    [Fact]
    public async Task Idempotency_ConcurrentDuplicates_ExactlyOneApplies()
    {
        var store = await OpenStoreAsync();
        var results = await Task.WhenAll(Enumerable.Range(0, 16).Select(i => Task.Run(async () =>
            await Session(store, $"dup-{i % 2}").PatchAsync("balance", JsonPatch.Create().Increment("/n", 5), idempotencyKey: "payment-9", cancellationToken: Ct), Ct)));

        Assert.Single(results, r => !r.Replayed);
        Assert.All(results, r => Assert.True(r.IsApplied));
        Assert.Single(results.Select(r => r.Revision).Distinct());
        Assert.Equal(5, NOf(await Session(store).GetAsync("balance", Ct)));
    }

    [Fact]
    public async Task Idempotency_SurvivesRestart()
    {
        RequireRestart();
        var (store, s) = await OpenAsync();
        var first = await s.PatchAsync("c", JsonPatch.Create().Increment("/n"), idempotencyKey: "inc-1", cancellationToken: Ct);

        var reopened = await RestartStoreAsync(store);
        var s2 = Session(reopened);
        var retry = await s2.PatchAsync("c", JsonPatch.Create().Increment("/n"), idempotencyKey: "inc-1", cancellationToken: Ct);

        Assert.True(retry.Replayed);
        Assert.Equal(first.Revision, retry.Revision);
        Assert.Equal(1, NOf(await s2.GetAsync("c", Ct)));
        await AssertRejectedAsync<IdempotencyKeyReusedException>(reopened,
            async () => await s2.PatchAsync("c", JsonPatch.Create().Increment("/n", 2), idempotencyKey: "inc-1", cancellationToken: Ct), "inc-1");
    }
}
