using Concord.Coordination.Queues;

namespace Concord.Tests.Coordination.Queues;

/// <summary>Functional tests of <see cref="StoreQueueService"/> under virtual time, run on every engine mode.</summary>
public abstract class QueueServiceTests : StoreTestBase
{
    protected const string Ns = "q";
    private static readonly TimeSpan Vis = TimeSpan.FromSeconds(30);

    protected IQueueService Queues { get; private set; } = null!;

    protected override ValueTask OnStoreOpenedAsync()
    {
        Queues = CreateQueueService(new QueueServiceOptions { TimeProvider = Clock, DefaultMaxAttempts = 3, DedupWindow = TimeSpan.FromHours(1) });
        return ValueTask.CompletedTask;
    }

    protected ValueTask<EnqueueResult> Enqueue(string payload, EnqueueOptions? options = null, string queue = "jobs") =>
        Queues.EnqueueAsync(Ns, queue, J(payload), options, Ct);

    protected async Task<QueueLease> LeaseOne(string consumer = "c1", TimeSpan? visibility = null, string queue = "jobs")
    {
        var result = await Queues.LeaseAsync(Ns, queue, consumer, visibility ?? Vis, TimeSpan.Zero, Ct);
        Assert.True(result.IsLeased, "expected a task to lease");
        return result.Lease!;
    }

    protected async Task AssertEmpty(string consumer = "c1", string queue = "jobs")
    {
        var result = await Queues.LeaseAsync(Ns, queue, consumer, Vis, TimeSpan.Zero, Ct);
        Assert.False(result.IsLeased, $"expected no visible task but leased {result.Lease?.Payload}");
    }

    protected static string Name(QueueLease lease) => lease.Payload.GetProperty("n").GetString()!;

    /// <summary>
    /// False when the service refuses PrepareAck/PrepareEnqueue (the native Redis queue: its changes cannot ride in a
    /// store transaction); the tests then check the refusal is a clear exception and changes nothing.
    /// </summary>
    protected virtual bool SupportsPreparedOps => true;

    [Fact]
    public async Task EnqueueLeaseAck_OneTask_DeliveredOnceThenGone()
    {
        var enqueued = await Enqueue("""{"n":"a"}""");
        Assert.True(enqueued.IsEnqueued);
        var lease = await LeaseOne();
        Assert.Equal(enqueued.TaskId, lease.TaskId);
        Assert.Equal("a", Name(lease));
        Assert.Equal(1, lease.Attempt);
        Assert.Equal(Time.GetUtcNow() + Vis, lease.Deadline);
        Assert.Equal(QueueTaskState.Leased, (await Queues.GetTaskAsync(Ns, "jobs", lease.TaskId, Ct))!.State);
        await AssertEmpty("c2");

        var ack = await Queues.AckAsync(lease, cancellationToken: Ct);
        Assert.Equal(AckStatus.Acked, ack.Status);
        Assert.Null(await Queues.GetTaskAsync(Ns, "jobs", lease.TaskId, Ct));
        await AssertEmpty();
        Assert.Equal(0, (await Queues.GetStatsAsync(Ns, "jobs", Ct)).Total);
    }

    [Fact]
    public async Task Enqueue_QueueAtMaxTasks_IsRefusedUntilATaskIsAckedOrADeadLetterDeleted()
    {
        var queues = CreateQueueService(new QueueServiceOptions { TimeProvider = Clock, DefaultMaxAttempts = 1, MaxTasks = 3 });
        for (var i = 0; i < 3; i++) Assert.True((await queues.EnqueueAsync(Ns, "small", J($$"""{"n":"{{i}}"}"""), null, Ct)).IsEnqueued);

        var full = await queues.EnqueueAsync(Ns, "small", J("""{"n":"x"}"""), null, Ct);
        Assert.Equal(EnqueueStatus.QueueFull, full.Status);
        Assert.Equal(3, (await queues.GetStatsAsync(Ns, "small", Ct)).Total); // nothing was created
        if (SupportsPreparedOps)
        {
            var prepare = await Assert.ThrowsAsync<Concord.Coordination.QueueFullException>(async () => await queues.PrepareEnqueueAsync(Ns, "small", J("""{"n":"x"}"""), null, Ct));
            Assert.Equal("small", prepare.Queue);
        }
        Assert.True((await queues.EnqueueAsync(Ns, "other", J("""{"n":"o"}"""), null, Ct)).IsEnqueued); // per queue

        // An ack frees a slot.
        var first = (await queues.LeaseAsync(Ns, "small", "c1", Vis, TimeSpan.Zero, Ct)).Lease!;
        Assert.Equal(AckStatus.Acked, (await queues.AckAsync(first, cancellationToken: Ct)).Status);
        Assert.True((await queues.EnqueueAsync(Ns, "small", J("""{"n":"3"}"""), null, Ct)).IsEnqueued);
        Assert.Equal(EnqueueStatus.QueueFull, (await queues.EnqueueAsync(Ns, "small", J("""{"n":"x"}"""), null, Ct)).Status);

        // A dead letter still counts; deleting it frees its slot.
        var second = (await queues.LeaseAsync(Ns, "small", "c1", Vis, TimeSpan.Zero, Ct)).Lease!;
        Assert.Equal(NackStatus.DeadLettered, (await queues.NackAsync(second, "boom", TimeSpan.Zero, Ct)).Status);
        Assert.Equal(EnqueueStatus.QueueFull, (await queues.EnqueueAsync(Ns, "small", J("""{"n":"x"}"""), null, Ct)).Status);
        Assert.True(await queues.DeleteDeadLetterAsync(Ns, "small", second.TaskId, Ct));
        Assert.True((await queues.EnqueueAsync(Ns, "small", J("""{"n":"4"}"""), null, Ct)).IsEnqueued);
        Assert.Equal(3, (await queues.GetStatsAsync(Ns, "small", Ct)).Total);
    }

    [Fact]
    public async Task Lease_EmptyQueue_ReturnsEmptyResultWithoutWaiting()
    {
        var result = await Queues.LeaseAsync(Ns, "nothing", "c1", Vis, TimeSpan.Zero, Ct);
        Assert.False(result.IsLeased);
        Assert.Null(result.NextVisibleAt);
    }

    [Fact]
    public async Task Lease_MixedPriorities_HighestFirstThenFifo()
    {
        await Enqueue("""{"n":"low1"}""");
        await Enqueue("""{"n":"high1"}""", new EnqueueOptions { Priority = 5 });
        await Enqueue("""{"n":"low2"}""");
        await Enqueue("""{"n":"high2"}""", new EnqueueOptions { Priority = 5 });
        await Enqueue("""{"n":"neg"}""", new EnqueueOptions { Priority = -3 });
        var order = new List<string>();
        for (var i = 0; i < 5; i++) order.Add(Name(await LeaseOne()));
        Assert.Equal(["high1", "high2", "low1", "low2", "neg"], order);
    }

    [Fact]
    public async Task Enqueue_WithDelay_InvisibleUntilDue()
    {
        await Enqueue("""{"n":"later"}""", new EnqueueOptions { Delay = TimeSpan.FromSeconds(10) });
        var empty = await Queues.LeaseAsync(Ns, "jobs", "c1", Vis, TimeSpan.Zero, Ct);
        Assert.False(empty.IsLeased);
        Assert.Equal(Time.GetUtcNow() + TimeSpan.FromSeconds(10), empty.NextVisibleAt);
        Assert.Equal(1, (await Queues.GetStatsAsync(Ns, "jobs", Ct)).Delayed);

        Time.Advance(TimeSpan.FromSeconds(9));
        await AssertEmpty();
        Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal("later", Name(await LeaseOne()));
    }

    [Fact]
    public async Task Lease_DelayedHighPriority_DoesNotBlockVisibleLowerPriority()
    {
        await Enqueue("""{"n":"urgent-later"}""", new EnqueueOptions { Priority = 9, Delay = TimeSpan.FromMinutes(1) });
        await Enqueue("""{"n":"normal-now"}""");
        Assert.Equal("normal-now", Name(await LeaseOne()));
        Time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal("urgent-later", Name(await LeaseOne()));
    }

    [Fact]
    public async Task Enqueue_SameDedupId_DuplicateWithinWindow_NewTaskAfterWindow()
    {
        var first = await Enqueue("""{"n":"a"}""", new EnqueueOptions { DedupId = "order-42/charge" });
        var second = await Enqueue("""{"n":"a-again"}""", new EnqueueOptions { DedupId = "order-42/charge" });
        Assert.Equal(EnqueueStatus.Duplicate, second.Status);
        Assert.Equal(first.TaskId, second.TaskId);

        // Still a duplicate after the first task completed, within the window.
        await Queues.AckAsync(await LeaseOne(), cancellationToken: Ct);
        Time.Advance(TimeSpan.FromMinutes(59));
        Assert.Equal(EnqueueStatus.Duplicate, (await Enqueue("""{"n":"x"}""", new EnqueueOptions { DedupId = "order-42/charge" })).Status);

        Time.Advance(TimeSpan.FromMinutes(2));
        var third = await Enqueue("""{"n":"b"}""", new EnqueueOptions { DedupId = "order-42/charge" });
        Assert.True(third.IsEnqueued);
        Assert.NotEqual(first.TaskId, third.TaskId);
    }

    [Fact]
    public async Task VisibilityTimeout_Expired_RedeliveredWithNewReceipt_StaleConsumerRefused()
    {
        await Enqueue("""{"n":"a"}""");
        var first = await LeaseOne("slow");
        Time.Advance(Vis + TimeSpan.FromSeconds(1));
        var second = await LeaseOne("fast");
        Assert.Equal(first.TaskId, second.TaskId);
        Assert.Equal(2, second.Attempt);
        Assert.NotEqual(first.Receipt, second.Receipt);
        Assert.Contains("expired", second.LastError);

        var staleAck = await Queues.AckAsync(first, [TxnOp.Put("effect", J("1"), Expect.Absent)], Ct);
        Assert.Equal(AckStatus.StaleReceipt, staleAck.Status);
        Assert.Contains("stale", staleAck.Message);
        Assert.Null(await Store.GetAsync(Ns, "effect", null, Ct));
        Assert.False((await Queues.ExtendAsync(first, Vis, Ct)).IsExtended);
        Assert.Equal(NackStatus.StaleReceipt, (await Queues.NackAsync(first, "late", cancellationToken: Ct)).Status);

        Assert.True((await Queues.AckAsync(second, [TxnOp.Put("effect", J("2"), Expect.Absent)], Ct)).IsAcked);
        Assert.Equal(2, (await Store.GetAsync(Ns, "effect", null, Ct))!.Value.GetInt32());
    }

    [Fact]
    public async Task Ack_AfterDeadlineButNotReclaimed_Accepted()
    {
        await Enqueue("""{"n":"a"}""");
        var lease = await LeaseOne();
        Time.Advance(Vis + TimeSpan.FromSeconds(5));
        // Nobody reclaimed or re-leased the task, so the receipt is still the current one.
        Assert.True((await Queues.AckAsync(lease, cancellationToken: Ct)).IsAcked);
        Assert.Equal(0, await Queues.ReclaimExpiredAsync(Ns, "jobs", Ct));
        await AssertEmpty();
    }

    [Fact]
    public async Task Extend_BeforeDeadline_KeepsTaskInvisibleUntilNewDeadline()
    {
        await Enqueue("""{"n":"a"}""");
        var lease = await LeaseOne();
        Time.Advance(TimeSpan.FromSeconds(20));
        var extended = await Queues.ExtendAsync(lease, Vis, Ct);
        Assert.True(extended.IsExtended);
        Assert.Equal(Time.GetUtcNow() + Vis, extended.Lease!.Deadline);
        Assert.Equal(lease.Receipt, extended.Lease.Receipt);

        Time.Advance(TimeSpan.FromSeconds(20)); // past the original deadline
        Assert.Equal(0, await Queues.ReclaimExpiredAsync(Ns, "jobs", Ct));
        await AssertEmpty("c2");
        Time.Advance(TimeSpan.FromSeconds(11));
        Assert.Equal(1, await Queues.ReclaimExpiredAsync(Ns, "jobs", Ct));
        Assert.Equal(2, (await LeaseOne("c2")).Attempt);
    }

    [Fact]
    public async Task Nack_WithDelay_RequeuedAfterDelayWithReason()
    {
        await Enqueue("""{"n":"a"}""");
        var lease = await LeaseOne();
        var nack = await Queues.NackAsync(lease, "upstream 503", TimeSpan.FromSeconds(5), Ct);
        Assert.Equal(NackStatus.Requeued, nack.Status);
        await AssertEmpty();
        Time.Advance(TimeSpan.FromSeconds(5));
        var retry = await LeaseOne();
        Assert.Equal(2, retry.Attempt);
        Assert.Equal("upstream 503", retry.LastError);
    }

    [Fact]
    public async Task Nack_LastAttempt_DeadLettersWithReason_RequeueResetsAttempts()
    {
        var id = (await Enqueue("""{"n":"poison"}""", new EnqueueOptions { MaxAttempts = 2 })).TaskId;
        Assert.Equal(NackStatus.Requeued, (await Queues.NackAsync(await LeaseOne(), "boom 1", cancellationToken: Ct)).Status);
        var last = await LeaseOne();
        Assert.True(last.IsLastAttempt);
        Assert.Equal(NackStatus.DeadLettered, (await Queues.NackAsync(last, "boom 2", cancellationToken: Ct)).Status);
        await AssertEmpty();

        var dead = Assert.Single(await Queues.ListDeadLettersAsync(Ns, "jobs", cancellationToken: Ct));
        Assert.Equal(id, dead.Id);
        Assert.Equal(QueueTaskState.Dead, dead.State);
        Assert.Equal("boom 2", dead.LastError);
        Assert.Equal(2, dead.Attempts);
        Assert.Equal(new QueueStats(0, 0, 0, 0, 1), await Queues.GetStatsAsync(Ns, "jobs", Ct));

        Assert.True(await Queues.RequeueDeadLetterAsync(Ns, "jobs", id, Ct));
        Assert.Empty(await Queues.ListDeadLettersAsync(Ns, "jobs", cancellationToken: Ct));
        var again = await LeaseOne();
        Assert.Equal(id, again.TaskId);
        Assert.Equal(1, again.Attempt);
        Assert.False(await Queues.RequeueDeadLetterAsync(Ns, "jobs", id, Ct));
    }

    [Fact]
    public async Task ExpiredLease_OnLastAttempt_DeadLetteredByReclaim()
    {
        var id = (await Enqueue("""{"n":"a"}""", new EnqueueOptions { MaxAttempts = 1 })).TaskId;
        await LeaseOne("crasher");
        Time.Advance(Vis);
        Assert.Equal(1, await Queues.ReclaimExpiredAsync(Ns, "jobs", Ct));
        var dead = Assert.Single(await Queues.ListDeadLettersAsync(Ns, "jobs", cancellationToken: Ct));
        Assert.Equal(id, dead.Id);
        Assert.Contains("crasher", dead.LastError);
        Assert.Contains("expired", dead.LastError);
        Assert.True(await Queues.DeleteDeadLetterAsync(Ns, "jobs", id, Ct));
        Assert.Null(await Queues.GetTaskAsync(Ns, "jobs", id, Ct));
    }

    [Fact]
    public async Task Groups_OneInFlightPerGroup_FifoWithinGroup_ParallelAcrossGroups()
    {
        await Enqueue("""{"n":"a1"}""", new EnqueueOptions { Group = "acct/1" });
        await Enqueue("""{"n":"a2"}""", new EnqueueOptions { Group = "acct/1", Priority = 100 }); // priority does not reorder a group
        await Enqueue("""{"n":"b1"}""", new EnqueueOptions { Group = "acct/2" });
        await Enqueue("""{"n":"a3"}""", new EnqueueOptions { Group = "acct/1" });
        await Enqueue("""{"n":"free"}""");

        var a1 = await LeaseOne("w1");
        var b1 = await LeaseOne("w2");
        var free = await LeaseOne("w3");
        Assert.Equal(["a1", "b1", "free"], [Name(a1), Name(b1), Name(free)]);
        await AssertEmpty("w4"); // a2 waits for a1
        Assert.Equal(new QueueStats(0, 0, 2, 3, 0), await Queues.GetStatsAsync(Ns, "jobs", Ct));

        Assert.True((await Queues.AckAsync(a1, cancellationToken: Ct)).IsAcked);
        var a2 = await LeaseOne("w4");
        Assert.Equal("a2", Name(a2));
        await AssertEmpty("w5");
        Assert.True((await Queues.AckAsync(a2, cancellationToken: Ct)).IsAcked);
        Assert.Equal("a3", Name(await LeaseOne("w5")));
    }

    [Fact]
    public async Task Groups_NackedHead_StaysHead_DeadHead_PromotesNext()
    {
        await Enqueue("""{"n":"h"}""", new EnqueueOptions { Group = "g", MaxAttempts = 2 });
        await Enqueue("""{"n":"n"}""", new EnqueueOptions { Group = "g" });
        await Queues.NackAsync(await LeaseOne(), "retry me", cancellationToken: Ct);
        var head = await LeaseOne();
        Assert.Equal("h", Name(head));
        Assert.Equal(2, head.Attempt);
        Assert.Equal(NackStatus.DeadLettered, (await Queues.NackAsync(head, "gave up", cancellationToken: Ct)).Status);
        Assert.Equal("n", Name(await LeaseOne()));
    }

    [Fact]
    public async Task Groups_ExpiredHead_ReclaimedAndRetriedBeforeNext()
    {
        await Enqueue("""{"n":"h"}""", new EnqueueOptions { Group = "g" });
        await Enqueue("""{"n":"n"}""", new EnqueueOptions { Group = "g" });
        await LeaseOne("crasher");
        Time.Advance(Vis);
        var retry = await LeaseOne("other");
        Assert.Equal("h", Name(retry));
        Assert.Equal(2, retry.Attempt);
        await AssertEmpty();
    }

    [Fact]
    public async Task Groups_EnqueueAfterGroupDrained_StartsNewHead()
    {
        await Enqueue("""{"n":"1"}""", new EnqueueOptions { Group = "odd/name%with/slashes" });
        await Queues.AckAsync(await LeaseOne(), cancellationToken: Ct);
        await Enqueue("""{"n":"2"}""", new EnqueueOptions { Group = "odd/name%with/slashes" });
        Assert.Equal("2", Name(await LeaseOne()));
    }

    [Fact]
    public async Task Ack_EffectConflict_NothingApplied_LeaseStillHeld()
    {
        await Enqueue("""{"n":"a"}""");
        var lease = await LeaseOne();
        var ack = await Queues.AckAsync(lease, [TxnOp.Put("other", J("1"), Expect.Absent), TxnOp.Put("acct", J("""{"fees":1}"""), Expect.Version(7))], Ct);
        Assert.Equal(AckStatus.EffectConflict, ack.Status);
        Assert.Equal(1, ack.EffectIndex);
        Assert.Equal(ConflictKind.VersionMismatch, ack.Conflict!.Conflict);
        Assert.Null(await Store.GetAsync(Ns, "other", null, Ct));
        Assert.Equal(QueueTaskState.Leased, (await Queues.GetTaskAsync(Ns, "jobs", lease.TaskId, Ct))!.State);

        Assert.True((await Queues.AckAsync(lease, [TxnOp.Put("acct", J("""{"fees":1}"""), Expect.Absent)], Ct)).IsAcked);
        Assert.NotNull(await Store.GetAsync(Ns, "acct", null, Ct));
    }

    [Fact]
    public async Task Ack_RetriedAfterLostReply_ReportsAckedOnce_EffectOnce()
    {
        await Enqueue("""{"n":"a"}""");
        var lease = await LeaseOne();
        var effect = new[] { TxnOp.PatchKey("counter", JsonPatch.Create().Increment("/n")) };
        var first = await Queues.AckAsync(lease, effect, Ct);
        var retry = await Queues.AckAsync(lease, effect, Ct);
        Assert.True(first.IsAcked);
        Assert.False(first.Replayed);
        Assert.True(retry.IsAcked);
        Assert.True(retry.Replayed);
        Assert.Equal(first.Revision, retry.Revision);
        Assert.Equal(1, (await Store.GetAsync(Ns, "counter", null, Ct))!.Value.GetProperty("n").GetInt32());
    }

    [Fact]
    public async Task AckAsync_RetriedAfterSuccess_IsReplayedNotStale()
    {
        // A retry of an ack (no effects) whose reply was lost: the same receipt, after the ack committed.
        await Enqueue("""{"n":"a"}""", new EnqueueOptions { Group = "g" });
        await Enqueue("""{"n":"b"}""", new EnqueueOptions { Group = "g" });
        await Enqueue("""{"n":"c"}""");
        var lease = await LeaseOne();
        Assert.Equal("a", Name(lease));
        var first = await Queues.AckAsync(lease, cancellationToken: Ct);
        Assert.Equal(AckStatus.Acked, first.Status);
        Assert.False(first.Replayed);

        var retry = await Queues.AckAsync(lease, cancellationToken: Ct);
        Assert.Equal(AckStatus.Acked, retry.Status);
        Assert.True(retry.Replayed);
        Assert.Equal(first.Revision, retry.Revision);
        Assert.Null(retry.Message);

        // The replay changed nothing: the group's next task was promoted once and leases normally (the native Redis queue
        // orders a level by the time tasks became ready, so b may come after c).
        var leased = new[] { await LeaseOne("c2"), await LeaseOne("c3") };
        Assert.Equal(["b", "c"], leased.Select(Name).Order(StringComparer.Ordinal));
        Assert.True((await Queues.AckAsync(lease, cancellationToken: Ct)).Replayed);
        foreach (var l in leased) Assert.Equal(QueueTaskState.Leased, (await Queues.GetTaskAsync(Ns, "jobs", l.TaskId, Ct))!.State);
        await AssertEmpty("c4");
        Assert.Equal(new QueueStats(0, 0, 0, 2, 0), await Queues.GetStatsAsync(Ns, "jobs", Ct));
    }

    [Fact]
    public async Task AckAsync_WithEffects_RetriedWithoutEffects_IsReplayed()
    {
        await Enqueue("""{"n":"a"}""");
        var lease = await LeaseOne();
        var first = await Queues.AckAsync(lease, [TxnOp.PatchKey("counter", JsonPatch.Create().Increment("/n"))], Ct);
        Assert.True(first.IsAcked && !first.Replayed);
        var retry = await Queues.AckAsync(lease, cancellationToken: Ct);
        Assert.True(retry.IsAcked && retry.Replayed);
        Assert.Equal(1, (await Store.GetAsync(Ns, "counter", null, Ct))!.Value.GetProperty("n").GetInt32());
    }

    [Fact]
    public async Task AckAsync_StaleReceiptOfAnAckedTask_IsStaleNotReplayed()
    {
        await Enqueue("""{"n":"a"}""");
        var expired = await LeaseOne("slow", TimeSpan.FromSeconds(5));
        Time.Advance(TimeSpan.FromSeconds(6));
        var current = await LeaseOne("fast");
        Assert.Equal(expired.TaskId, current.TaskId);
        Assert.NotEqual(expired.Receipt, current.Receipt);
        Assert.True((await Queues.AckAsync(current, cancellationToken: Ct)).IsAcked);

        // The task was acked, but under the other receipt: the slow consumer's ack is stale, not a replay.
        var stale = await Queues.AckAsync(expired, cancellationToken: Ct);
        Assert.Equal(AckStatus.StaleReceipt, stale.Status);
        Assert.False(stale.Replayed);
        Assert.NotNull(stale.Message);
        var forged = await Queues.AckAsync(current with { Receipt = current.Receipt + "x" }, cancellationToken: Ct);
        Assert.Equal(AckStatus.StaleReceipt, forged.Status);
        Assert.True((await Queues.AckAsync(current, cancellationToken: Ct)).Replayed);
    }

    [Fact]
    public async Task PrepareAck_InCallersTransaction_CommitsAckAndStateTogether()
    {
        await Enqueue("""{"n":"a"}""");
        var lease = await LeaseOne();
        if (!SupportsPreparedOps)
        {
            var refused = await Assert.ThrowsAsync<InvalidRequestException>(async () => await Queues.PrepareAckAsync(lease, Ct));
            Assert.Contains("AckAsync(lease, effects)", refused.Message);
            Assert.Equal(QueueTaskState.Leased, (await Queues.GetTaskAsync(Ns, "jobs", lease.TaskId, Ct))!.State);
            return;
        }
        var prepared = await Queues.PrepareAckAsync(lease, Ct);
        Assert.False(prepared.IsStale);

        // A caller's transaction that fails on its own op applies neither the ack nor the state.
        var failing = await Store.TransactAsync(Ns, new TxnRequest { Then = [.. prepared.Ops, TxnOp.Put("doc", J("1"), Expect.Version(3))] }, null, Ct);
        Assert.False(failing.IsApplied);
        Assert.Equal(QueueTaskState.Leased, (await Queues.GetTaskAsync(Ns, "jobs", lease.TaskId, Ct))!.State);

        var ok = await Store.TransactAsync(Ns, new TxnRequest { Then = [.. prepared.Ops, TxnOp.Put("doc", J("1"), Expect.Absent)] }, null, Ct);
        Assert.True(ok.IsApplied);
        Assert.Null(await Queues.GetTaskAsync(Ns, "jobs", lease.TaskId, Ct));
        Assert.True((await Queues.PrepareAckAsync(lease, Ct)).IsStale);
    }

    [Fact]
    public async Task PrepareEnqueue_InsideAck_FollowUpExistsIffAckCommitted()
    {
        await Enqueue("""{"n":"step1"}""");
        var lease = await LeaseOne();
        if (!SupportsPreparedOps)
        {
            var refused = await Assert.ThrowsAsync<InvalidRequestException>(async () => await Queues.PrepareEnqueueAsync(Ns, "jobs", J("""{"n":"step2"}"""), null, Ct));
            Assert.Contains("not supported", refused.Message);
            Assert.Equal(new QueueStats(0, 0, 0, 1, 0), await Queues.GetStatsAsync(Ns, "jobs", Ct));
            return;
        }
        var followUp = await Queues.PrepareEnqueueAsync(Ns, "jobs", J("""{"n":"step2"}"""), new EnqueueOptions { Group = "pipeline" }, Ct);
        var failed = await Queues.AckAsync(lease, [.. followUp.Ops, TxnOp.Put("x", J("1"), Expect.Version(2))], Ct);
        Assert.Equal(AckStatus.EffectConflict, failed.Status);
        Assert.Null(await Queues.GetTaskAsync(Ns, "jobs", followUp.TaskId, Ct));

        Assert.True((await Queues.AckAsync(lease, followUp.Ops, Ct)).IsAcked);
        var next = await LeaseOne();
        Assert.Equal(followUp.TaskId, next.TaskId);
        Assert.Equal("step2", Name(next));
    }

    [Fact]
    public async Task Lease_Waiting_WakesOnEnqueueWithoutTimePassing()
    {
        var waiting = Queues.LeaseAsync(Ns, "jobs", "c1", Vis, TimeSpan.FromMinutes(5), Ct).AsTask();
        await Enqueue("""{"n":"a"}""");
        var result = await waiting.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.True(result.IsLeased);
        Assert.Equal("a", Name(result.Lease!));
    }

    [Fact]
    public async Task Lease_Waiting_WakesWhenDelayedTaskBecomesVisible()
    {
        await Enqueue("""{"n":"a"}""", new EnqueueOptions { Delay = TimeSpan.FromSeconds(10) });
        var waiting = Queues.LeaseAsync(Ns, "jobs", "c1", Vis, TimeSpan.FromMinutes(5), Ct).AsTask();
        var result = await AdvanceUntil(waiting, TimeSpan.FromSeconds(1), 120);
        Assert.True(result.IsLeased);
        Assert.Equal("a", Name(result.Lease!));
    }

    [Fact]
    public async Task Lease_Waiting_WakesWhenAnotherConsumersLeaseExpires()
    {
        await Enqueue("""{"n":"a"}""");
        await LeaseOne("crasher", TimeSpan.FromSeconds(5));
        var waiting = Queues.LeaseAsync(Ns, "jobs", "c2", Vis, TimeSpan.FromMinutes(5), Ct).AsTask();
        var result = await AdvanceUntil(waiting, TimeSpan.FromSeconds(1), 120);
        Assert.True(result.IsLeased);
        Assert.Equal(2, result.Lease!.Attempt);
    }

    [Fact]
    public async Task Lease_WaitEndsWithoutWork_ReturnsEmpty()
    {
        var waiting = Queues.LeaseAsync(Ns, "jobs", "c1", Vis, TimeSpan.FromSeconds(5), Ct).AsTask();
        var result = await AdvanceUntil(waiting, TimeSpan.FromSeconds(1), 120);
        Assert.False(result.IsLeased);
    }

    /// <summary>Advances virtual time in steps until <paramref name="task"/> completes (bounded by a step count, not wall time).</summary>
    private async Task<T> AdvanceUntil<T>(Task<T> task, TimeSpan step, int maxSteps)
    {
        for (var i = 0; i < maxSteps && !task.IsCompleted; i++)
        {
            await Task.WhenAny(task, Task.Delay(5, Ct));
            if (!task.IsCompleted) Time.Advance(step);
        }
        return await task.WaitAsync(TimeSpan.FromSeconds(30), Ct);
    }

    [Fact]
    public async Task Queues_AreIndependent()
    {
        await Enqueue("""{"n":"a"}""", queue: "alpha");
        await AssertEmpty(queue: "beta");
        await AssertEmpty(queue: "alph");
        Assert.Equal("a", Name(await LeaseOne(queue: "alpha")));
    }

    [Fact]
    public async Task ListQueues_QueuesHoldingTasks_InOrdinalOrder_PagedWithoutGapsOrRepeats()
    {
        // Names that sort differently as "name" and as "name/" (the store's key order): '-' and '.' come before '/'.
        foreach (var q in new[] { "b", "a-b", "a", "a.b", "a0", "c" }) await Enqueue("""{"n":"x"}""", queue: q);
        await Enqueue("""{"n":"x"}""", queue: "drained");
        Assert.True((await Queues.AckAsync(await LeaseOne(queue: "drained"), cancellationToken: Ct)).IsAcked);
        await Enqueue("""{"n":"x"}""", new EnqueueOptions { MaxAttempts = 1 }, queue: "only-dead");
        Assert.Equal(NackStatus.DeadLettered, (await Queues.NackAsync(await LeaseOne(queue: "only-dead"), "boom", TimeSpan.Zero, Ct)).Status);
        await Queues.EnqueueAsync("elsewhere", "z", J("1"), null, Ct);
        string[] expected = ["a", "a-b", "a.b", "a0", "b", "c", "only-dead"];

        var all = await Queues.ListQueuesAsync(Ns, cancellationToken: Ct);
        Assert.Equal(expected, all.Queues);
        Assert.Null(all.NextAfter);

        foreach (var size in new[] { 1, 2, 3 })
        {
            var seen = new List<string>();
            string? after = null;
            for (var pages = 0; pages < 20; pages++)
            {
                var page = await Queues.ListQueuesAsync(Ns, after, size, Ct);
                Assert.True(page.Queues.Count <= size);
                seen.AddRange(page.Queues);
                if (page.NextAfter is null) break;
                Assert.Equal(page.Queues[^1], page.NextAfter);
                after = page.NextAfter;
            }
            Assert.Equal(expected, seen);
        }
        Assert.Equal(["a-b", "a.b"], (await Queues.ListQueuesAsync(Ns, "a", 2, Ct)).Queues);
        Assert.Equal(["only-dead"], (await Queues.ListQueuesAsync(Ns, "c", 10, Ct)).Queues);
        Assert.Empty((await Queues.ListQueuesAsync(Ns, "only-dead", 10, Ct)).Queues);
        Assert.Equal(["z"], (await Queues.ListQueuesAsync("elsewhere", cancellationToken: Ct)).Queues);
        Assert.Empty((await Queues.ListQueuesAsync("nothing-here", cancellationToken: Ct)).Queues);

        // Draining the last task (here: deleting the only dead letter) unlists the queue.
        var dead = Assert.Single(await Queues.ListDeadLettersAsync(Ns, "only-dead", 10, Ct));
        Assert.True(await Queues.DeleteDeadLetterAsync(Ns, "only-dead", dead.Id, Ct));
        Assert.Equal(expected[..^1], (await Queues.ListQueuesAsync(Ns, cancellationToken: Ct)).Queues);

        await Assert.ThrowsAsync<InvalidRequestException>(async () => await Queues.ListQueuesAsync(Ns, null, 0, Ct));
        await Assert.ThrowsAsync<InvalidRequestException>(async () => await Queues.ListQueuesAsync(Ns, null, QueueListPage.MaxLimit + 1, Ct));
        await Assert.ThrowsAsync<InvalidRequestException>(async () => await Queues.ListQueuesAsync(Ns, "a/b", 10, Ct));
    }

    [Fact]
    public async Task InvalidArguments_RefusedWithTheSameMessageOnEveryBackend()
    {
        var queues = CreateQueueService(new QueueServiceOptions { TimeProvider = Clock, MaxPayloadBytes = 64 });
        async Task Refused(string message, Func<Task> call) => Assert.Equal(message, (await Assert.ThrowsAsync<InvalidRequestException>(call)).Message);

        var big = J($"\"{new string('x', 100)}\"");
        await Refused("The task payload is 102 bytes; the limit is 64 bytes (QueueServiceOptions.MaxPayloadBytes)", async () => await queues.EnqueueAsync(Ns, "jobs", big, null, Ct));
        await Refused(QueueRules.PayloadMissing, async () => await queues.EnqueueAsync(Ns, "jobs", default, null, Ct));
        await Refused("Enqueue delay must be between 0 and 366 days", async () => await queues.EnqueueAsync(Ns, "jobs", J("1"), new EnqueueOptions { Delay = TimeSpan.FromSeconds(-1) }, Ct));
        await Refused("Enqueue delay must be between 0 and 366 days", async () => await queues.EnqueueAsync(Ns, "jobs", J("1"), new EnqueueOptions { Delay = TimeSpan.FromDays(367) }, Ct));
        await Refused("MaxAttempts must be between 1 and 10000", async () => await queues.EnqueueAsync(Ns, "jobs", J("1"), new EnqueueOptions { MaxAttempts = 0 }, Ct));
        await Refused("MaxAttempts must be between 1 and 10000", async () => await queues.EnqueueAsync(Ns, "jobs", J("1"), new EnqueueOptions { MaxAttempts = 10_001 }, Ct));
        await Refused("Dedup id must not be empty", async () => await queues.EnqueueAsync(Ns, "jobs", J("1"), new EnqueueOptions { DedupId = "" }, Ct));
        await Refused("Group key must not be empty", async () => await queues.EnqueueAsync(Ns, "jobs", J("1"), new EnqueueOptions { Group = "" }, Ct));
        await Refused("Queue name 'a/b' may contain only ASCII letters, digits, '-', '_', '.' and ':'", async () => await queues.EnqueueAsync(Ns, "a/b", J("1"), null, Ct));
        if (SupportsPreparedOps)
        {
            await Refused("The task payload is 102 bytes; the limit is 64 bytes (QueueServiceOptions.MaxPayloadBytes)", async () => await queues.PrepareEnqueueAsync(Ns, "jobs", big, null, Ct));
            await Refused("Group key must not be empty", async () => await queues.PrepareEnqueueAsync(Ns, "jobs", J("1"), new EnqueueOptions { Group = "" }, Ct));
        }
        await Refused("Visibility timeout must be between 0 and 12 hours", async () => await queues.LeaseAsync(Ns, "jobs", "c", TimeSpan.Zero, default, Ct));
        await Refused("Lease wait must be between 0 and 1 hour", async () => await queues.LeaseAsync(Ns, "jobs", "c", Vis, TimeSpan.FromHours(2), Ct));
        await Refused("Limit must be between 1 and 10000", async () => await queues.ListDeadLettersAsync(Ns, "jobs", 0, Ct));
        Assert.Equal(0, (await queues.GetStatsAsync(Ns, "jobs", Ct)).Total); // nothing was created

        // A payload at the limit is fine; the lease's own operations are checked alike.
        Assert.True((await queues.EnqueueAsync(Ns, "jobs", J($"\"{new string('x', 62)}\""), null, Ct)).IsEnqueued);
        var lease = (await queues.LeaseAsync(Ns, "jobs", "c", Vis, TimeSpan.Zero, Ct)).Lease!;
        await Refused("Nack delay must be between 0 and 366 days", async () => await queues.NackAsync(lease, null, TimeSpan.FromSeconds(-1), Ct));
        await Refused("Visibility timeout must be between 0 and 12 hours", async () => await queues.ExtendAsync(lease, TimeSpan.FromHours(13), Ct));
        Assert.True((await queues.AckAsync(lease, cancellationToken: Ct)).IsAcked);
    }

    [Fact]
    public async Task InvalidArguments_Refused()
    {
        await Assert.ThrowsAsync<InvalidRequestException>(async () => await Enqueue("1", queue: "a/b"));
        await Assert.ThrowsAsync<InvalidRequestException>(async () => await Enqueue("1", new EnqueueOptions { Delay = TimeSpan.FromSeconds(-1) }));
        await Assert.ThrowsAsync<InvalidRequestException>(async () => await Enqueue("1", new EnqueueOptions { DedupId = "" }));
        await Assert.ThrowsAsync<InvalidRequestException>(async () => await Queues.LeaseAsync(Ns, "jobs", "c", TimeSpan.Zero, default, Ct));
        await Assert.ThrowsAsync<InvalidRequestException>(async () => await Queues.EnqueueAsync(Ns, "jobs", default, null, Ct));
    }
}

public sealed class MemoryQueueServiceTests : QueueServiceTests
{
    protected override TestBackend Backend => TestBackend.Memory;
}

public sealed class PostgresQueueServiceTests : QueueServiceTests
{
    protected override TestBackend Backend => TestBackend.Postgres;
}

public sealed class EmbeddedQueueServiceTests : QueueServiceTests
{
    protected override TestBackend Backend => TestBackend.Embedded;

    [Fact]
    public async Task Restart_TasksAndLeasesSurvive()
    {
        await Enqueue("""{"n":"a"}""", new EnqueueOptions { Group = "g" });
        await Enqueue("""{"n":"b"}""", new EnqueueOptions { Group = "g" });
        var lease = await LeaseOne("before-restart");
        await RestartAsync(snapshotFirst: true);
        await AssertEmpty();
        Assert.True((await Queues.AckAsync(lease, cancellationToken: Ct)).IsAcked);
        Assert.Equal("b", Name(await LeaseOne()));
    }
}

public sealed class RedisQueueServiceTests : QueueServiceTests
{
    protected override TestBackend Backend => TestBackend.Redis;
}

/// <summary>The suite on the native Redis queue (<see cref="Concord.Redis.RedisQueueService"/>: streams, consumer groups, Lua).</summary>
public sealed class RedisNativeQueueServiceTests : QueueServiceTests
{
    protected override TestBackend Backend => TestBackend.RedisNative;
}

public sealed class HttpQueueServiceTests : QueueServiceTests
{
    protected override TestBackend Backend => TestBackend.Http;
}
