using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Concord.Coordination.Queues;

namespace Concord.Tests.Coordination.Queues;

/// <summary>
/// Real concurrency, real time: producers and crashing consumers race on one queue. Checks exactly-once effects (the
/// effect commits with the ack), and for groups: no overlap and FIFO, both from the consumers' timeline and from the
/// store's own change history of the in-flight index. Bounded by task counts, not by time.
/// </summary>
public abstract class QueueConcurrencyTests : StoreTestBase
{
    private const string Ns = "stress";
    private const string Queue = "work";
    private static readonly TimeSpan Visibility = TimeSpan.FromMilliseconds(150);

    protected override bool UseRealTime => true;

    protected abstract int TaskCount { get; }

    /// <summary>
    /// True when every lease, enqueue and ack is its own commit in the store's history (the store-level service). A native
    /// queue only commits acks with effects; its lease and enqueue revisions are the store revision they ran at (a lower
    /// bound), so the timeline check allows equality, FIFO is checked per producer, and the in-flight history is checked
    /// by the native queue's own tests.
    /// </summary>
    protected virtual bool QueueOpsAreStoreCommits => true;

    protected sealed record Enqueued(int Seq, string TaskId, string? Group, long Revision);

    /// <summary>Each task's position in commit order of the enqueues: the enqueue's own revision by default.</summary>
    protected virtual Task<Dictionary<string, long>> EnqueueOrderAsync(IQueueService service, IReadOnlyCollection<Enqueued> enqueued) =>
        Task.FromResult(enqueued.ToDictionary(e => e.TaskId, e => e.Revision));

    protected sealed record Span(string TaskId, string? Group, long Start, long End);

    /// <summary>
    /// True when a lease's <see cref="QueueLease.Revision"/> is a commit of its own, so a group's next lease starts strictly
    /// after the previous ack's revision. The native Redis queue reports the store revision the lease observed instead
    /// (a lease is not a store commit): the next lease may observe exactly the previous ack's revision, never less.
    /// </summary>
    protected virtual bool LeaseRevisionIsCommit => true;

    [Fact]
    public async Task CrashingConsumers_EveryEffectExactlyOnce_GroupsNeverOverlapAndRunFifo()
    {
        var service = CreateQueueService(new QueueServiceOptions { TimeProvider = TimeProvider.System, DefaultMaxAttempts = 10_000 });
        // Safety net only (a hang would otherwise block the run); the assertions below do not depend on timing.
        using var safety = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        safety.CancelAfter(TimeSpan.FromSeconds(90));
        var ct = safety.Token;
        string?[] groups = ["acct/1", "acct/2", "acct/3", "acct/4", "acct/5", null, null];
        const int producers = 2, consumers = 6;
        var enqueued = new ConcurrentBag<Enqueued>();
        var spans = new ConcurrentBag<Span>();
        var acked = 0;
        var crashes = 0;
        var staleRefusals = 0;

        var producerTasks = Enumerable.Range(0, producers).Select(p => Task.Run(async () =>
        {
            for (var seq = p; seq < TaskCount; seq += producers)
            {
                var group = groups[seq % groups.Length];
                var r = await service.EnqueueAsync(Ns, Queue, J(new { seq }), new EnqueueOptions { Group = group }, ct);
                Assert.True(r.IsEnqueued);
                enqueued.Add(new Enqueued(seq, r.TaskId, group, r.Revision));
            }
        }, ct)).ToList();

        var consumerTasks = Enumerable.Range(0, consumers).Select(c => Task.Run(async () =>
        {
            var random = new Random(1000 + c);
            var name = $"consumer-{c}";
            while (Volatile.Read(ref acked) < TaskCount)
            {
                var result = await service.LeaseAsync(Ns, Queue, name, Visibility, TimeSpan.FromMilliseconds(100), ct);
                if (!result.IsLeased) continue;
                var lease = result.Lease!;
                var seq = lease.Payload.GetProperty("seq").GetInt32();
                var effects = new List<TxnOp> { TxnOp.PatchKey($"effects/{lease.TaskId}", JsonPatch.Create().Increment("/count")) };
                if (lease.Group is { } g) effects.Add(TxnOp.PatchKey($"order/{g}", JsonPatch.Create().Append("/seq", JsonValue.Create(seq))));

                var roll = random.NextDouble();
                if (roll < 0.15)
                {
                    Interlocked.Increment(ref crashes); // crashed after leasing: never acks, the lease must expire
                    continue;
                }
                if (roll < 0.22)
                {
                    await service.NackAsync(lease, "transient failure", cancellationToken: ct); // stale if this consumer was too slow: fine
                    continue;
                }
                if (roll < 0.32) await Task.Delay(Visibility * 2, ct); // paused past its lease (GC, slow LLM call): a zombie

                var ack = await service.AckAsync(lease, effects, ct);
                Assert.NotEqual(AckStatus.EffectConflict, ack.Status);
                if (ack.Status == AckStatus.StaleReceipt)
                {
                    Interlocked.Increment(ref staleRefusals);
                    continue;
                }
                Assert.False(ack.Replayed);
                spans.Add(new Span(lease.TaskId, lease.Group, lease.Revision, ack.Revision));
                Interlocked.Increment(ref acked);
                if (roll > 0.9)
                {
                    // The reply was lost and the consumer retries: the retry must report the same ack, not apply twice.
                    var retry = await service.AckAsync(lease, effects, ct);
                    Assert.True(retry.IsAcked && retry.Replayed);
                }
            }
        }, ct)).ToList();

        await Task.WhenAll(producerTasks.Concat(consumerTasks));

        // Exactly once: every task acked once, its effect applied once, nothing left, nothing dead.
        Assert.Equal(TaskCount, acked);
        Assert.Equal(TaskCount, enqueued.Count);
        foreach (var e in enqueued)
        {
            var effect = await Store.GetAsync(Ns, $"effects/{e.TaskId}", null, Ct);
            Assert.Equal(1, effect!.Value.GetProperty("count").GetInt32());
        }
        Assert.Equal(0, (await service.GetStatsAsync(Ns, Queue, Ct)).Total);
        Assert.True(crashes > 0, "the run should include crashed consumers");

        var enqueueOrder = await EnqueueOrderAsync(service, enqueued);
        foreach (var group in groups.OfType<string>())
        {
            // FIFO: the group's effects were applied in enqueue (commit) order.
            var applied = (await Store.GetAsync(Ns, $"order/{group}", null, Ct))!.Value.GetProperty("seq").EnumerateArray().Select(x => x.GetInt32()).ToList();
            if (QueueOpsAreStoreCommits)
            {
                var expected = enqueued.Where(e => e.Group == group).OrderBy(e => enqueueOrder[e.TaskId]).Select(e => e.Seq).ToList();
                Assert.Equal(expected, applied);
            }
            else
            {
                // Every task of the group once, and each producer's tasks (enqueued one after another) in its order.
                Assert.Equal(enqueued.Where(e => e.Group == group).Select(e => e.Seq).Order(), applied.Order());
                for (var p = 0; p < producers; p++)
                {
                    var mine = applied.Where(seq => seq % producers == p).ToList();
                    Assert.Equal(mine.Order(), mine);
                }
            }

            // Consumers' timeline: successful executions of one group never overlap (lease revision → ack revision).
            var timeline = spans.Where(s => s.Group == group).OrderBy(s => s.Start).ToList();
            for (var i = 1; i < timeline.Count; i++)
            {
                var disjoint = QueueOpsAreStoreCommits && LeaseRevisionIsCommit ? timeline[i - 1].End < timeline[i].Start : timeline[i - 1].End <= timeline[i].Start;
                Assert.True(disjoint, $"group {group}: {timeline[i - 1]} overlaps {timeline[i]}");
            }
        }
        if (!QueueOpsAreStoreCommits)
        {
            TestContext.Current.SendDiagnosticMessage($"tasks {TaskCount}, crashes {crashes}, stale acks refused {staleRefusals}");
            return;
        }

        // The store's own timeline: in-flight intervals (put → delete of the in-flight entry) of one group never overlap,
        // zombie leases included.
        var intervals = await InFlightIntervalsAsync(service);
        var groupOf = enqueued.ToDictionary(e => e.TaskId, e => e.Group);
        foreach (var group in groups.OfType<string>())
        {
            var mine = intervals.Where(iv => groupOf[iv.TaskId] == group).OrderBy(iv => iv.Start).ToList();
            Assert.True(mine.Count >= groupOf.Count(kv => kv.Value == group));
            for (var i = 1; i < mine.Count; i++)
                Assert.True(mine[i - 1].End <= mine[i].Start, $"group {group}: in flight together: {mine[i - 1]} and {mine[i]}");
        }
        TestContext.Current.SendDiagnosticMessage($"tasks {TaskCount}, crashes {crashes}, stale acks refused {staleRefusals}, leases {intervals.Count}");
    }

    /// <summary>Replays the store's change history of the in-flight index into (task, start revision, end revision).</summary>
    protected virtual async Task<List<Span>> InFlightIntervalsAsync(IQueueService service)
    {
        var prefix = StoreQueueService.KeyPrefix + Queue + "/";
        var sentinel = (await Store.PutAsync(Ns, prefix + "zz-end-of-test", J("1"), new WriteOptions { Expect = Expect.Absent }, Ct)).Revision;
        var open = new Dictionary<string, long>();
        var spans = new List<Span>();
        await foreach (var change in Store.WatchAsync(Ns, new WatchRequest { Prefix = prefix, FromRevision = 1 }, Ct))
        {
            if (change.Revision >= sentinel) break;
            if (!change.Key.StartsWith(prefix + "f/", StringComparison.Ordinal)) continue;
            var taskId = change.Key[(change.Key.LastIndexOf('/') + 1)..];
            if (change.Kind == ChangeKind.Put) open[change.Key] = change.Revision;
            else
            {
                Assert.True(open.Remove(change.Key, out var start));
                spans.Add(new Span(taskId, null, start, change.Revision));
            }
        }
        Assert.Empty(open);
        return spans;
    }

    [Fact]
    public async Task ConcurrentEnqueues_SameDedupId_ExactlyOneTask()
    {
        var service = CreateQueueService(new QueueServiceOptions { TimeProvider = TimeProvider.System });
        var results = await Task.WhenAll(Enumerable.Range(0, 16).Select(i => Task.Run(async () =>
            await service.EnqueueAsync(Ns, Queue, J(new { i }), new EnqueueOptions { DedupId = "once", Group = i % 2 == 0 ? "g" : null }, Ct))));
        Assert.Single(results, r => r.IsEnqueued);
        Assert.Single(results.Select(r => r.TaskId).Distinct());
        Assert.Equal(1, (await service.GetStatsAsync(Ns, Queue, Ct)).Total);
    }

    [Fact]
    public async Task ConcurrentConsumers_OneTask_LeasedByExactlyOne()
    {
        var service = CreateQueueService(new QueueServiceOptions { TimeProvider = TimeProvider.System });
        for (var round = 0; round < 20; round++)
        {
            await service.EnqueueAsync(Ns, Queue, J(new { round }), null, Ct);
            var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(c => Task.Run(async () =>
                await service.LeaseAsync(Ns, Queue, $"c{c}", TimeSpan.FromMinutes(1), TimeSpan.Zero, Ct))));
            var winner = Assert.Single(results, r => r.IsLeased);
            Assert.True((await service.AckAsync(winner.Lease!, cancellationToken: Ct)).IsAcked);
        }
    }
}

public sealed class MemoryQueueConcurrencyTests : QueueConcurrencyTests
{
    protected override TestBackend Backend => TestBackend.Memory;

    protected override int TaskCount => 300;
}

public sealed class EmbeddedQueueConcurrencyTests : QueueConcurrencyTests
{
    protected override TestBackend Backend => TestBackend.Embedded;

    protected override int TaskCount => 120;
}

public sealed class PostgresQueueConcurrencyTests : QueueConcurrencyTests
{
    protected override TestBackend Backend => TestBackend.Postgres;

    protected override int TaskCount => 60;
}

public sealed class RedisQueueConcurrencyTests : QueueConcurrencyTests
{
    protected override TestBackend Backend => TestBackend.Redis;

    protected override int TaskCount => 60;
}

/// <summary>
/// The suite on the native Redis queue. Its in-flight intervals come from the queue's journal stream (written by the
/// same Lua scripts that lease and end leases, so in Redis's commit order).
/// </summary>
public sealed class RedisNativeQueueConcurrencyTests : QueueConcurrencyTests
{
    protected override TestBackend Backend => TestBackend.RedisNative;

    protected override int TaskCount => 150;

    protected override bool LeaseRevisionIsCommit => false;

    /// <summary>A native enqueue is not a store commit (its revision is the one it observed): the journal has the commit order.</summary>
    protected override async Task<Dictionary<string, long>> EnqueueOrderAsync(IQueueService service, IReadOnlyCollection<Enqueued> enqueued)
    {
        var journal = await ((Concord.Redis.RedisQueueService)service).ReadJournalAsync("stress", "work");
        var order = new Dictionary<string, long>();
        for (var i = 0; i < journal.Count; i++)
        {
            if (journal[i].Event == "enqueue") order.Add(journal[i].TaskId, i);
        }
        return order;
    }

    protected override async Task<List<Span>> InFlightIntervalsAsync(IQueueService service)
    {
        var journal = await ((Concord.Redis.RedisQueueService)service).ReadJournalAsync("stress", "work");
        var open = new Dictionary<string, long>();
        var spans = new List<Span>();
        for (var i = 0; i < journal.Count; i++)
        {
            var (e, taskId, _) = journal[i];
            if (e == "lease")
            {
                Assert.True(open.TryAdd(taskId, i), $"task {taskId} leased twice without the first lease ending");
            }
            else if (e is "ack" or "retry" or "dead")
            {
                Assert.True(open.Remove(taskId, out var start), $"{e} of task {taskId} that was not leased");
                spans.Add(new Span(taskId, null, start, i));
            }
        }
        Assert.Empty(open);
        return spans;
    }
}

public sealed class HttpQueueConcurrencyTests : QueueConcurrencyTests
{
    protected override TestBackend Backend => TestBackend.Http;

    protected override int TaskCount => 80;
}
