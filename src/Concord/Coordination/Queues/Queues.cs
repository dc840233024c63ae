using System.Text.Json;
using System.Text.Json.Serialization;

namespace Concord.Coordination.Queues;

/// <summary>
/// Durable task queues (DESIGN.md "Queues"): enqueue with dedup id, group key, delay and priority; lease with a
/// visibility timeout; ack (optionally in one transaction with the task's effect), nack, extend; dead letters after
/// the maximum number of attempts; groups whose tasks are never in flight together and run FIFO.
/// </summary>
/// <remarks>
/// Expected outcomes (queue empty, stale receipt, duplicate enqueue, an effect's conflict) are results; faults are
/// <see cref="ConcordException"/>s. Implementations are thread-safe.
/// </remarks>
public interface IQueueService
{
    /// <summary>Adds a task to <paramref name="queue"/>.</summary>
    /// <returns><see cref="EnqueueStatus.Enqueued"/>, or <see cref="EnqueueStatus.Duplicate"/> with the id of the task an
    /// earlier enqueue with the same <see cref="EnqueueOptions.DedupId"/> created within the dedup window.</returns>
    ValueTask<EnqueueResult> EnqueueAsync(string ns, string queue, JsonElement payload, EnqueueOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// The operations that enqueue a task, to add to the caller's own transaction (enqueue follow-up work atomically with
    /// a state write, or with an ack: "finish this task and schedule the next"). If the transaction fails on the dedup
    /// entry, the dedup id was taken; on the group record, a concurrent enqueue or ack changed the group: prepare again.
    /// </summary>
    ValueTask<PreparedEnqueue> PrepareEnqueueAsync(string ns, string queue, JsonElement payload, EnqueueOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Leases the next visible task: highest priority first, then earliest visible, FIFO within a group. The task stays
    /// invisible to other consumers until <paramref name="visibilityTimeout"/> passes without an ack or extend.
    /// Waits up to <paramref name="wait"/> for a task (event-driven, not polling); zero tries once.
    /// </summary>
    ValueTask<LeaseResult> LeaseAsync(string ns, string queue, string consumer, TimeSpan visibilityTimeout, TimeSpan wait = default, CancellationToken cancellationToken = default);

    /// <summary>
    /// Completes a leased task and, in the same transaction, applies <paramref name="effects"/>: the task is acked and
    /// its effect written exactly once, or neither happens. A receipt that is no longer current (the lease expired and
    /// the task was reclaimed or re-leased) is refused with <see cref="AckStatus.StaleReceipt"/>.
    /// </summary>
    ValueTask<AckResult> AckAsync(QueueLease lease, IReadOnlyList<TxnOp>? effects = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// The operations that ack <paramref name="lease"/>, to add to the caller's own <see cref="TxnRequest"/>. They carry
    /// exact expectations, so the caller's transaction fails (and applies nothing) if the lease changed meanwhile; prepare
    /// again after such a conflict.
    /// </summary>
    ValueTask<PreparedQueueOps> PrepareAckAsync(QueueLease lease, CancellationToken cancellationToken = default);

    /// <summary>
    /// Gives a leased task back: visible again after <paramref name="delay"/>, or dead-lettered with
    /// <paramref name="reason"/> when it has used its maximum attempts.
    /// </summary>
    ValueTask<NackResult> NackAsync(QueueLease lease, string? reason = null, TimeSpan delay = default, CancellationToken cancellationToken = default);

    /// <summary>Pushes the lease's deadline to now + <paramref name="visibilityTimeout"/>. The receipt stays the same.</summary>
    ValueTask<ExtendResult> ExtendAsync(QueueLease lease, TimeSpan visibilityTimeout, CancellationToken cancellationToken = default);

    /// <summary>
    /// Returns tasks whose lease expired to the queue (or to the dead letters after their last attempt). Lease calls do
    /// this lazily; call it to reclaim without leasing. Returns how many tasks were reclaimed.
    /// </summary>
    ValueTask<int> ReclaimExpiredAsync(string ns, string queue, CancellationToken cancellationToken = default);

    /// <summary>A task by id (ready, delayed, waiting, leased or dead); null once acked.</summary>
    ValueTask<QueueTask?> GetTaskAsync(string ns, string queue, string taskId, CancellationToken cancellationToken = default);

    /// <summary>Dead-lettered tasks, oldest first, with their failure reason.</summary>
    ValueTask<IReadOnlyList<QueueTask>> ListDeadLettersAsync(string ns, string queue, int limit = 100, CancellationToken cancellationToken = default);

    /// <summary>Puts a dead-lettered task back in the queue with its attempts reset (at the end of its group). False when it is not dead.</summary>
    ValueTask<bool> RequeueDeadLetterAsync(string ns, string queue, string taskId, CancellationToken cancellationToken = default);

    /// <summary>Deletes a dead-lettered task. False when it is not dead.</summary>
    ValueTask<bool> DeleteDeadLetterAsync(string ns, string queue, string taskId, CancellationToken cancellationToken = default);

    /// <summary>Counts tasks by state (scans the queue: O(tasks); for dashboards and tests, not hot paths).</summary>
    ValueTask<QueueStats> GetStatsAsync(string ns, string queue, CancellationToken cancellationToken = default);

    /// <summary>
    /// The queues of <paramref name="ns"/> that hold at least one task (ready, delayed, waiting, leased or dead), one page
    /// at a time in ordinal order of their names: the names after <paramref name="after"/> (exclusive), at most
    /// <paramref name="limit"/> of them. A queue whose tasks were all acked or deleted is not listed (a queue exists only
    /// through its tasks). Pass <see cref="QueueListPage.NextAfter"/> back as <paramref name="after"/> for the next page.
    /// </summary>
    /// <param name="ns">Namespace.</param>
    /// <param name="after">Start after this queue name; null starts at the first queue.</param>
    /// <param name="limit">Most names returned, 1 to <see cref="QueueListPage.MaxLimit"/>.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <remarks>
    /// Not a snapshot: a queue created or drained while the pages are read may or may not appear, but every queue that
    /// holds tasks throughout is listed exactly once, in order. The native queues keep an index of their queues, so a page
    /// costs O(limit); <see cref="StoreQueueService"/> skips over each queue's keys with one short list call per queue.
    /// </remarks>
    /// <exception cref="InvalidRequestException"><paramref name="limit"/> is out of range or <paramref name="after"/> is not a valid queue name.</exception>
    ValueTask<QueueListPage> ListQueuesAsync(string ns, string? after = null, int limit = 100, CancellationToken cancellationToken = default);
}

/// <summary>One page of <see cref="IQueueService.ListQueuesAsync"/>.</summary>
/// <param name="Queues">Queue names, in ordinal order.</param>
/// <param name="NextAfter">The last name of this page when more queues follow (pass it as <c>after</c>); null on the last page.</param>
public sealed record QueueListPage(IReadOnlyList<string> Queues, string? NextAfter)
{
    /// <summary>The largest page <see cref="IQueueService.ListQueuesAsync"/> returns.</summary>
    public const int MaxLimit = 1000;
}

/// <summary>Options of one enqueue.</summary>
public sealed record EnqueueOptions
{
    /// <summary>
    /// Deduplication id: a second enqueue with the same id within <see cref="QueueServiceOptions.DedupWindow"/> creates
    /// nothing and returns the first task's id. <value>Default: null (no deduplication).</value>
    /// </summary>
    public string? DedupId { get; init; }

    /// <summary>
    /// Group key: tasks of one group are never in flight together and run in enqueue order (serial per entity,
    /// parallel across entities). Priority does not reorder tasks within a group. <value>Default: null.</value>
    /// </summary>
    public string? Group { get; init; }

    /// <summary>The task becomes visible after this delay. <value>Default: zero.</value></summary>
    public TimeSpan Delay { get; init; }

    /// <summary>Higher runs first (across groups and ungrouped tasks). <value>Default: 0.</value></summary>
    public int Priority { get; init; }

    /// <summary>Leases before the task is dead-lettered. <value>Default: null (<see cref="QueueServiceOptions.DefaultMaxAttempts"/>).</value></summary>
    public int? MaxAttempts { get; init; }

    /// <summary>Agent id recorded as the writer. <value>Default: null.</value></summary>
    public string? Agent { get; init; }
}

/// <summary>Settings of <see cref="StoreQueueService"/>.</summary>
public sealed record QueueServiceOptions
{
    /// <summary>Clock for delays, visibility timeouts and dedup windows. <value>Default: <see cref="TimeProvider.System"/>.</value></summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Leases per task before it is dead-lettered. <value>Default: 5.</value></summary>
    public int DefaultMaxAttempts { get; init; } = 5;

    /// <summary>How long a dedup id is remembered (as a TTL on its key). Null remembers forever. <value>Default: 24 hours.</value></summary>
    public TimeSpan? DedupWindow { get; init; } = TimeSpan.FromHours(24);

    /// <summary>Index entries read per page while looking for a task to lease. <value>Default: 32.</value></summary>
    public int PageSize { get; init; } = 32;

    /// <summary>
    /// Unfinished tasks (ready, delayed, waiting, leased and dead) one queue may hold; an enqueue beyond it returns
    /// <see cref="EnqueueStatus.QueueFull"/> (HTTP 429 <c>queue-full</c>) and <see cref="IQueueService.PrepareEnqueueAsync"/>
    /// throws <see cref="QueueFullException"/>. The count is checked before the enqueue's transaction, so concurrent
    /// producers can overshoot it by at most their number. Null: no limit. <value>Default: 1,000,000.</value>
    /// </summary>
    public int? MaxTasks { get; init; } = 1_000_000;

    /// <summary>Compare-and-swap attempts of one operation before it gives up with <see cref="ContentionException"/>. <value>Default: 1,000.</value></summary>
    public int MaxCasAttempts { get; init; } = 1000;

    /// <summary>
    /// Largest task payload (its JSON text, in UTF-8 bytes) an enqueue accepts; a larger one is refused with
    /// <see cref="InvalidRequestException"/> by every queue implementation alike. Null: no limit of the queue's own (the
    /// store's value size still bounds <see cref="StoreQueueService"/>'s task records and prepared operations).
    /// <value>Default: 256 KiB.</value>
    /// </summary>
    public int? MaxPayloadBytes { get; init; } = 256 * 1024;

    internal void Validate()
    {
        ArgumentNullException.ThrowIfNull(TimeProvider);
        if (DefaultMaxAttempts < 1) throw new ArgumentException("DefaultMaxAttempts must be at least 1", nameof(DefaultMaxAttempts));
        if (DedupWindow is { } w && w <= TimeSpan.Zero) throw new ArgumentException("DedupWindow must be positive", nameof(DedupWindow));
        if (PageSize is < 1 or > 1000) throw new ArgumentException("PageSize must be between 1 and 1000", nameof(PageSize));
        if (MaxTasks is < 1) throw new ArgumentException("MaxTasks must be at least 1", nameof(MaxTasks));
        if (MaxCasAttempts < 1) throw new ArgumentException("MaxCasAttempts must be at least 1", nameof(MaxCasAttempts));
        if (MaxPayloadBytes is < 1) throw new ArgumentException("MaxPayloadBytes must be at least 1", nameof(MaxPayloadBytes));
    }
}

/// <summary>The state of a task.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<QueueTaskState>))]
public enum QueueTaskState
{
    /// <summary>Waiting to be leased (visible now, or after its delay: see <see cref="QueueTask.VisibleAt"/>).</summary>
    Ready,

    /// <summary>In a group behind an unfinished task of the same group.</summary>
    Waiting,

    /// <summary>Leased by a consumer until its deadline.</summary>
    Leased,

    /// <summary>Dead-lettered after its last attempt.</summary>
    Dead,
}

/// <summary>A task as stored (see <see cref="IQueueService.GetTaskAsync"/>).</summary>
public sealed record QueueTask
{
    /// <summary>Queue name.</summary>
    public required string Queue { get; init; }

    /// <summary>Task id (unique, time-ordered).</summary>
    public required string Id { get; init; }

    /// <summary>The payload given at enqueue.</summary>
    public required JsonElement Payload { get; init; }

    /// <summary>Current state.</summary>
    public required QueueTaskState State { get; init; }

    /// <summary>Leases so far (the current one included).</summary>
    public int Attempts { get; init; }

    /// <summary>Leases allowed before dead-lettering.</summary>
    public int MaxAttempts { get; init; }

    /// <summary>Priority (higher first).</summary>
    public int Priority { get; init; }

    /// <summary>Group key, if any.</summary>
    public string? Group { get; init; }

    /// <summary>Dedup id, if any.</summary>
    public string? DedupId { get; init; }

    /// <summary>When it was enqueued.</summary>
    public DateTimeOffset EnqueuedAt { get; init; }

    /// <summary>When it becomes (or became) visible.</summary>
    public DateTimeOffset VisibleAt { get; init; }

    /// <summary>Current (or last) consumer.</summary>
    public string? Consumer { get; init; }

    /// <summary>Lease deadline while leased.</summary>
    public DateTimeOffset? LeaseDeadline { get; init; }

    /// <summary>The last failure: a nack reason, an expired lease; for dead letters, why the task died.</summary>
    public string? LastError { get; init; }

    /// <summary>When it was dead-lettered.</summary>
    public DateTimeOffset? DeadAt { get; init; }
}

/// <summary>
/// A leased task. Pass it back to <see cref="IQueueService.AckAsync"/>, <see cref="IQueueService.NackAsync"/> or
/// <see cref="IQueueService.ExtendAsync"/>. Immutable.
/// </summary>
public sealed record QueueLease
{
    /// <summary>Namespace.</summary>
    public required string Namespace { get; init; }

    /// <summary>Queue name.</summary>
    public required string Queue { get; init; }

    /// <summary>Task id.</summary>
    public required string TaskId { get; init; }

    /// <summary>Payload.</summary>
    public required JsonElement Payload { get; init; }

    /// <summary>Proof of this lease; changes on every lease, so a consumer whose lease was taken over cannot ack.</summary>
    public required string Receipt { get; init; }

    /// <summary>Consumer that holds the lease.</summary>
    public required string Consumer { get; init; }

    /// <summary>1 for the first lease of the task, 2 for the first retry, …</summary>
    public int Attempt { get; init; }

    /// <summary>Leases allowed before dead-lettering.</summary>
    public int MaxAttempts { get; init; }

    /// <summary>Group key, if any.</summary>
    public string? Group { get; init; }

    /// <summary>Priority.</summary>
    public int Priority { get; init; }

    /// <summary>When the task was enqueued.</summary>
    public DateTimeOffset EnqueuedAt { get; init; }

    /// <summary>When the lease ends unless extended or acked.</summary>
    public DateTimeOffset Deadline { get; init; }

    /// <summary>The previous failure (nack reason or expired lease), if this is a retry.</summary>
    public string? LastError { get; init; }

    /// <summary>Revision that committed the lease (or its last extension): a linearization point for timelines.</summary>
    public long Revision { get; init; }

    /// <summary>W3C traceparent of the span that enqueued the task, if it was traced; consumer spans link to it.</summary>
    public string? TraceParent { get; init; }

    /// <summary>True when this lease is the task's last allowed attempt.</summary>
    public bool IsLastAttempt => Attempt >= MaxAttempts;
}

/// <summary>Outcome of an enqueue.</summary>
public enum EnqueueStatus
{
    /// <summary>A new task was created.</summary>
    Enqueued,

    /// <summary>The dedup id was already used within the window; nothing was created.</summary>
    Duplicate,

    /// <summary>
    /// The queue holds <see cref="QueueServiceOptions.MaxTasks"/> unfinished tasks (dead letters included); nothing was
    /// created. Back off, or drain the dead letters.
    /// </summary>
    QueueFull,
}

/// <summary>The outcome of <see cref="IQueueService.EnqueueAsync"/>.</summary>
/// <param name="Status">Enqueued or duplicate.</param>
/// <param name="TaskId">The new task, or the task the dedup id refers to (which may since have completed); empty when the queue was full.</param>
/// <param name="Revision">Commit revision (or the revision the duplicate was detected at).</param>
public sealed record EnqueueResult(EnqueueStatus Status, string TaskId, long Revision)
{
    /// <summary>True when a new task was created.</summary>
    public bool IsEnqueued => Status == EnqueueStatus.Enqueued;
}

/// <summary>The outcome of <see cref="IQueueService.LeaseAsync"/>.</summary>
/// <param name="Lease">The leased task, or null when none was visible within the wait.</param>
/// <param name="NextVisibleAt">When empty: the earliest moment a delayed task becomes visible or a lease expires, if known.</param>
public sealed record LeaseResult(QueueLease? Lease, DateTimeOffset? NextVisibleAt)
{
    /// <summary>True when a task was leased.</summary>
    public bool IsLeased => Lease is not null;
}

/// <summary>Outcome of an ack.</summary>
public enum AckStatus
{
    /// <summary>The task is complete and the effects were applied, in one transaction.</summary>
    Acked,

    /// <summary>The receipt is no longer current (lease expired and reclaimed, re-leased, already acked): nothing was applied.</summary>
    StaleReceipt,

    /// <summary>An effect's own expectation failed: nothing was applied and the lease is still held.</summary>
    EffectConflict,
}

/// <summary>The outcome of <see cref="IQueueService.AckAsync"/>.</summary>
/// <param name="Status">Acked, stale receipt or effect conflict.</param>
/// <param name="Revision">Commit revision when acked.</param>
/// <param name="Conflict">The failed effect operation (carrying the current record) for <see cref="AckStatus.EffectConflict"/>.</param>
/// <param name="EffectIndex">Index in the effects of the failed operation, or -1.</param>
/// <param name="Message">Explanation when not acked.</param>
public sealed record AckResult(AckStatus Status, long Revision, WriteResult? Conflict, int EffectIndex, string? Message)
{
    /// <summary>True when acked.</summary>
    public bool IsAcked => Status == AckStatus.Acked;

    /// <summary>True when this is the stored result of an earlier identical ack (a retry after a lost reply).</summary>
    public bool Replayed { get; init; }
}

/// <summary>Outcome of a nack.</summary>
public enum NackStatus
{
    /// <summary>The task will be leased again once visible.</summary>
    Requeued,

    /// <summary>The task used its last attempt and was dead-lettered with the reason.</summary>
    DeadLettered,

    /// <summary>The receipt is no longer current: nothing changed.</summary>
    StaleReceipt,
}

/// <summary>The outcome of <see cref="IQueueService.NackAsync"/>.</summary>
/// <param name="Status">Requeued, dead-lettered or stale.</param>
/// <param name="Revision">Commit revision.</param>
/// <param name="Message">Explanation for a stale receipt.</param>
public sealed record NackResult(NackStatus Status, long Revision, string? Message);

/// <summary>The outcome of <see cref="IQueueService.ExtendAsync"/>.</summary>
/// <param name="Lease">The lease with its new deadline, or null when the receipt is stale.</param>
/// <param name="Message">Explanation for a stale receipt.</param>
public sealed record ExtendResult(QueueLease? Lease, string? Message)
{
    /// <summary>True when extended.</summary>
    public bool IsExtended => Lease is not null;
}

/// <summary>Operations that act on a queue inside the caller's transaction (see <see cref="IQueueService.PrepareAckAsync"/>).</summary>
/// <param name="Ops">Operations to add to the transaction's then-branch (empty when stale).</param>
/// <param name="IsStale">True when the receipt is no longer current: there is nothing to ack.</param>
/// <param name="Message">Explanation when stale.</param>
public sealed record PreparedQueueOps(IReadOnlyList<TxnOp> Ops, bool IsStale, string? Message);

/// <summary>An enqueue prepared for the caller's transaction (see <see cref="IQueueService.PrepareEnqueueAsync"/>).</summary>
/// <param name="TaskId">Id the task will have once the transaction commits.</param>
/// <param name="Ops">Operations to add to the transaction's then-branch.</param>
public sealed record PreparedEnqueue(string TaskId, IReadOnlyList<TxnOp> Ops);

/// <summary>Task counts of a queue.</summary>
/// <param name="Ready">Visible now.</param>
/// <param name="Delayed">Visible later (delay or nack backoff).</param>
/// <param name="Waiting">Behind an unfinished task of their group.</param>
/// <param name="Leased">In flight.</param>
/// <param name="Dead">Dead-lettered.</param>
public sealed record QueueStats(int Ready, int Delayed, int Waiting, int Leased, int Dead)
{
    /// <summary>Every task not yet acked or deleted.</summary>
    public int Total => Ready + Delayed + Waiting + Leased + Dead;
}
