using System.Diagnostics;
using System.Text.Json;
using Concord.Diagnostics;

namespace Concord.Coordination.Queues;

/// <summary>
/// <see cref="IQueueService"/> built on the state contract, like etcd's recipes: each task is a record under
/// <c>_sys/queues/{queue}/</c> plus one index entry (ready, in flight or dead), and every state change is one
/// compare-and-swap transaction over the records it touches. Durable and idempotent with the store, available on every
/// backend and over HTTP, and composable: an ack is a list of <see cref="TxnOp"/>s that commits with the task's effect.
/// </summary>
/// <remarks>
/// <para>
/// Leasing scans the ready index in key order (priority band, visibility time, order) and takes the first visible
/// entry with a transaction that deletes the entry, marks the task leased with a fresh receipt and adds an in-flight
/// entry keyed by the deadline. Losing the race to another consumer just moves on to the next entry. Expired leases
/// are reclaimed lazily by the next lease call (or <see cref="ReclaimExpiredAsync"/>). Waiting for work is
/// event-driven: a watch on the queue's ready and in-flight indexes plus a timer for the next delayed task or deadline.
/// </para>
/// <para>
/// Groups: only a group's head (oldest unfinished task) is in the ready index; acking or dead-lettering the head
/// promotes the next member in the same transaction, so two tasks of one group are never leased at once and they
/// run in enqueue order.
/// </para>
/// <para>Thread-safe. Times come from <see cref="QueueServiceOptions.TimeProvider"/>; clients of one queue should share a clock within a small skew.</para>
/// </remarks>
public sealed class StoreQueueService : IQueueService
{
    /// <summary>Key prefix of every queue's records.</summary>
    public const string KeyPrefix = "_sys/queues/";

    private readonly IConcordStore _store;
    private readonly QueueServiceOptions _options;
    private readonly TimeProvider _time;
    private long _lastOrder;

    /// <summary>Creates the service over <paramref name="store"/>.</summary>
    public StoreQueueService(IConcordStore store, QueueServiceOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        _options = options ?? new QueueServiceOptions();
        _options.Validate();
        _store = store;
        _time = _options.TimeProvider;
    }

    private DateTimeOffset Now() => _time.GetUtcNow();

    /// <summary>Monotonic per instance: tasks enqueued by one producer at the same instant keep their order.</summary>
    private long NextOrder(DateTimeOffset now)
    {
        while (true)
        {
            var last = Volatile.Read(ref _lastOrder);
            var next = Math.Max(now.UtcTicks, last + 1);
            if (Interlocked.CompareExchange(ref _lastOrder, next, last) == last) return next;
        }
    }

    // ---------------------------------------------------------------- enqueue

    /// <inheritdoc />
    public async ValueTask<EnqueueResult> EnqueueAsync(string ns, string queue, JsonElement payload, EnqueueOptions? options = null, CancellationToken cancellationToken = default)
    {
        QueueRules.ValidateQueue(ns, queue);
        var keys = new QueueKeys(queue);
        options ??= new EnqueueOptions();
        // The producer span is current while the task is built, so the task carries its trace context for the consumer's link.
        using var activity = ConcordTelemetry.ActivitySource.StartActivity("concord.queue.enqueue", ActivityKind.Producer);
        var doc = NewTask(keys, payload, options);
        if (await FullAsync(ns, keys, cancellationToken).ConfigureAwait(false) is { } full)
        {
            activity?.SetTag("concord.queue.full", true);
            return new EnqueueResult(EnqueueStatus.QueueFull, "", full.Revision);
        }
        for (var attempt = 1; attempt <= _options.MaxCasAttempts; attempt++)
        {
            var ops = await EnqueueOpsAsync(ns, keys, doc, cancellationToken).ConfigureAwait(false);
            var result = await TransactAsync(ns, ops, options.Agent, null, cancellationToken).ConfigureAwait(false);
            if (result.IsApplied)
            {
                QueueTelemetry.Enqueued(activity, ns, queue, doc.Id, options.Agent, result.Replayed);
                return new EnqueueResult(EnqueueStatus.Enqueued, doc.Id, result.Revision);
            }
            if (doc.DedupId is not null && result.FailedOpIndex == 0)
            {
                var first = QueueKeys.IdOf(result.Conflict!.Record!);
                QueueTelemetry.Duplicate(activity, ns, queue, first);
                return new EnqueueResult(EnqueueStatus.Duplicate, first, result.Revision);
            }
            if (doc.Group is null) throw Unexpected("enqueue", result);
            // Another task of the group was enqueued or finished concurrently: re-read the group and try again.
        }
        throw new ContentionException($"Enqueue to group '{options.Group}' of queue '{queue}'", _options.MaxCasAttempts);
    }

    /// <inheritdoc />
    public async ValueTask<PreparedEnqueue> PrepareEnqueueAsync(string ns, string queue, JsonElement payload, EnqueueOptions? options = null, CancellationToken cancellationToken = default)
    {
        QueueRules.ValidateQueue(ns, queue);
        var keys = new QueueKeys(queue);
        var doc = NewTask(keys, payload, options ?? new EnqueueOptions());
        if (await FullAsync(ns, keys, cancellationToken).ConfigureAwait(false) is { } full)
            throw new QueueFullException(queue, full.Tasks, _options.MaxTasks!.Value);
        return new PreparedEnqueue(doc.Id, await EnqueueOpsAsync(ns, keys, doc, cancellationToken).ConfigureAwait(false));
    }

    private TaskDoc NewTask(QueueKeys keys, JsonElement payload, EnqueueOptions options)
    {
        var maxAttempts = QueueRules.ValidateEnqueue(payload, options, _options);
        var now = Now();
        return new TaskDoc
        {
            TraceParent = ConcordTelemetry.CurrentTraceParent(),
            Id = Guid.CreateVersion7(now).ToString("N"),
            Payload = payload.Clone(),
            MaxAttempts = maxAttempts,
            Priority = options.Priority,
            Group = options.Group,
            DedupId = options.DedupId,
            EnqueuedAt = now,
            VisibleAt = now + options.Delay,
            Order = NextOrder(now),
        };
    }

    /// <summary>The dedup entry (first, when there is a dedup id) and the operations that put the task into the queue.</summary>
    private async ValueTask<List<TxnOp>> EnqueueOpsAsync(string ns, QueueKeys keys, TaskDoc doc, CancellationToken cancellationToken)
    {
        var ops = new List<TxnOp>(6);
        if (doc.DedupId is not null) ops.Add(TxnOp.Put(keys.Dedup(doc.DedupId), QueueKeys.IdValue(doc.Id), Expect.Absent, _options.DedupWindow));
        await AddToQueueOpsAsync(ns, keys, doc, null, ops, cancellationToken).ConfigureAwait(false);
        ops.Add(CountOp(keys, +1));
        return ops;
    }

    private static readonly JsonPatch CountUp = JsonPatch.Create().Increment("/tasks", 1);
    private static readonly JsonPatch CountDown = JsonPatch.Create().Increment("/tasks", -1);

    /// <summary>Moves the queue's task count (an atomic increment: no conflict between concurrent producers and consumers).</summary>
    private static TxnOp CountOp(QueueKeys keys, int delta) => TxnOp.PatchKey(keys.Count, delta > 0 ? CountUp : CountDown);

    /// <summary>The task count and the revision it was read at when the queue holds <see cref="QueueServiceOptions.MaxTasks"/> tasks; null otherwise.</summary>
    private async ValueTask<(long Tasks, long Revision)?> FullAsync(string ns, QueueKeys keys, CancellationToken cancellationToken)
    {
        if (_options.MaxTasks is not { } max) return null;
        var record = await _store.GetAsync(ns, keys.Count, null, cancellationToken).ConfigureAwait(false);
        var tasks = record is not null && record.Value.ValueKind == JsonValueKind.Object && record.Value.TryGetProperty("tasks", out var n) && n.TryGetInt64(out var count) ? count : 0;
        return tasks >= max ? (tasks, record!.Revision) : null;
    }

    /// <summary>
    /// Adds the operations that put <paramref name="doc"/> into the queue: the task record, and either a ready entry
    /// (ungrouped, or first of its group) or a place behind the group's unfinished tasks, guarded by the group record's
    /// version (a conflict there means "retry").
    /// </summary>
    private async ValueTask AddToQueueOpsAsync(string ns, QueueKeys keys, TaskDoc doc, ConcordRecord? existing, List<TxnOp> ops, CancellationToken cancellationToken)
    {
        var isHead = true;
        if (doc.Group is { } group)
        {
            var groupKey = keys.Group(group);
            var record = await _store.GetAsync(ns, groupKey, null, cancellationToken).ConfigureAwait(false);
            var g = GroupDoc.From(record);
            doc.GroupSeq = g.Next;
            isHead = g.Count == 0;
            ops.Add(TxnOp.Put(groupKey, new GroupDoc { Next = g.Next + 1, Count = g.Count + 1 }.ToJson(), Expect.Version(record?.Version ?? 0)));
            ops.Add(TxnOp.Put(keys.Member(group, doc.GroupSeq), QueueKeys.IdValue(doc.Id), Expect.Absent));
        }
        doc.State = isHead ? QueueTaskState.Ready : QueueTaskState.Waiting;
        doc.Index = isHead ? keys.ReadyKey(doc.Priority, doc.VisibleAt, doc.Order, doc.Id) : null;
        ops.Add(TxnOp.Put(keys.Task(doc.Id), doc.ToJson(), existing is null ? Expect.Absent : Expect.Version(existing.Version)));
        if (doc.Index is not null) ops.Add(TxnOp.Put(doc.Index, QueueKeys.IdValue(doc.Id), Expect.Absent));
    }

    // ---------------------------------------------------------------- lease

    /// <inheritdoc />
    public async ValueTask<LeaseResult> LeaseAsync(string ns, string queue, string consumer, TimeSpan visibilityTimeout, TimeSpan wait = default, CancellationToken cancellationToken = default)
    {
        var keys = new QueueKeys(queue);
        QueueRules.ValidateLease(consumer, visibilityTimeout, wait);
        var started = Now();
        var waitUntil = started + wait;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var revision = await _store.GetRevisionAsync(cancellationToken).ConfigureAwait(false);
            var (lease, nextWake) = await TryLeaseOnceAsync(ns, keys, consumer, visibilityTimeout, cancellationToken).ConfigureAwait(false);
            if (lease is not null)
            {
                QueueTelemetry.Leased(lease, started, Now());
                return new LeaseResult(lease, null);
            }
            if (Now() >= waitUntil) return new LeaseResult(null, nextWake);
            var wakeAt = nextWake is { } n && n < waitUntil ? n : waitUntil;
            await WaitForWorkAsync(ns, keys, revision, wakeAt, cancellationToken).ConfigureAwait(false);
        }
    }

    private async ValueTask<(QueueLease? Lease, DateTimeOffset? NextWake)> TryLeaseOnceAsync(string ns, QueueKeys keys, string consumer, TimeSpan visibility, CancellationToken cancellationToken)
    {
        var (_, nextWake) = await ReclaimCoreAsync(ns, keys, consumer, cancellationToken).ConfigureAwait(false);
        var now = Now();
        string? after = null;
        var tries = 0;
        while (true)
        {
            var page = await _store.ListAsync(ns, new ListRequest { Prefix = keys.Ready, After = after, Limit = _options.PageSize }, cancellationToken).ConfigureAwait(false);
            string? skipTo = null;
            foreach (var entry in page.Records)
            {
                after = entry.Key;
                var (band, visibleTicks) = keys.ParseReady(entry.Key);
                if (visibleTicks > now.UtcTicks)
                {
                    // The rest of this priority band is delayed too: note when it wakes and jump to the next band.
                    nextWake = Min(nextWake, new DateTimeOffset(visibleTicks, TimeSpan.Zero));
                    skipTo = keys.BandEnd(band);
                    break;
                }
                var lease = await TryLeaseEntryAsync(ns, keys, entry, consumer, visibility, cancellationToken).ConfigureAwait(false);
                if (lease is not null) return (lease, null);
                // Someone else leased it first: try the next entry.
                if (++tries >= _options.MaxCasAttempts) throw new ContentionException($"Lease from queue '{keys.Queue}'", tries);
            }
            if (skipTo is not null) after = skipTo;
            else if (page.NextAfter is null) return (null, nextWake);
        }
    }

    private async ValueTask<QueueLease?> TryLeaseEntryAsync(string ns, QueueKeys keys, ConcordRecord entry, string consumer, TimeSpan visibility, CancellationToken cancellationToken)
    {
        var id = QueueKeys.IdOf(entry);
        var record = await _store.GetAsync(ns, keys.Task(id), null, cancellationToken).ConfigureAwait(false);
        if (record is null) return null;
        var doc = TaskDoc.From(record);
        if (doc.State != QueueTaskState.Ready || doc.Index != entry.Key) return null; // our page is stale
        var now = Now();
        var leased = doc.Clone();
        leased.State = QueueTaskState.Leased;
        leased.Attempts = doc.Attempts + 1;
        // The record's next version is unique to this lease, so every lease gets a receipt no earlier lease had.
        leased.Receipt = $"{leased.Attempts}.{record.Version + 1}";
        leased.Consumer = consumer;
        leased.LeasedAt = now;
        leased.Deadline = now + visibility;
        leased.Index = keys.InFlightKey(leased.Deadline.Value, id);
        var result = await TransactAsync(ns,
        [
            TxnOp.Delete(entry.Key, Expect.Version(entry.Version)),
            TxnOp.Put(record.Key, leased.ToJson(), Expect.Version(record.Version)),
            TxnOp.Put(leased.Index, QueueKeys.IdValue(id), Expect.Absent),
        ], consumer, null, cancellationToken).ConfigureAwait(false);
        return result.IsApplied ? ToLease(ns, keys, leased, result.Revision) : null;
    }

    private static QueueLease ToLease(string ns, QueueKeys keys, TaskDoc doc, long revision) => new()
    {
        Namespace = ns,
        Queue = keys.Queue,
        TaskId = doc.Id,
        Payload = doc.Payload,
        Receipt = doc.Receipt!,
        Consumer = doc.Consumer!,
        Attempt = doc.Attempts,
        MaxAttempts = doc.MaxAttempts,
        Group = doc.Group,
        Priority = doc.Priority,
        EnqueuedAt = doc.EnqueuedAt,
        Deadline = doc.Deadline!.Value,
        LastError = doc.LastError,
        Revision = revision,
        TraceParent = doc.TraceParent,
    };

    private static DateTimeOffset? Min(DateTimeOffset? a, DateTimeOffset b) => a is { } x && x <= b ? x : b;

    /// <summary>Waits until the ready or in-flight index changes after <paramref name="afterRevision"/>, or until <paramref name="wakeAt"/>.</summary>
    private async Task WaitForWorkAsync(string ns, QueueKeys keys, long afterRevision, DateTimeOffset wakeAt, CancellationToken cancellationToken)
    {
        var due = wakeAt - Now();
        if (due <= TimeSpan.Zero) return;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var delay = Task.Delay(due, _time, cts.Token);
        var watch = WatchForWorkAsync(ns, keys, afterRevision + 1, cts.Token);
        await Task.WhenAny(delay, watch).ConfigureAwait(false);
        await cts.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(delay, watch).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
        }
    }

    private async Task WatchForWorkAsync(string ns, QueueKeys keys, long fromRevision, CancellationToken cancellationToken)
    {
        try
        {
            var request = new WatchRequest { Prefix = keys.Root, FromRevision = fromRevision };
            await foreach (var change in _store.WatchAsync(ns, request, cancellationToken).ConfigureAwait(false))
            {
                // A new ready entry is work; a new in-flight entry is a deadline we may have to reclaim at.
                if (change.Kind == ChangeKind.Put && (change.Key.StartsWith(keys.Ready, StringComparison.Ordinal) || change.Key.StartsWith(keys.InFlight, StringComparison.Ordinal)))
                    return;
            }
        }
        catch (RevisionCompactedException)
        {
            // Too far behind to replay: looking at the indexes again is just as good.
        }
        catch (WatchOverflowException)
        {
        }
    }

    // ---------------------------------------------------------------- reclaim

    /// <inheritdoc />
    public async ValueTask<int> ReclaimExpiredAsync(string ns, string queue, CancellationToken cancellationToken = default)
    {
        var keys = new QueueKeys(queue);
        var (reclaimed, _) = await ReclaimCoreAsync(ns, keys, "concord:reclaimer", cancellationToken).ConfigureAwait(false);
        return reclaimed;
    }

    /// <summary>Reclaims every expired lease (in deadline order); returns how many, and the earliest live deadline.</summary>
    private async ValueTask<(int Reclaimed, DateTimeOffset? NextDeadline)> ReclaimCoreAsync(string ns, QueueKeys keys, string agent, CancellationToken cancellationToken)
    {
        var reclaimed = 0;
        string? after = null;
        var now = Now();
        while (true)
        {
            var page = await _store.ListAsync(ns, new ListRequest { Prefix = keys.InFlight, After = after, Limit = _options.PageSize }, cancellationToken).ConfigureAwait(false);
            foreach (var entry in page.Records)
            {
                var deadline = keys.ParseInFlight(entry.Key);
                if (deadline > now.UtcTicks) return (reclaimed, new DateTimeOffset(deadline, TimeSpan.Zero));
                if (await TryReclaimAsync(ns, keys, entry, agent, cancellationToken).ConfigureAwait(false)) reclaimed++;
                after = entry.Key;
            }
            if (page.NextAfter is null) return (reclaimed, null);
        }
    }

    private async ValueTask<bool> TryReclaimAsync(string ns, QueueKeys keys, ConcordRecord entry, string agent, CancellationToken cancellationToken)
    {
        var id = QueueKeys.IdOf(entry);
        for (var attempt = 1; attempt <= _options.MaxCasAttempts; attempt++)
        {
            var record = await _store.GetAsync(ns, keys.Task(id), null, cancellationToken).ConfigureAwait(false);
            if (record is null) return false;
            var doc = TaskDoc.From(record);
            if (doc.State != QueueTaskState.Leased || doc.Index != entry.Key) return false; // acked, nacked or extended meanwhile
            var now = Now();
            var reason = $"lease of attempt {doc.Attempts} by '{doc.Consumer}' expired at {doc.Deadline:O} without an ack";
            var ops = new List<TxnOp> { TxnOp.Delete(entry.Key, Expect.Version(entry.Version)) };
            await AddRetryOrDeadOpsAsync(ns, keys, record, doc, reason, TimeSpan.Zero, now, ops, cancellationToken).ConfigureAwait(false);
            var result = await TransactAsync(ns, ops, agent, null, cancellationToken).ConfigureAwait(false);
            if (result.IsApplied)
            {
                QueueTelemetry.LeaseLost(keys.Queue, doc.Attempts >= doc.MaxAttempts);
                return true;
            }
        }
        throw new ContentionException($"Reclaim of task '{id}' in queue '{keys.Queue}'", _options.MaxCasAttempts);
    }

    /// <summary>
    /// The operations that end a lease without success: back to the ready index after <paramref name="delay"/>, or to the
    /// dead letters when the task used its last attempt (which also lets its group move on). The caller removes the
    /// in-flight entry.
    /// </summary>
    private async ValueTask<bool> AddRetryOrDeadOpsAsync(string ns, QueueKeys keys, ConcordRecord record, TaskDoc doc, string reason, TimeSpan delay, DateTimeOffset now,
        List<TxnOp> ops, CancellationToken cancellationToken)
    {
        var next = doc.Clone();
        next.Receipt = null;
        next.Deadline = null;
        next.LeasedAt = null;
        next.LastError = reason;
        var dead = doc.Attempts >= doc.MaxAttempts;
        if (dead)
        {
            next.State = QueueTaskState.Dead;
            next.DeadAt = now;
            next.Index = keys.DeadKey(now, doc.Id);
            if (doc.Group is not null) await AddGroupAdvanceOpsAsync(ns, keys, doc, ops, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            next.State = QueueTaskState.Ready;
            next.VisibleAt = now + delay;
            next.Order = NextOrder(now);
            next.Index = keys.ReadyKey(next.Priority, next.VisibleAt, next.Order, doc.Id);
        }
        ops.Add(TxnOp.Put(record.Key, next.ToJson(), Expect.Version(record.Version)));
        ops.Add(TxnOp.Put(next.Index, QueueKeys.IdValue(doc.Id), Expect.Absent));
        return dead;
    }

    /// <summary>
    /// The head of <paramref name="doc"/>'s group is finishing (acked or dead): remove it from the group and promote the
    /// next member into the ready index, guarded by the group record's version so a concurrent enqueue is not missed.
    /// </summary>
    private async ValueTask AddGroupAdvanceOpsAsync(string ns, QueueKeys keys, TaskDoc doc, List<TxnOp> ops, CancellationToken cancellationToken)
    {
        var group = doc.Group!;
        var groupKey = keys.Group(group);
        var memberKey = keys.Member(group, doc.GroupSeq);
        var groupRecord = await _store.GetAsync(ns, groupKey, null, cancellationToken).ConfigureAwait(false);
        ops.Add(TxnOp.Delete(memberKey, Expect.Exists));
        if (groupRecord is null) return; // not reachable through this API; nothing to advance
        var g = GroupDoc.From(groupRecord);
        if (g.Count <= 1)
        {
            ops.Add(TxnOp.Delete(groupKey, Expect.Version(groupRecord.Version)));
            return;
        }
        ops.Add(TxnOp.Put(groupKey, new GroupDoc { Next = g.Next, Count = g.Count - 1 }.ToJson(), Expect.Version(groupRecord.Version)));
        // Members leave only as heads, so the next live member key after ours is the new head.
        var page = await _store.ListAsync(ns, new ListRequest { Prefix = keys.MemberPrefix(group), After = memberKey, Limit = 1 }, cancellationToken).ConfigureAwait(false);
        if (page.Records.Count == 0) return;
        var nextId = QueueKeys.IdOf(page.Records[0]);
        var nextRecord = await _store.GetAsync(ns, keys.Task(nextId), null, cancellationToken).ConfigureAwait(false);
        if (nextRecord is null) return;
        var next = TaskDoc.From(nextRecord);
        if (next.State != QueueTaskState.Waiting) return;
        next.State = QueueTaskState.Ready;
        next.Index = keys.ReadyKey(next.Priority, next.VisibleAt, next.Order, next.Id);
        ops.Add(TxnOp.Put(nextRecord.Key, next.ToJson(), Expect.Version(nextRecord.Version)));
        ops.Add(TxnOp.Put(next.Index, QueueKeys.IdValue(next.Id), Expect.Absent));
    }

    // ---------------------------------------------------------------- ack, nack, extend

    /// <summary>Reads the task of <paramref name="lease"/>; a message instead when the receipt is no longer current.</summary>
    private async ValueTask<(ConcordRecord? Record, TaskDoc? Doc, string? Stale)> ReadLeasedAsync(QueueKeys keys, QueueLease lease, CancellationToken cancellationToken)
    {
        var record = await _store.GetAsync(lease.Namespace, keys.Task(lease.TaskId), null, cancellationToken).ConfigureAwait(false);
        if (record is null) return (null, null, $"task '{lease.TaskId}' is no longer in queue '{lease.Queue}' (already acked, or deleted)");
        var doc = TaskDoc.From(record);
        if (doc.State != QueueTaskState.Leased || doc.Receipt != lease.Receipt)
        {
            var now = doc.State == QueueTaskState.Leased ? $"leased by '{doc.Consumer}' (attempt {doc.Attempts})" : doc.State.ToString().ToLowerInvariant();
            return (record, doc, $"receipt {lease.Receipt} of '{lease.Consumer}' for task '{lease.TaskId}' is stale: its lease ended (visibility timeout expired and the task was reclaimed, or it was nacked) and the task is now {now}");
        }
        return (record, doc, null);
    }

    /// <inheritdoc />
    public async ValueTask<PreparedQueueOps> PrepareAckAsync(QueueLease lease, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var keys = new QueueKeys(lease.Queue);
        var (record, doc, stale) = await ReadLeasedAsync(keys, lease, cancellationToken).ConfigureAwait(false);
        if (stale is not null) return new PreparedQueueOps([], true, stale);
        var ops = new List<TxnOp>
        {
            TxnOp.Delete(record!.Key, Expect.Version(record.Version)),
            TxnOp.Delete(doc!.Index!, Expect.Exists),
            CountOp(keys, -1),
        };
        if (doc.Group is not null) await AddGroupAdvanceOpsAsync(lease.Namespace, keys, doc, ops, cancellationToken).ConfigureAwait(false);
        return new PreparedQueueOps(ops, false, null);
    }

    /// <inheritdoc />
    public async ValueTask<AckResult> AckAsync(QueueLease lease, IReadOnlyList<TxnOp>? effects = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var idempotency = $"concord:queue-ack:{lease.Queue}/{lease.TaskId}/{lease.Receipt}";
        for (var attempt = 1; attempt <= _options.MaxCasAttempts; attempt++)
        {
            var prepared = await PrepareAckAsync(lease, cancellationToken).ConfigureAwait(false);
            if (prepared.IsStale)
            {
                // A retry of an ack whose reply was lost finds the task gone: the stored result says it was ours.
                var replay = await ProbeReplayAsync(lease, idempotency, cancellationToken).ConfigureAwait(false);
                return replay is not null
                    ? new AckResult(AckStatus.Acked, replay.Revision, null, -1, null) { Replayed = true }
                    : new AckResult(AckStatus.StaleReceipt, 0, null, -1, prepared.Message);
            }
            var ops = new List<TxnOp>(prepared.Ops.Count + (effects?.Count ?? 0));
            ops.AddRange(prepared.Ops);
            if (effects is not null) ops.AddRange(effects);
            var result = await TransactAsync(lease.Namespace, ops, lease.Consumer, idempotency, cancellationToken).ConfigureAwait(false);
            if (result.IsApplied)
            {
                if (!result.Replayed) QueueTelemetry.Acked(lease.Queue);
                return new AckResult(AckStatus.Acked, result.Revision, null, -1, null) { Replayed = result.Replayed };
            }
            if (result.FailedOpIndex >= prepared.Ops.Count)
            {
                var index = result.FailedOpIndex - prepared.Ops.Count;
                return new AckResult(AckStatus.EffectConflict, result.Revision, result.Conflict, index,
                    $"effect operation {index} was refused ({result.Conflict!.Message}); nothing was applied and the lease is still held");
            }
            // The task or its group changed under us (extend, concurrent enqueue into the group): prepare again.
        }
        throw new ContentionException($"Ack of task '{lease.TaskId}' in queue '{lease.Queue}'", _options.MaxCasAttempts);
    }

    /// <summary>
    /// Asks the store whether an operation with <paramref name="idempotencyKey"/> already committed. The probe is a
    /// read-only transaction: if nothing is stored it changes nothing (and stores nothing).
    /// </summary>
    private async ValueTask<TxnResult?> ProbeReplayAsync(QueueLease lease, string idempotencyKey, CancellationToken cancellationToken)
    {
        var keys = new QueueKeys(lease.Queue);
        var probe = await _store.TransactAsync(lease.Namespace, new TxnRequest { Then = [TxnOp.Get(keys.Task(lease.TaskId))] },
            new WriteOptions { IdempotencyKey = idempotencyKey, LogicalOperation = idempotencyKey, Agent = lease.Consumer }, cancellationToken).ConfigureAwait(false);
        return probe.Replayed ? probe : null;
    }

    /// <inheritdoc />
    public async ValueTask<NackResult> NackAsync(QueueLease lease, string? reason = null, TimeSpan delay = default, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        QueueRules.ValidateNackDelay(delay);
        var keys = new QueueKeys(lease.Queue);
        var idempotency = $"concord:queue-nack:{lease.Queue}/{lease.TaskId}/{lease.Receipt}";
        for (var attempt = 1; attempt <= _options.MaxCasAttempts; attempt++)
        {
            var (record, doc, stale) = await ReadLeasedAsync(keys, lease, cancellationToken).ConfigureAwait(false);
            if (stale is not null)
            {
                if (await ProbeReplayAsync(lease, idempotency, cancellationToken).ConfigureAwait(false) is { } replay)
                {
                    var wasDead = replay.Results.Any(r => r.Key.StartsWith(keys.Dead, StringComparison.Ordinal));
                    return new NackResult(wasDead ? NackStatus.DeadLettered : NackStatus.Requeued, replay.Revision, null);
                }
                return new NackResult(NackStatus.StaleReceipt, 0, stale);
            }
            var why = reason ?? $"nacked by '{lease.Consumer}'";
            var ops = new List<TxnOp> { TxnOp.Delete(doc!.Index!, Expect.Exists) };
            var dead = await AddRetryOrDeadOpsAsync(lease.Namespace, keys, record!, doc, why, delay, Now(), ops, cancellationToken).ConfigureAwait(false);
            var result = await TransactAsync(lease.Namespace, ops, lease.Consumer, idempotency, cancellationToken).ConfigureAwait(false);
            if (result.IsApplied)
            {
                if (dead && !result.Replayed) QueueTelemetry.DeadLettered(lease.Queue);
                return new NackResult(dead ? NackStatus.DeadLettered : NackStatus.Requeued, result.Revision, null);
            }
        }
        throw new ContentionException($"Nack of task '{lease.TaskId}' in queue '{lease.Queue}'", _options.MaxCasAttempts);
    }

    /// <inheritdoc />
    public async ValueTask<ExtendResult> ExtendAsync(QueueLease lease, TimeSpan visibilityTimeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        QueueRules.ValidateVisibility(visibilityTimeout);
        var keys = new QueueKeys(lease.Queue);
        for (var attempt = 1; attempt <= _options.MaxCasAttempts; attempt++)
        {
            var (record, doc, stale) = await ReadLeasedAsync(keys, lease, cancellationToken).ConfigureAwait(false);
            if (stale is not null) return new ExtendResult(null, stale);
            var next = doc!.Clone();
            next.Deadline = Now() + visibilityTimeout;
            next.Index = keys.InFlightKey(next.Deadline.Value, next.Id);
            var ops = new List<TxnOp> { TxnOp.Put(record!.Key, next.ToJson(), Expect.Version(record.Version)) };
            if (next.Index != doc.Index)
            {
                ops.Add(TxnOp.Delete(doc.Index!, Expect.Exists));
                ops.Add(TxnOp.Put(next.Index, QueueKeys.IdValue(next.Id), Expect.Absent));
            }
            var result = await TransactAsync(lease.Namespace, ops, lease.Consumer, null, cancellationToken).ConfigureAwait(false);
            if (result.IsApplied) return new ExtendResult(lease with { Deadline = next.Deadline.Value, Revision = result.Revision }, null);
        }
        throw new ContentionException($"Extend of task '{lease.TaskId}' in queue '{lease.Queue}'", _options.MaxCasAttempts);
    }

    // ---------------------------------------------------------------- inspection and dead letters

    /// <inheritdoc />
    public async ValueTask<QueueTask?> GetTaskAsync(string ns, string queue, string taskId, CancellationToken cancellationToken = default)
    {
        var keys = new QueueKeys(queue);
        ArgumentException.ThrowIfNullOrWhiteSpace(taskId);
        var record = await _store.GetAsync(ns, keys.Task(SysKeys.Segment(taskId, "Task id")), null, cancellationToken).ConfigureAwait(false);
        return record is null ? null : TaskDoc.From(record).ToTask(queue);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<QueueTask>> ListDeadLettersAsync(string ns, string queue, int limit = 100, CancellationToken cancellationToken = default)
    {
        var keys = new QueueKeys(queue);
        QueueRules.ValidateDeadLetterLimit(limit);
        var page = await _store.ListAsync(ns, new ListRequest { Prefix = keys.Dead, Limit = limit }, cancellationToken).ConfigureAwait(false);
        var tasks = new List<QueueTask>(page.Records.Count);
        foreach (var entry in page.Records)
        {
            var record = await _store.GetAsync(ns, keys.Task(QueueKeys.IdOf(entry)), null, cancellationToken).ConfigureAwait(false);
            if (record is not null && TaskDoc.From(record) is { State: QueueTaskState.Dead } doc) tasks.Add(doc.ToTask(queue));
        }
        return tasks;
    }

    /// <inheritdoc />
    public async ValueTask<bool> RequeueDeadLetterAsync(string ns, string queue, string taskId, CancellationToken cancellationToken = default)
    {
        var keys = new QueueKeys(queue);
        for (var attempt = 1; attempt <= _options.MaxCasAttempts; attempt++)
        {
            var record = await _store.GetAsync(ns, keys.Task(SysKeys.Segment(taskId, "Task id")), null, cancellationToken).ConfigureAwait(false);
            if (record is null || TaskDoc.From(record) is not { State: QueueTaskState.Dead } doc) return false;
            var now = Now();
            var ops = new List<TxnOp> { TxnOp.Delete(doc.Index!, Expect.Exists) };
            var next = doc.Clone();
            next.Attempts = 0;
            next.DeadAt = null;
            next.VisibleAt = now;
            next.Order = NextOrder(now);
            await AddToQueueOpsAsync(ns, keys, next, record, ops, cancellationToken).ConfigureAwait(false);
            var result = await TransactAsync(ns, ops, null, null, cancellationToken).ConfigureAwait(false);
            if (result.IsApplied) return true;
        }
        throw new ContentionException($"Requeue of dead letter '{taskId}' in queue '{queue}'", _options.MaxCasAttempts);
    }

    /// <inheritdoc />
    public async ValueTask<bool> DeleteDeadLetterAsync(string ns, string queue, string taskId, CancellationToken cancellationToken = default)
    {
        var keys = new QueueKeys(queue);
        for (var attempt = 1; attempt <= _options.MaxCasAttempts; attempt++)
        {
            var record = await _store.GetAsync(ns, keys.Task(SysKeys.Segment(taskId, "Task id")), null, cancellationToken).ConfigureAwait(false);
            if (record is null || TaskDoc.From(record) is not { State: QueueTaskState.Dead } doc) return false;
            var result = await TransactAsync(ns, [TxnOp.Delete(record.Key, Expect.Version(record.Version)), TxnOp.Delete(doc.Index!, Expect.Exists), CountOp(keys, -1)], null, null, cancellationToken).ConfigureAwait(false);
            if (result.IsApplied)
            {
                QueueTelemetry.Acked(queue);
                return true;
            }
        }
        throw new ContentionException($"Delete of dead letter '{taskId}' in queue '{queue}'", _options.MaxCasAttempts);
    }

    /// <inheritdoc />
    public async ValueTask<QueueStats> GetStatsAsync(string ns, string queue, CancellationToken cancellationToken = default)
    {
        var keys = new QueueKeys(queue);
        int ready = 0, delayed = 0, waiting = 0, leased = 0, dead = 0;
        var now = Now();
        string? after = null;
        long? at = null;
        do
        {
            var page = await _store.ListAsync(ns, new ListRequest { Prefix = keys.Tasks, After = after, AtRevision = at }, cancellationToken).ConfigureAwait(false);
            foreach (var record in page.Records)
            {
                var doc = TaskDoc.From(record);
                switch (doc.State)
                {
                    case QueueTaskState.Ready when doc.VisibleAt > now: delayed++; break;
                    case QueueTaskState.Ready: ready++; break;
                    case QueueTaskState.Waiting: waiting++; break;
                    case QueueTaskState.Leased: leased++; break;
                    default: dead++; break;
                }
            }
            after = page.NextAfter;
            at = page.Revision;
        }
        while (after is not null);
        return new QueueStats(ready, delayed, waiting, leased, dead);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Walks the queue roots under <see cref="KeyPrefix"/> in key order, one list call of one record per queue (skipping
    /// the rest of its keys) plus one to see whether it still holds a task. Key order sorts <c>name/</c>, not
    /// <c>name</c>: a queue <c>a</c> comes after <c>a-b</c> and <c>a.b</c>. So the page is completed with the queues whose
    /// names are such prefixes of the names found, and sorted.
    /// </remarks>
    public async ValueTask<QueueListPage> ListQueuesAsync(string ns, string? after = null, int limit = 100, CancellationToken cancellationToken = default)
    {
        QueueRules.ValidateListQueues(ns, after, limit);
        var found = new SortedSet<string>(StringComparer.Ordinal);
        var scanned = new List<string>();
        // Every name greater than `after` has its keys after KeyPrefix + after (a name it prefixes included).
        var from = after is null ? null : KeyPrefix + after;
        while (scanned.Count <= limit)
        {
            var page = await _store.ListAsync(ns, new ListRequest { Prefix = KeyPrefix, After = from, Limit = 1 }, cancellationToken).ConfigureAwait(false);
            if (page.Records.Count == 0) break;
            var rest = page.Records[0].Key.AsSpan(KeyPrefix.Length);
            var slash = rest.IndexOf('/');
            var name = (slash < 0 ? rest : rest[..slash]).ToString();
            // '0' follows '/': every key of this queue sorts before KeyPrefix + name + "0".
            from = KeyPrefix + name + "0";
            if (after is not null && string.CompareOrdinal(name, after) <= 0) continue;
            if (!await HoldsTasksAsync(ns, name, cancellationToken).ConfigureAwait(false)) continue;
            scanned.Add(name);
            found.Add(name);
        }
        // A queue not reached yet sorts before a found one only if it is a prefix of it followed by '-' or '.'.
        foreach (var name in scanned)
        {
            for (var i = 1; i < name.Length; i++)
            {
                if (name[i] is not ('-' or '.')) continue;
                var prefix = name[..i];
                if (found.Contains(prefix) || (after is not null && string.CompareOrdinal(prefix, after) <= 0)) continue;
                if (await HoldsTasksAsync(ns, prefix, cancellationToken).ConfigureAwait(false)) found.Add(prefix);
            }
        }
        var names = found.Take(limit).ToList();
        return new QueueListPage(names, found.Count > limit ? names[^1] : null);
    }

    /// <summary>True when <paramref name="queue"/> is a valid queue name with at least one task record.</summary>
    private async ValueTask<bool> HoldsTasksAsync(string ns, string queue, CancellationToken cancellationToken)
    {
        QueueKeys keys;
        try
        {
            keys = new QueueKeys(queue);
        }
        catch (InvalidRequestException)
        {
            return false; // not a queue this service could have made
        }
        var page = await _store.ListAsync(ns, new ListRequest { Prefix = keys.Tasks, Limit = 1 }, cancellationToken).ConfigureAwait(false);
        return page.Records.Count > 0;
    }

    // ---------------------------------------------------------------- helpers

    private ValueTask<TxnResult> TransactAsync(string ns, IReadOnlyList<TxnOp> ops, string? agent, string? idempotencyKey, CancellationToken cancellationToken) =>
        _store.TransactAsync(ns, new TxnRequest { Then = ops },
            new WriteOptions { Agent = agent, IdempotencyKey = idempotencyKey, LogicalOperation = idempotencyKey }, cancellationToken);

    private static InvalidRequestException Unexpected(string what, TxnResult result) =>
        new($"Queue {what} was refused unexpectedly: {result.Conflict?.Message}; keys under {KeyPrefix} are reserved for the queue service");
}
