using System.Collections.Concurrent;
using Concord.Client;
using Concord.Coordination.Queues;
using Concord.Redis;
using Concord.Server;
using Concord.Tests.Coordination;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Concord.Tests.Redis;

/// <summary>
/// What only the native Redis queue has: tasks really travel through Redis Streams and a consumer group (checked on the
/// Redis structures), leases expire and are reclaimed under real time, and many consumers race on one queue. The
/// shared suites (QueueServiceTests, QueueConcurrencyTests) run on it as well.
/// </summary>
public sealed class RedisQueueServiceTests : StoreTestBase
{
    private const string Ns = "native";

    protected override TestBackend Backend => TestBackend.RedisNative;

    protected override bool UseRealTime => true;

    private RedisStore Redis => (RedisStore)Store;

    private IDatabase Db => Redis.Database;

    private string Base(string queue) => $"{Redis.Prefix}:q:{Ns}/{queue}|";

    private RedisQueueService Service(int maxAttempts = 5) =>
        (RedisQueueService)CreateQueueService(new QueueServiceOptions { TimeProvider = TimeProvider.System, DefaultMaxAttempts = maxAttempts });

    [Fact]
    public async Task LeaseAndAck_GoThroughPriorityStreamsAndTheConsumerGroupsPendingList()
    {
        var queues = Service();
        var low = await queues.EnqueueAsync(Ns, "jobs", J(new { n = "low" }), null, Ct);
        var high = await queues.EnqueueAsync(Ns, "jobs", J(new { n = "high" }), new EnqueueOptions { Priority = 5 }, Ct);
        await queues.EnqueueAsync(Ns, "jobs", J(new { n = "later" }), new EnqueueOptions { Delay = TimeSpan.FromHours(1) }, Ct);
        Assert.Equal(1, await Db.StreamLengthAsync(Base("jobs") + "s:0"));
        Assert.Equal(1, await Db.StreamLengthAsync(Base("jobs") + "s:5"));
        Assert.Equal(1, await Db.SortedSetLengthAsync(Base("jobs") + "delayed")); // delayed tasks are not in a stream yet

        var lease = (await queues.LeaseAsync(Ns, "jobs", "worker-1", TimeSpan.FromMinutes(1), TimeSpan.Zero, Ct)).Lease!;
        Assert.Equal(high.TaskId, lease.TaskId);
        var pending = await Db.StreamPendingAsync(Base("jobs") + "s:5", "g");
        Assert.Equal(1, pending.PendingMessageCount);
        Assert.Equal("worker-1", (string?)Assert.Single(pending.Consumers).Name);
        Assert.Equal(0, (await Db.StreamPendingAsync(Base("jobs") + "s:0", "g")).PendingMessageCount);

        Assert.True((await queues.AckAsync(lease, cancellationToken: Ct)).IsAcked);
        Assert.Equal(0, await Db.StreamLengthAsync(Base("jobs") + "s:5")); // XACK + XDEL
        Assert.Equal(0, (await Db.StreamPendingAsync(Base("jobs") + "s:5", "g")).PendingMessageCount);
        Assert.False(await Db.KeyExistsAsync(Base("jobs") + "t:" + lease.TaskId));
        Assert.Equal(low.TaskId, (await queues.LeaseAsync(Ns, "jobs", "worker-1", TimeSpan.FromMinutes(1), TimeSpan.Zero, Ct)).Lease!.TaskId);
    }

    [Fact]
    public async Task ExpiredLease_RealTime_WaitingConsumerReclaimsIt_StaleAckRefusedAndAppliesNothing()
    {
        var queues = Service();
        await queues.EnqueueAsync(Ns, "jobs", J(new { n = 1 }), null, Ct);
        var crashed = (await queues.LeaseAsync(Ns, "jobs", "crasher", TimeSpan.FromMilliseconds(200), TimeSpan.Zero, Ct)).Lease!;

        // Nothing else is enqueued: only the crasher's deadline (a timer, not a notification) can wake this wait.
        var rescued = (await queues.LeaseAsync(Ns, "jobs", "rescuer", TimeSpan.FromMinutes(1), TimeSpan.FromSeconds(15), Ct)).Lease;
        Assert.NotNull(rescued);
        Assert.Equal(crashed.TaskId, rescued.TaskId);
        Assert.Equal(2, rescued.Attempt);
        Assert.Contains("'crasher' expired", rescued.LastError);
        Assert.NotEqual(crashed.Receipt, rescued.Receipt);

        // The reclaimed entry left the pending list; the new delivery is pending for the rescuer only.
        var pending = await Db.StreamPendingAsync(Base("jobs") + "s:0", "g");
        Assert.Equal(1, pending.PendingMessageCount);
        Assert.Equal("rescuer", (string?)pending.Consumers.Single(c => c.PendingMessageCount > 0).Name);

        var late = await queues.AckAsync(crashed, [TxnOp.Put("effect", J("\"crasher\""), Expect.Absent)], Ct);
        Assert.Equal(AckStatus.StaleReceipt, late.Status);
        Assert.Null(await Store.GetAsync(Ns, "effect", null, Ct));
        Assert.False((await queues.ExtendAsync(crashed, TimeSpan.FromMinutes(1), Ct)).IsExtended);

        Assert.True((await queues.AckAsync(rescued, [TxnOp.Put("effect", J("\"rescuer\""), Expect.Absent)], Ct)).IsAcked);
        Assert.Equal("rescuer", (await Store.GetAsync(Ns, "effect", null, Ct))!.Value.GetString());
        Assert.Equal(0, (await queues.GetStatsAsync(Ns, "jobs", Ct)).Total);
    }

    [Fact]
    public async Task AckWithEffects_StaleReceipt_NeitherAckNorEffect_ThenCurrentReceipt_Both()
    {
        var queues = Service();
        await queues.EnqueueAsync(Ns, "jobs", J(new { n = 1 }), null, Ct);
        var first = (await queues.LeaseAsync(Ns, "jobs", "a", TimeSpan.FromMinutes(1), TimeSpan.Zero, Ct)).Lease!;
        Assert.Equal(NackStatus.Requeued, (await queues.NackAsync(first, "retry", cancellationToken: Ct)).Status);
        var second = (await queues.LeaseAsync(Ns, "jobs", "b", TimeSpan.FromMinutes(1), TimeSpan.Zero, Ct)).Lease!;
        var revision = await Store.GetRevisionAsync(Ct);

        // The stale ack's effect would apply on its own (the key is absent): the hook's receipt check must refuse the commit.
        Assert.Equal(AckStatus.StaleReceipt, (await queues.AckAsync(first, [TxnOp.Put("doc", J("1"), Expect.Absent)], Ct)).Status);
        Assert.Null(await Store.GetAsync(Ns, "doc", null, Ct));
        Assert.Equal(revision, await Store.GetRevisionAsync(Ct));
        Assert.Equal(QueueTaskState.Leased, (await queues.GetTaskAsync(Ns, "jobs", second.TaskId, Ct))!.State);

        var ack = await queues.AckAsync(second, [TxnOp.Put("doc", J("2"), Expect.Absent)], Ct);
        Assert.True(ack.IsAcked);
        Assert.Equal(revision + 1, ack.Revision);
        Assert.Equal(2, (await Store.GetAsync(Ns, "doc", null, Ct))!.Value.GetInt32());
        Assert.Null(await queues.GetTaskAsync(Ns, "jobs", second.TaskId, Ct));
    }

    [Fact]
    public async Task AckWithoutEffects_RetriedAfterLostReply_Replayed()
    {
        var queues = Service();
        await queues.EnqueueAsync(Ns, "jobs", J(new { n = 1 }), null, Ct);
        var lease = (await queues.LeaseAsync(Ns, "jobs", "a", TimeSpan.FromMinutes(1), TimeSpan.Zero, Ct)).Lease!;
        var first = await queues.AckAsync(lease, cancellationToken: Ct);
        var retry = await queues.AckAsync(lease, cancellationToken: Ct);
        Assert.True(first.IsAcked && !first.Replayed);
        Assert.True(retry.IsAcked && retry.Replayed);
        Assert.Equal(AckStatus.StaleReceipt, (await queues.AckAsync(lease with { Receipt = "1.999" }, cancellationToken: Ct)).Status);
    }

    /// <summary>
    /// Many consumers, real concurrency, no crashes: every task is acked exactly once (from the consumers' records and
    /// from the journal), a group never has two tasks in flight (checked live by the consumers and afterwards on the
    /// journal, which the lease and ack scripts write in Redis's commit order), and groups run in enqueue order.
    /// </summary>
    [Fact]
    public async Task ManyConsumers_EachTaskAckedOnce_GroupsNeverOverlapAndRunFifo()
    {
        var queues = Service();
        const int tasks = 400, consumers = 8, groupCount = 6;
        var groupOf = new Dictionary<string, string?>();
        var enqueueOrder = new Dictionary<string, List<string>>();
        for (var i = 0; i < tasks; i++)
        {
            var group = i % 2 == 0 ? $"g{i % groupCount}" : null;
            var r = await queues.EnqueueAsync(Ns, "work", J(new { i }), new EnqueueOptions { Group = group, Priority = i % 3 }, Ct);
            groupOf[r.TaskId] = group;
            if (group is not null) (enqueueOrder.TryGetValue(group, out var list) ? list : enqueueOrder[group] = []).Add(r.TaskId);
        }

        var acked = new ConcurrentBag<string>();
        var ackedOrder = new ConcurrentDictionary<string, ConcurrentQueue<string>>();
        var inFlight = new ConcurrentDictionary<string, int>();
        var overlaps = 0;
        var remaining = tasks;
        await Task.WhenAll(Enumerable.Range(0, consumers).Select(c => Task.Run(async () =>
        {
            while (Volatile.Read(ref remaining) > 0)
            {
                var result = await queues.LeaseAsync(Ns, "work", $"c{c}", TimeSpan.FromMinutes(1), TimeSpan.FromMilliseconds(50), Ct);
                if (result.Lease is not { } lease) continue;
                if (lease.Group is { } g && inFlight.AddOrUpdate(g, 1, (_, n) => n + 1) > 1) Interlocked.Increment(ref overlaps);
                await Task.Yield();
                if (lease.Group is { } g2)
                {
                    inFlight.AddOrUpdate(g2, 0, (_, n) => n - 1);
                    ackedOrder.GetOrAdd(g2, _ => new ConcurrentQueue<string>()).Enqueue(lease.TaskId);
                }
                var ack = await queues.AckAsync(lease, [TxnOp.PatchKey("count", JsonPatch.Create().Increment("/n"))], Ct);
                Assert.True(ack.IsAcked, ack.Message);
                acked.Add(lease.TaskId);
                Interlocked.Decrement(ref remaining);
            }
        }, Ct)));

        Assert.Equal(0, overlaps);
        Assert.Equal(tasks, acked.Count);
        Assert.Equal(groupOf.Keys.Order(), acked.Order());
        Assert.Equal(tasks, (await Store.GetAsync(Ns, "count", null, Ct))!.Value.GetProperty("n").GetInt32());
        foreach (var (group, order) in enqueueOrder) Assert.Equal(order, ackedOrder[group]);
        Assert.Equal(0, (await queues.GetStatsAsync(Ns, "work", Ct)).Total);

        var journal = await queues.ReadJournalAsync(Ns, "work");
        Assert.All(journal.Where(e => e.Event == "ack").GroupBy(e => e.TaskId), g => Assert.Single(g));
        Assert.Equal(tasks, journal.Count(e => e.Event == "ack"));
        var holder = new Dictionary<string, string>();
        foreach (var (e, taskId, _) in journal)
        {
            if (groupOf[taskId] is not { } group) continue;
            if (e == "lease") Assert.True(holder.TryAdd(group, taskId), $"group {group}: {taskId} leased while {holder.GetValueOrDefault(group)} was in flight");
            else if (e == "ack") Assert.True(holder.Remove(group, out var h) && h == taskId);
        }
    }

    [Fact]
    public async Task PreparedAck_StaleInCallersTransaction_WholeTransactionRefusedOnTheMarker_NothingWritten()
    {
        var queues = Service();
        await queues.EnqueueAsync(Ns, "jobs", J(new { n = 1 }), null, Ct);
        var lease = (await queues.LeaseAsync(Ns, "jobs", "a", TimeSpan.FromMinutes(1), TimeSpan.Zero, Ct)).Lease!;
        var prepared = await queues.PrepareAckAsync(lease, Ct);
        Assert.True((await queues.AckAsync(lease, cancellationToken: Ct)).IsAcked);
        var before = await Store.GetRevisionAsync(Ct);

        var result = await Store.TransactAsync(Ns, new TxnRequest { Then = [TxnOp.Put("doc", J("1"), Expect.Absent), .. prepared.Ops] }, null, Ct);

        Assert.False(result.IsApplied);
        Assert.Equal(1, result.FailedOpIndex);
        Assert.Equal(ConflictKind.NotFound, result.Conflict!.Conflict);
        Assert.Contains("prepare the ack again", result.Conflict.Message);
        Assert.Null(await Store.GetAsync(Ns, "doc", null, Ct));
        Assert.Equal(before, await Store.GetRevisionAsync(Ct));
    }

    [Fact]
    public async Task PreparedEnqueue_DedupTaken_TransactionRefused_ThenCommitted_IntoTheStream_MarkersNeverStayInKeySpace()
    {
        var queues = Service();
        var first = await queues.EnqueueAsync(Ns, "jobs", J(1), new EnqueueOptions { DedupId = "d1" }, Ct);
        var dup = await queues.PrepareEnqueueAsync(Ns, "jobs", J(2), new EnqueueOptions { DedupId = "d1" }, Ct);
        var refused = await Store.TransactAsync(Ns, new TxnRequest { Then = [.. dup.Ops, TxnOp.Put("doc", J("1"), Expect.Absent)] }, null, Ct);
        Assert.False(refused.IsApplied);
        Assert.Equal(0, refused.FailedOpIndex);
        Assert.Equal(ConflictKind.AlreadyExists, refused.Conflict!.Conflict);
        Assert.Contains(first.TaskId, refused.Conflict.Message);
        Assert.Contains("d1", refused.Conflict.Message);
        Assert.Null(await Store.GetAsync(Ns, "doc", null, Ct));
        Assert.Equal(1, await Db.StreamLengthAsync(Base("jobs") + "s:0"));

        var fresh = await queues.PrepareEnqueueAsync(Ns, "jobs", J(3), new EnqueueOptions { DedupId = "d2", Priority = 7 }, Ct);
        var committed = await Store.TransactAsync(Ns, new TxnRequest { Then = [.. fresh.Ops, TxnOp.Put("doc", J("1"), Expect.Absent)] }, null, Ct);
        Assert.True(committed.IsApplied);
        Assert.Equal(1, await Db.StreamLengthAsync(Base("jobs") + "s:7")); // a real task in its priority stream
        Assert.Equal(QueueTaskState.Ready, (await queues.GetTaskAsync(Ns, "jobs", fresh.TaskId, Ct))!.State);
        Assert.Empty((await Store.ListAsync(Ns, new ListRequest { Prefix = RedisQueueService.MarkerPrefix }, Ct)).Records);
        Assert.Equal(fresh.TaskId, (await queues.LeaseAsync(Ns, "jobs", "a", TimeSpan.FromMinutes(1), TimeSpan.Zero, Ct)).Lease!.TaskId);
    }

    [Fact]
    public async Task PreparedEnqueue_CommittedTwice_SecondRefused_OneTask()
    {
        var queues = Service();
        var prepared = await queues.PrepareEnqueueAsync(Ns, "jobs", J(1), null, Ct);
        Assert.True((await Store.TransactAsync(Ns, new TxnRequest { Then = prepared.Ops }, null, Ct)).IsApplied);
        var again = await Store.TransactAsync(Ns, new TxnRequest { Then = prepared.Ops }, null, Ct);
        Assert.False(again.IsApplied);
        Assert.Equal(ConflictKind.AlreadyExists, again.Conflict!.Conflict);
        Assert.Equal(1, (await queues.GetStatsAsync(Ns, "jobs", Ct)).Ready);
    }

    [Fact]
    public async Task PreparedOps_InTheBranchNotTaken_DoNothing_InTheBranchTaken_Commit()
    {
        var queues = Service();
        await queues.EnqueueAsync(Ns, "jobs", J(1), null, Ct);
        var lease = (await queues.LeaseAsync(Ns, "jobs", "a", TimeSpan.FromMinutes(1), TimeSpan.Zero, Ct)).Lease!;
        var ack = await queues.PrepareAckAsync(lease, Ct);
        var followUp = await queues.PrepareEnqueueAsync(Ns, "next", J(2), null, Ct);

        // "flag" is absent: the Else branch runs, so the ack in Then does not happen and the follow-up in Else does.
        var result = await Store.TransactAsync(Ns, new TxnRequest
        {
            Compares = [TxnCompare.Exists("flag")],
            Then = [.. ack.Ops],
            Else = [.. followUp.Ops, TxnOp.Put("flag", J(true), Expect.Absent)],
        }, null, Ct);
        Assert.True(result.IsApplied);
        Assert.False(result.Succeeded);
        Assert.Equal(QueueTaskState.Leased, (await queues.GetTaskAsync(Ns, "jobs", lease.TaskId, Ct))!.State);
        Assert.Equal(QueueTaskState.Ready, (await queues.GetTaskAsync(Ns, "next", followUp.TaskId, Ct))!.State);

        // Now "flag" exists: Then runs and acks.
        var second = await Store.TransactAsync(Ns, new TxnRequest { Compares = [TxnCompare.Exists("flag")], Then = [.. ack.Ops], Else = [.. followUp.Ops] }, null, Ct);
        Assert.True(second.IsApplied && second.Succeeded);
        Assert.Null(await queues.GetTaskAsync(Ns, "jobs", lease.TaskId, Ct));
        Assert.Equal(1, (await queues.GetStatsAsync(Ns, "next", Ct)).Total);
        Assert.True((await queues.AckAsync(lease, cancellationToken: Ct)).Replayed); // the prepared ack left the replay marker too
    }

    [Fact]
    public async Task Server_OnRedisBackend_ServesTheNativeQueue_OverHttp()
    {
        await using var app = await ConcordServer.CreateAsync([], o => o.Backend = "redis", Store, b =>
        {
            b.WebHost.UseTestServer();
            b.Logging.ClearProviders();
        }, Ct);
        await app.StartAsync(Ct);
        Assert.IsType<RedisQueueService>(app.Services.GetRequiredService<IQueueService>());
        using var http = app.GetTestServer().CreateClient();
        var client = new HttpQueueService(http);

        var enqueued = await client.EnqueueAsync(Ns, "web", J(new { n = 1 }), null, Ct);
        Assert.Equal(1, await Db.StreamLengthAsync(Base("web") + "s:0")); // the HTTP enqueue landed in the native stream
        var lease = (await client.LeaseAsync(Ns, "web", "http-worker", TimeSpan.FromMinutes(1), TimeSpan.Zero, Ct)).Lease!;
        Assert.Equal(enqueued.TaskId, lease.TaskId);
        Assert.True((await client.AckAsync(lease, [TxnOp.Put("done", J("true"), Expect.Absent)], Ct)).IsAcked);
        Assert.True((await Store.GetAsync(Ns, "done", null, Ct))!.Value.GetBoolean());
        Assert.Equal(0, await Db.StreamLengthAsync(Base("web") + "s:0"));
        await app.StopAsync(Ct);
    }
}
