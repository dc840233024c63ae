using Concord.Crdt;
using Concord.Engine;

namespace Concord.Tests.Crdt;

public sealed class CrdtReplicaTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Replica_WorksOffline_ThenSyncPushesAndAnotherReplicaPulls()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var a = new CrdtReplica<ORSet>("todo", "agent-a/1");
        a.Update((s, id) => s.Add(id, "write report"));
        a.Update((s, id) => s.Add(id, "call bank"));
        a.Update((s, _) => s.Remove("call bank"));
        Assert.True(a.HasPendingChanges);
        Assert.Null(await store.GetAsync("t", "todo", cancellationToken: Ct)); // nothing left the replica yet

        var sync = await a.SyncAsync(new ConcordSession(store, "t", "agent-a"), Ct);
        Assert.True(sync.Pushed);
        Assert.False(a.HasPendingChanges);
        Assert.Equal(1, sync.Version); // three local mutations, one merge

        var b = new CrdtReplica<ORSet>("todo", "agent-b/1");
        await b.SyncAsync(new ConcordSession(store, "t", "agent-b"), Ct);
        Assert.Equal(["write report"], b.State.ElementsAs<string>());
    }

    [Fact]
    public async Task Sync_ReplyLost_RetryIsReplayedNotReapplied()
    {
        await using var engine = ConcordEngine.CreateInMemory();
        var flaky = new FlakyStore(engine, seed: 1, failBefore: 0, failAfter: 0, duplicate: 0);
        var session = new ConcordSession(flaky, "t", "a");
        var replica = new CrdtReplica<PNCounter>("n", "a/1");
        replica.Update((s, id) => s.Increment(id, 5));

        flaky.Scripted.Enqueue("after");
        await Assert.ThrowsAsync<StoreUnavailableException>(async () => await replica.SyncAsync(session, Ct));
        Assert.True(replica.HasPendingChanges); // the replica does not know the batch landed

        var retry = await replica.SyncAsync(session, Ct);
        Assert.True(retry.Replayed);
        Assert.False(replica.HasPendingChanges);
        var record = await engine.GetAsync("t", "n", cancellationToken: Ct);
        Assert.Equal(1, record!.Version);
        Assert.Equal(5, CrdtState.Parse<PNCounter>(record.Value).Value);
    }

    [Fact]
    public async Task Sync_FailedBatchThenMoreChanges_ResendsJoinedWithoutDoubleCounting()
    {
        await using var engine = ConcordEngine.CreateInMemory();
        var flaky = new FlakyStore(engine, seed: 1, failBefore: 0, failAfter: 0, duplicate: 0);
        var session = new ConcordSession(flaky, "t", "a");
        var replica = new CrdtReplica<PNCounter>("n", "a/1");
        replica.Update((s, id) => s.Increment(id, 5));
        flaky.Scripted.Enqueue("after");
        flaky.Scripted.Enqueue("duplicate");
        await Assert.ThrowsAsync<StoreUnavailableException>(async () => await replica.SyncAsync(session, Ct));
        replica.Update((s, id) => s.Increment(id, 2));
        var sync = await replica.SyncAsync(session, Ct); // joined with the batch that did land, and delivered twice
        Assert.True(sync.Pushed);
        Assert.True(sync.Replayed); // the duplicate was answered from the idempotency record…
        Assert.Equal(2, (await engine.GetAsync("t", "n", cancellationToken: Ct))!.Version); // …so only two merges were applied
        Assert.Equal(7, (await new ConcordSession(engine, "t", "r").GetCrdtAsync<PNCounter>("n", Ct)).Value);
        Assert.Equal(7, replica.State.Value);
    }

    [Fact]
    public async Task Replicas_UnderLostRequestsLostRepliesAndDuplicates_ConvergeExactly()
    {
        await using var engine = ConcordEngine.CreateInMemory();
        const int Workers = 8, Rounds = 40;
        var counters = new CrdtReplica<PNCounter>[Workers];
        var sets = new CrdtReplica<ORSet>[Workers];
        var sessions = new ConcordSession[Workers];
        for (var w = 0; w < Workers; w++)
        {
            counters[w] = new CrdtReplica<PNCounter>("count", $"w{w}");
            sets[w] = new CrdtReplica<ORSet>("items", $"w{w}");
            sessions[w] = new ConcordSession(new FlakyStore(engine, seed: 1000 + w, failBefore: 0.15, failAfter: 0.15, duplicate: 0.1), "t", $"w{w}");
        }

        async Task SyncUntilDone(int w)
        {
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    await counters[w].SyncAsync(sessions[w], Ct);
                    await sets[w].SyncAsync(sessions[w], Ct);
                    return;
                }
                catch (StoreUnavailableException) when (attempt < 200)
                {
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, Workers).Select(w => Task.Run(async () =>
        {
            var rng = new Random(w);
            for (var round = 0; round < Rounds; round++)
            {
                counters[w].Update((s, id) => s.Increment(id));
                if (round % 5 == 4) counters[w].Update((s, id) => s.Decrement(id));
                sets[w].Update((s, id) => s.Add(id, $"{id}-{round}"));
                if (round % 3 == 2) sets[w].Update((s, id) => s.Remove($"{id}-{round - 1}"));
                if (rng.Next(3) == 0)
                {
                    try
                    {
                        await counters[w].SyncAsync(sessions[w], Ct);
                        await sets[w].SyncAsync(sessions[w], Ct);
                    }
                    catch (StoreUnavailableException)
                    {
                        // offline for a while: keep working locally
                    }
                }
            }
            await SyncUntilDone(w);
        }, Ct)));
        for (var w = 0; w < Workers; w++) await SyncUntilDone(w); // everyone pulls everyone's last batch

        var reader = new ConcordSession(engine, "t", "reader");
        var count = await reader.GetCrdtAsync<PNCounter>("count", Ct);
        var items = await reader.GetCrdtAsync<ORSet>("items", Ct);
        Assert.Equal(Workers * (Rounds - Rounds / 5), count.Value);
        var expected = Enumerable.Range(0, Workers)
            .SelectMany(w => Enumerable.Range(0, Rounds).Where(r => r % 3 != 1).Select(r => $"w{w}-{r}"))
            .Order(StringComparer.Ordinal);
        Assert.Equal(expected, items.ElementsAs<string>().Order(StringComparer.Ordinal));
        for (var w = 0; w < Workers; w++)
        {
            Assert.Equal(count, counters[w].State);
            Assert.Equal(items, sets[w].State);
            Assert.False(counters[w].HasPendingChanges || sets[w].HasPendingChanges);
        }
    }

    [Fact]
    public async Task Replica_RestoredFromPersistedStateAndPending_ContinuesWithoutLoss()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var session = new ConcordSession(store, "t", "a");
        var first = new CrdtReplica<MVRegister>("status", "a/1");
        first.Update((s, id) => s.Assign(id, "draft"));
        await first.SyncAsync(session, Ct);
        first.Update((s, id) => s.Assign(id, "review"));

        // The process stops with an unsent change; it persisted State and Pending.
        var restored = new CrdtReplica<MVRegister>("status", "a/1", CrdtState.Parse<MVRegister>(first.State.ToJson()), CrdtState.Parse<MVRegister>(first.Pending!.ToJson()));
        restored.Update((s, id) => s.Assign(id, "final"));
        await restored.SyncAsync(session, Ct);
        Assert.Equal(["final"], (await session.GetCrdtAsync<MVRegister>("status", Ct)).ValuesAs<string>());
    }
}
