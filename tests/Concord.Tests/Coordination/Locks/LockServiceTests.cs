using Concord.Coordination.Locks;

namespace Concord.Tests.Coordination.Locks;

/// <summary>Functional tests of <see cref="StoreLockService"/> under virtual time, run on every backend.</summary>
public abstract class LockServiceTests : StoreTestBase
{
    private const string Ns = "locks";
    private IConcordStore _store = null!;
    private StoreLockService _locks = null!;

    protected override ValueTask OnStoreOpenedAsync()
    {
        // Over HTTP both the lock service and the data writes go through the HTTP client: fences are checked by the server.
        _store = ClientStore;
        _locks = new StoreLockService(_store, Clock);
        return ValueTask.CompletedTask;
    }

    private LockRequest For(string owner, TimeSpan? ttl = null, TimeSpan? wait = null, LockMode mode = LockMode.Exclusive) =>
        new() { Owner = owner, Ttl = ttl ?? TimeSpan.FromSeconds(10), Wait = wait ?? TimeSpan.Zero, Mode = mode };

    [Fact]
    public async Task Acquire_FreeLock_GrantsIncreasingTokens()
    {
        var a = await _locks.AcquireAsync(Ns, "job", For("a"), Ct);
        Assert.True(a.IsAcquired);
        Assert.Equal(1, a.Lease!.Token);
        Assert.True(await a.Lease.ReleaseAsync(Ct));
        var b = await _locks.AcquireAsync(Ns, "job", For("b"), Ct);
        Assert.Equal(2, b.Lease!.Token);
    }

    [Fact]
    public async Task Acquire_HeldLock_TryTimesOutNamingTheHolder()
    {
        await _locks.AcquireAsync(Ns, "job", For("a"), Ct);
        var b = await _locks.AcquireAsync(Ns, "job", For("b"), Ct);
        Assert.Equal(LockStatus.Timeout, b.Status);
        Assert.Equal(["a"], b.Holders);
        Assert.Contains("held by a", b.Message);
    }

    [Fact]
    public async Task Kleppmann_PausedHolderWritesWithStaleToken_Refused_NewHolderWriteIntact()
    {
        var session = new ConcordSession(_store, Ns, "setup");
        await session.PutAsync("file", J("""{"owner":"nobody"}"""), Expect.Absent, cancellationToken: Ct);

        var a = (await _locks.AcquireAsync(Ns, "file-lock", For("a", ttl: TimeSpan.FromSeconds(5)), Ct)).Lease!;
        // A pauses (GC, LLM call) past its lease.
        Time.Advance(TimeSpan.FromSeconds(6));
        Assert.True(a.IsLost);
        var b = (await _locks.AcquireAsync(Ns, "file-lock", For("b"), Ct)).Lease!;
        Assert.True(b.Token > a.Token);
        var bWrite = await _store.PutAsync(Ns, "file", J("""{"owner":"b"}"""), new WriteOptions { Expect = Expect.Fenced(b.Fence), Agent = "b" }, Ct);
        Assert.True(bWrite.IsApplied);

        // A wakes up and writes with its old token.
        var aWrite = await _store.PutAsync(Ns, "file", J("""{"owner":"a"}"""), new WriteOptions { Expect = Expect.Fenced(a.Fence), Agent = "a" }, Ct);
        Assert.Equal(ConflictKind.StaleFence, aWrite.Conflict);
        Assert.Contains("stale", aWrite.Message);
        var current = await _store.GetAsync(Ns, "file", null, Ct);
        Assert.Equal("b", current!.Value.GetProperty("owner").GetString());
    }

    [Fact]
    public async Task Fence_NeverIssuedToken_Refused()
    {
        var write = await _store.PutAsync(Ns, "x", J("1"), new WriteOptions { Expect = Expect.Fenced(new Fence("nolock", 3)) }, Ct);
        Assert.Equal(ConflictKind.StaleFence, write.Conflict);
        Assert.Contains("never issued", write.Message);
        Assert.Null(await _store.GetAsync(Ns, "x", null, Ct));
    }

    [Fact]
    public async Task Fence_InsideTransaction_StaleTokenAbortsEverything()
    {
        var a = (await _locks.AcquireAsync(Ns, "l", For("a", ttl: TimeSpan.FromSeconds(1)), Ct)).Lease!;
        Time.Advance(TimeSpan.FromSeconds(2));
        await _locks.AcquireAsync(Ns, "l", For("b"), Ct);
        var txn = await _store.TransactAsync(Ns, new TxnRequest
        {
            Then = [TxnOp.Put("p", J("1"), Expect.Absent), TxnOp.Put("q", J("2"), Expect.Fenced(a.Fence))],
        }, null, Ct);
        Assert.False(txn.IsApplied);
        Assert.Equal(1, txn.FailedOpIndex);
        Assert.Null(await _store.GetAsync(Ns, "p", null, Ct));
    }

    [Fact]
    public async Task Waiters_AreGrantedInFifoOrder()
    {
        var holder = (await _locks.AcquireAsync(Ns, "q", For("h"), Ct)).Lease!;
        var order = new List<string>();
        var waiters = new List<Task>();
        foreach (var name in new[] { "w1", "w2", "w3" })
        {
            var task = Task.Run(async () =>
            {
                var r = await _locks.AcquireAsync(Ns, "q", For(name, wait: TimeSpan.FromMinutes(1)), Ct);
                Assert.True(r.IsAcquired, r.Message);
                lock (order) order.Add(name);
                await r.Lease!.ReleaseAsync(Ct);
            }, Ct);
            waiters.Add(task);
            await WaitUntilAsync(async () => (await _locks.ListAsync(Ns, Ct)).Single().Waiters.Any(w => w.Owner == name));
        }
        await holder.ReleaseAsync(Ct);
        await Task.WhenAll(waiters).WaitAsync(TimeSpan.FromSeconds(20), Ct);
        Assert.Equal(["w1", "w2", "w3"], order);
    }

    [Fact]
    public async Task Wait_HolderLeaseExpires_WaiterGetsLockWithoutRelease()
    {
        await _locks.AcquireAsync(Ns, "e", For("dead", ttl: TimeSpan.FromSeconds(3)), Ct);
        var waiting = _locks.AcquireAsync(Ns, "e", For("b", wait: TimeSpan.FromSeconds(30)), Ct).AsTask();
        await WaitUntilAsync(async () => (await _locks.ListAsync(Ns, Ct)).Single().Waiters.Count == 1);
        Assert.False(waiting.IsCompleted);
        Time.Advance(TimeSpan.FromSeconds(4));
        var result = await waiting.WaitAsync(TimeSpan.FromSeconds(20), Ct);
        Assert.True(result.IsAcquired);
        Assert.Equal(2, result.Lease!.Token);
    }

    [Fact]
    public async Task Wait_TimesOut_AndLeavesTheQueue()
    {
        await _locks.AcquireAsync(Ns, "t", For("a", ttl: TimeSpan.FromMinutes(5)), Ct);
        var waiting = _locks.AcquireAsync(Ns, "t", For("b", wait: TimeSpan.FromSeconds(5)), Ct).AsTask();
        await WaitUntilAsync(async () => (await _locks.ListAsync(Ns, Ct)).Single().Waiters.Count == 1);
        Time.Advance(TimeSpan.FromSeconds(6));
        var result = await waiting.WaitAsync(TimeSpan.FromSeconds(20), Ct);
        Assert.Equal(LockStatus.Timeout, result.Status);
        Assert.Empty((await _locks.ListAsync(Ns, Ct)).Single().Waiters);
    }

    [Fact]
    public async Task Shared_HoldersCoexist_ExclusiveWaits()
    {
        var r1 = await _locks.AcquireAsync(Ns, "s", For("r1", mode: LockMode.Shared), Ct);
        var r2 = await _locks.AcquireAsync(Ns, "s", For("r2", mode: LockMode.Shared), Ct);
        Assert.True(r1.IsAcquired && r2.IsAcquired);
        var w = await _locks.AcquireAsync(Ns, "s", For("w"), Ct);
        Assert.Equal(LockStatus.Timeout, w.Status);
        await r1.Lease!.ReleaseAsync(Ct);
        await r2.Lease!.ReleaseAsync(Ct);
        Assert.True((await _locks.AcquireAsync(Ns, "s", For("w"), Ct)).IsAcquired);
    }

    [Fact]
    public async Task Deadlock_TwoAgentsCrossWaiting_YoungestWaiterGetsDeadlock()
    {
        var aHoldsX = (await _locks.AcquireAsync(Ns, "x", For("a", ttl: TimeSpan.FromMinutes(5)), Ct)).Lease!;
        var bHoldsY = (await _locks.AcquireAsync(Ns, "y", For("b", ttl: TimeSpan.FromMinutes(5)), Ct)).Lease!;
        var aWaitsY = _locks.AcquireAsync(Ns, "y", For("a", wait: TimeSpan.FromMinutes(1)), Ct).AsTask();
        await WaitUntilAsync(async () => (await _locks.ListAsync(Ns, Ct)).Single(l => l.Name == "y").Waiters.Count == 1);
        Time.Advance(TimeSpan.FromSeconds(1));
        var bWaitsX = await _locks.AcquireAsync(Ns, "x", For("b", wait: TimeSpan.FromMinutes(1)), Ct);
        Assert.Equal(LockStatus.Deadlock, bWaitsX.Status);
        Assert.Contains("cycle", bWaitsX.Message);
        Assert.False(aWaitsY.IsCompleted);
        await bHoldsY.ReleaseAsync(Ct);
        Assert.True((await aWaitsY.WaitAsync(TimeSpan.FromSeconds(20), Ct)).IsAcquired);
        await aHoldsX.ReleaseAsync(Ct);
    }

    [Fact]
    public async Task Acquire_AlreadyHeldBySameOwner_Deadlock()
    {
        await _locks.AcquireAsync(Ns, "r", For("a"), Ct);
        var again = await _locks.AcquireAsync(Ns, "r", For("a", wait: TimeSpan.FromSeconds(5)), Ct);
        Assert.Equal(LockStatus.Deadlock, again.Status);
        Assert.Contains("re-entrant", again.Message);
    }

    [Fact]
    public async Task AcquireAll_OppositeOrders_NeverDeadlock_AndAllOrNothing()
    {
        var tasks = Enumerable.Range(0, 8).Select(i => Task.Run(async () =>
        {
            var names = i % 2 == 0 ? new[] { "m1", "m2", "m3" } : ["m3", "m2", "m1"];
            for (var round = 0; round < 5; round++)
            {
                var r = await _locks.AcquireAllAsync(Ns, names, For($"agent{i}", wait: TimeSpan.FromMinutes(1)), Ct);
                Assert.True(r.IsAcquired, r.Message);
                Assert.Equal(["m1", "m2", "m3"], r.Leases.Select(l => l.Name));
                foreach (var l in r.Leases) await l.ReleaseAsync(Ct);
            }
        }, Ct)).ToArray();
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(30), Ct);

        var blocker = (await _locks.AcquireAsync(Ns, "m2", For("blocker", ttl: TimeSpan.FromMinutes(5)), Ct)).Lease!;
        var partial = await _locks.AcquireAllAsync(Ns, ["m1", "m2"], For("z"), Ct);
        Assert.False(partial.IsAcquired);
        Assert.Equal("m2", partial.FailedLock);
        Assert.Empty((await _locks.ListAsync(Ns, Ct)).Single(l => l.Name == "m1").Holders);
        await blocker.ReleaseAsync(Ct);
    }

    [Fact]
    public async Task Renew_ExtendsLease_LostAfterExpiryCannotRenew()
    {
        var lease = (await _locks.AcquireAsync(Ns, "r", For("a", ttl: TimeSpan.FromSeconds(5)), Ct)).Lease!;
        Time.Advance(TimeSpan.FromSeconds(4));
        Assert.True(await lease.RenewAsync(TimeSpan.FromSeconds(5), Ct));
        Time.Advance(TimeSpan.FromSeconds(4));
        Assert.False(lease.IsLost);
        Time.Advance(TimeSpan.FromSeconds(2));
        Assert.True(lease.IsLost);
        Assert.True(lease.Lost.IsCancellationRequested);
        Assert.False(await lease.RenewAsync(null, Ct));
    }

    [Fact]
    public async Task MutualExclusion_RealConcurrency_NoOverlapAndFencedCounterExact()
    {
        var session = new ConcordSession(_store, Ns, "setup");
        await session.PutAsync("counter", J("""{"n":0}"""), Expect.Absent, cancellationToken: Ct);
        var inside = 0;
        var overlaps = 0;
        var tasks = Enumerable.Range(0, 8).Select(i => Task.Run(async () =>
        {
            for (var round = 0; round < 10; round++)
            {
                var r = await _locks.AcquireAsync(Ns, "mutex", For($"w{i}", ttl: TimeSpan.FromMinutes(5), wait: TimeSpan.FromMinutes(5)), Ct);
                Assert.True(r.IsAcquired, r.Message);
                if (Interlocked.Increment(ref inside) != 1) Interlocked.Increment(ref overlaps);
                var current = await _store.GetAsync(Ns, "counter", null, Ct);
                var n = current!.Value.GetProperty("n").GetInt32();
                // A blind (fenced) full overwrite is safe under the lock.
                var w = await _store.PutAsync(Ns, "counter", J($$"""{"n":{{n + 1}}}"""), new WriteOptions { Expect = Expect.Fenced(r.Lease!.Fence) }, Ct);
                Assert.True(w.IsApplied, w.Message);
                Interlocked.Decrement(ref inside);
                await r.Lease.ReleaseAsync(Ct);
            }
        }, Ct)).ToArray();
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(60), Ct);
        Assert.Equal(0, overlaps);
        Assert.Equal(80, (await _store.GetAsync(Ns, "counter", null, Ct))!.Value.GetProperty("n").GetInt32());
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        for (var i = 0; i < 2000; i++)
        {
            if (await condition()) return;
            await Task.Delay(5, Ct);
        }
        Assert.Fail("condition not reached");
    }
}

public sealed class MemoryLockServiceTests : LockServiceTests
{
    protected override TestBackend Backend => TestBackend.Memory;
}

public sealed class EmbeddedLockServiceTests : LockServiceTests
{
    protected override TestBackend Backend => TestBackend.Embedded;
}

public sealed class PostgresLockServiceTests : LockServiceTests
{
    protected override TestBackend Backend => TestBackend.Postgres;
}

public sealed class RedisLockServiceTests : LockServiceTests
{
    protected override TestBackend Backend => TestBackend.Redis;
}

public sealed class HttpLockServiceTests : LockServiceTests
{
    protected override TestBackend Backend => TestBackend.Http;
}
