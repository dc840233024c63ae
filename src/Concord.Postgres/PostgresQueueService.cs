using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using Concord.Coordination;
using Concord.Coordination.Queues;
using Concord.Diagnostics;
using Concord.Engine;
using Concord.Internal;
using Npgsql;
using NpgsqlTypes;

namespace Concord.Postgres;

/// <summary>
/// An extra step of one commit of <see cref="PostgresStore"/>, run inside its PostgreSQL transaction after the commit's
/// rows are written. Returning a refusal (or throwing) rolls the whole commit back.
/// </summary>
internal delegate Task<CommitRefusal?> CommitStep(NpgsqlConnection connection, NpgsqlTransaction transaction, CommitEntry commit, CancellationToken cancellationToken);

/// <summary>Why a commit step refused: reported as the failure of the operation on <paramref name="Key"/>.</summary>
internal sealed record CommitRefusal(string Key, ConflictKind Kind, string Message)
{
    /// <summary>The not-applied result of the transaction, blaming the operation on <see cref="Key"/> (or none, -1).</summary>
    public TxnResult ToResult(TxnRequest request, bool succeeded, long revision)
    {
        var ops = succeeded ? request.Then : request.Else;
        var index = -1;
        for (var i = 0; i < ops.Count; i++)
        {
            if (ops[i].Key == Key)
            {
                index = i;
                break;
            }
        }
        return new TxnResult(succeeded, [], revision, new WriteResult(Key, Kind, null, revision, message: Message), failedOpIndex: index);
    }
}

/// <summary>
/// <see cref="IQueueService"/> natively on PostgreSQL: tasks are rows of <c>queue_tasks</c>, leased with
/// <c>FOR UPDATE SKIP LOCKED</c>, deleted on ack; dead letters live in <c>queue_dead</c>, dedup ids in
/// <c>queue_dedup</c>. Same observable behaviour as <see cref="StoreQueueService"/> (dedup window, groups, delay,
/// priority, receipts, visibility timeout, nack, dead letters), at the cost of one or two statements per operation
/// instead of a compare-and-swap transaction over several records serialized on the global revision.
/// </summary>
/// <remarks>
/// <para>
/// Atomicity with state: <see cref="AckAsync"/> with effects commits the effects through the store's normal commit
/// (versions, idempotency, revisions, watch notifications) and deletes the task row in the same PostgreSQL transaction.
/// <see cref="PrepareEnqueueAsync"/> and <see cref="PrepareAckAsync"/> return marker operations on reserved keys
/// (<c>_sys/pgqueue/…</c>); when a transaction containing them commits, the store applies them to the queue tables in the
/// same PostgreSQL transaction and removes the marker rows (they remain in the change log). If the queue refuses (the
/// dedup id is taken, the receipt is stale), the whole transaction is rolled back and reported as the failure of the
/// marker operation.
/// </para>
/// <para>
/// Queue operations other than acks with effects do not create store revisions: their <c>Revision</c> is the store's
/// revision when they ran (a lower bound). Waiting leases are woken by LISTEN/NOTIFY on <c>concord_queue_{schema}</c> and
/// by a timer for the next delayed task or lease deadline. See docs/backends.md, "The native queue on PostgreSQL".
/// </para>
/// <para>Thread-safe. Dispose to stop the notification listener.</para>
/// </remarks>
public sealed class PostgresQueueService : IQueueService, IAsyncDisposable
{
    /// <summary>Key prefix of the marker operations that <see cref="PrepareEnqueueAsync"/> and <see cref="PrepareAckAsync"/> return.</summary>
    public const string MarkerPrefix = "_sys/pgqueue/";

    private static readonly TimeSpan ReclaimInterval = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long an ack's tombstone (<c>queue_acked</c>) is kept, so that a retry of the ack after a lost reply reports
    /// <see cref="AckResult.Replayed"/> instead of a stale receipt: one small row per ack lives this long (the same default
    /// as the Redis queue's <c>AckReplayWindow</c>).
    /// </summary>
    public static readonly TimeSpan AckReplayWindow = TimeSpan.FromMinutes(2);

    /// <summary>How long a registration in <c>queue_waiters</c> lasts (refreshed while the service keeps waiting).</summary>
    private static readonly TimeSpan WaiterTtl = TimeSpan.FromSeconds(30);

    /// <summary>A waiting lease looks again at least this often, in case a notification was lost (listener reconnecting, a producer crashing between commit and NOTIFY).</summary>
    private static readonly TimeSpan FallbackPoll = TimeSpan.FromSeconds(1);
    private readonly PostgresStore _store;
    private readonly NpgsqlDataSource _ds;
    private readonly QueueServiceOptions _options;
    private readonly TimeProvider _time;
    private readonly string _s;
    private readonly string _channel;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _signalGate = new();
    private readonly ConcurrentDictionary<string, long> _lastReclaim = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _waiting = new(StringComparer.Ordinal);
    private readonly string _node = Guid.NewGuid().ToString("N");
    private readonly AsyncPulse _signal = new();
    private Task? _listener;
    private TaskCompletionSource? _listening;

    /// <summary>Creates the service over <paramref name="store"/>'s database and schema (the tables are created with the store's schema).</summary>
    public PostgresQueueService(PostgresStore store, QueueServiceOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        _options = options ?? new QueueServiceOptions();
        _options.Validate();
        _store = store;
        _ds = store.DataSource;
        _s = store.SchemaName;
        _channel = Channel(_s);
        _time = _options.TimeProvider;
    }

    private static string Channel(string schema) => "concord_queue_" + schema;

    private DateTimeOffset Now() => _time.GetUtcNow();

    /// <summary>A queue's key in this node's per-queue state (reclaim times, waiters, task counts) and in NOTIFY payloads.</summary>
    private static string QueueKey(string ns, string queue) => ns + "\n" + queue;

    private static DateTimeOffset At(long ticks) => new(ticks, TimeSpan.Zero);

    // ---------------------------------------------------------------- enqueue

    /// <inheritdoc />
    public async ValueTask<EnqueueResult> EnqueueAsync(string ns, string queue, JsonElement payload, EnqueueOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new EnqueueOptions();
        using var activity = ConcordTelemetry.ActivitySource.StartActivity("concord.queue.enqueue", ActivityKind.Producer);
        var spec = NewTask(ns, queue, payload, options);
        if (await CountIfFullAsync(ns, queue, cancellationToken).ConfigureAwait(false) is not null)
        {
            activity?.SetTag("concord.queue.full", true);
            return new EnqueueResult(EnqueueStatus.QueueFull, "", await _store.GetRevisionAsync(cancellationToken).ConfigureAwait(false));
        }
        var (enqueued, taskId, revision, waiters) = await Translate(async () =>
        {
            await using var conn = await _ds.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            return await EnqueueCoreAsync(conn, null, _s, spec, cancellationToken).ConfigureAwait(false);
        }).ConfigureAwait(false);
        if (!enqueued)
        {
            QueueTelemetry.Duplicate(activity, ns, queue, taskId);
            return new EnqueueResult(EnqueueStatus.Duplicate, taskId, revision);
        }
        QueueTelemetry.Enqueued(activity, ns, queue, taskId, options.Agent, false);
        CountEnqueued(ns, queue);
        if (spec.VisibleAt <= spec.EnqueuedAt)
        {
            // Nobody registered as waiting on this queue: spare the NOTIFY (and its cluster-wide lock); local waiters get a pulse.
            if (waiters) await NotifyAsync(ns, queue, cancellationToken).ConfigureAwait(false);
            else Pulse();
        }
        return new EnqueueResult(EnqueueStatus.Enqueued, taskId, revision);
    }

    /// <inheritdoc />
    /// <remarks>
    /// The single operation returned puts a marker under <see cref="MarkerPrefix"/>; the store turns it into the task row
    /// in the same PostgreSQL transaction as the rest of the caller's transaction. A dedup id already used within the
    /// window makes the whole transaction fail on that operation (<see cref="ConflictKind.AlreadyExists"/>).
    /// </remarks>
    public async ValueTask<PreparedEnqueue> PrepareEnqueueAsync(string ns, string queue, JsonElement payload, EnqueueOptions? options = null, CancellationToken cancellationToken = default)
    {
        var spec = NewTask(ns, queue, payload, options ?? new EnqueueOptions());
        if (await CountIfFullAsync(ns, queue, cancellationToken).ConfigureAwait(false) is { } tasks)
            throw new QueueFullException(queue, tasks, _options.MaxTasks!.Value);
        var op = TxnOp.Put($"{MarkerPrefix}{queue}/e/{spec.Id}", JsonSerializer.SerializeToElement(spec, JsonDefaults.Web), Expect.Absent);
        return new PreparedEnqueue(spec.Id, [op]);
    }

    /// <summary>
    /// The queue's unfinished tasks (dead letters included) when they reach <see cref="QueueServiceOptions.MaxTasks"/>;
    /// null otherwise. Counts at most the limit through the primary keys, so a small queue costs little; checked before
    /// the enqueue's transaction, so concurrent producers can overshoot by their number.
    /// </summary>
    /// <summary>
    /// The queue's unfinished tasks when it holds <see cref="QueueServiceOptions.MaxTasks"/> or more; null otherwise.
    /// Counting is a scan of up to MaxTasks index entries and a round trip, so it is skipped while the last exact count
    /// on this node (at most <see cref="CountReuse"/> old, plus this node's enqueues since) is more than
    /// <see cref="CountHeadroom"/> below the limit. Within that distance of the limit every enqueue counts exactly.
    /// </summary>
    private async Task<long?> CountIfFullAsync(string ns, string queue, CancellationToken cancellationToken)
    {
        if (_options.MaxTasks is not { } max) return null;
        var key = QueueKey(ns, queue);
        var now = Now().UtcTicks;
        if (_counts.TryGetValue(key, out var known) && now - known.At < CountReuse.Ticks && known.Count + CountHeadroom(max) < max) return null;
        var count = await Translate(async () =>
        {
            await using var cmd = _ds.CreateCommand($"""
                SELECT (SELECT count(*) FROM (SELECT 1 FROM {_s}.queue_tasks WHERE ns = $1 AND queue = $2 LIMIT $3) t)
                     + (SELECT count(*) FROM (SELECT 1 FROM {_s}.queue_dead WHERE ns = $1 AND queue = $2 LIMIT $3) d)
                """);
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = ns });
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = queue });
            cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = max });
            return (long)(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }).ConfigureAwait(false);
        _counts[key] = (count, now);
        return count >= max ? count : null;
    }

    /// <summary>How long an exact count of a queue's tasks stands in for counting again (see <see cref="CountIfFullAsync"/>).</summary>
    private static readonly TimeSpan CountReuse = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Below the limit by more than this, an enqueue trusts a recent count: half the limit, at least 1,000 tasks. Other
    /// nodes' enqueues are not in this node's count, so the limit can be overshot only if the other nodes enqueue more
    /// than this within <see cref="CountReuse"/> (500,000 tasks in a second at the default limit).
    /// </summary>
    private static long CountHeadroom(int max) => Math.Max(1000, max / 2);

    /// <summary>Last exact task count per queue on this node, and when it was taken; this node's enqueues add to it.</summary>
    private readonly ConcurrentDictionary<string, (long Count, long At)> _counts = new(StringComparer.Ordinal);

    private void CountEnqueued(string ns, string queue)
    {
        var key = QueueKey(ns, queue);
        if (_counts.TryGetValue(key, out var known)) _counts.TryUpdate(key, (known.Count + 1, known.At), known);
    }

    private TaskSpec NewTask(string ns, string queue, JsonElement payload, EnqueueOptions options)
    {
        QueueRules.ValidateQueue(ns, queue);
        var maxAttempts = QueueRules.ValidateEnqueue(payload, options, _options);
        var now = Now();
        return new TaskSpec
        {
            Ns = ns,
            Queue = queue,
            Id = Guid.CreateVersion7(now).ToString("N"),
            Payload = payload.GetRawText(),
            MaxAttempts = maxAttempts,
            Priority = options.Priority,
            Group = options.Group,
            DedupId = options.DedupId,
            DedupUntil = options.DedupId is null ? 0 : _options.DedupWindow is { } w ? (now + w).UtcTicks : long.MaxValue,
            EnqueuedAt = now.UtcTicks,
            VisibleAt = (now + options.Delay).UtcTicks,
            TraceParent = ConcordTelemetry.CurrentTraceParent(),
        };
    }

    /// <summary>
    /// Inserts the task (and its dedup row) on <paramref name="conn"/>, inside <paramref name="tx"/> or as one implicit
    /// transaction. Grouped tasks take the group's advisory lock first, so "is the group empty?" and the insert are atomic
    /// with respect to acks of the group's head.
    /// </summary>
    private static async Task<(bool Enqueued, string TaskId, long Revision, bool Waiters)> EnqueueCoreAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string s, TaskSpec t, CancellationToken cancellationToken)
    {
        await using var batch = new NpgsqlBatch(conn, tx);
        if (t.Group is not null) batch.BatchCommands.Add(GroupLock(s, t.Ns, t.Queue, t.Group));
        var insert = new NpgsqlBatchCommand(t.DedupId is null
            ? $"""
               INSERT INTO {s}.queue_tasks (ns, queue, id, priority, visible_at, seq, waiting, group_key, attempts, max_attempts, enqueued_at, dedup_id, trace_parent, payload)
               SELECT $1, $2, $3, $4, $5, nextval('{s}.queue_seq'),
                   $6::text IS NOT NULL AND EXISTS (SELECT 1 FROM {s}.queue_tasks WHERE ns = $1 AND queue = $2 AND group_key = $6::text),
                   $6::text, 0, $7, $8, $9::text, $10::text, $11::json
               ON CONFLICT (ns, queue, id) DO NOTHING
               RETURNING waiting
               """
            : $"""
               WITH d AS (
                   INSERT INTO {s}.queue_dedup AS q (ns, queue, dedup_id, task_id, expires_at) VALUES ($1, $2, $9::text, $3, $12)
                   ON CONFLICT (ns, queue, dedup_id) DO UPDATE SET task_id = excluded.task_id, expires_at = excluded.expires_at WHERE q.expires_at <= $8
                   RETURNING 1)
               INSERT INTO {s}.queue_tasks (ns, queue, id, priority, visible_at, seq, waiting, group_key, attempts, max_attempts, enqueued_at, dedup_id, trace_parent, payload)
               SELECT $1, $2, $3, $4, $5, nextval('{s}.queue_seq'),
                   $6::text IS NOT NULL AND EXISTS (SELECT 1 FROM {s}.queue_tasks WHERE ns = $1 AND queue = $2 AND group_key = $6::text),
                   $6::text, 0, $7, $8, $9::text, $10::text, $11::json
               WHERE EXISTS (SELECT 1 FROM d)
               ON CONFLICT (ns, queue, id) DO NOTHING
               RETURNING waiting
               """);
        Add(insert, t.Ns);
        Add(insert, t.Queue);
        Add(insert, t.Id);
        Add(insert, t.Priority);
        Add(insert, t.VisibleAt);
        AddText(insert, t.Group);
        Add(insert, t.MaxAttempts);
        Add(insert, t.EnqueuedAt);
        AddText(insert, t.DedupId);
        AddText(insert, t.TraceParent);
        Add(insert, t.Payload);
        if (t.DedupId is not null) Add(insert, t.DedupUntil);
        batch.BatchCommands.Add(insert);
        if (t.DedupId is not null)
        {
            var first = new NpgsqlBatchCommand($"SELECT task_id FROM {s}.queue_dedup WHERE ns = $1 AND queue = $2 AND dedup_id = $3");
            Add(first, t.Ns);
            Add(first, t.Queue);
            Add(first, t.DedupId);
            batch.BatchCommands.Add(first);
        }
        var waiters = new NpgsqlBatchCommand($"SELECT revision, EXISTS (SELECT 1 FROM {s}.queue_waiters WHERE ns = $1 AND queue = $2 AND expires_at > $3) FROM {s}.meta WHERE id = 1");
        Add(waiters, t.Ns);
        Add(waiters, t.Queue);
        Add(waiters, t.EnqueuedAt);
        batch.BatchCommands.Add(waiters);
        // Inside a store commit the store notifies anyway; standalone enqueues notify after their commit (NotifyAsync), because
        // a NOTIFY holds a cluster-wide lock from pre-commit to the end of the commit, fsync included: inside every enqueue
        // it would serialize all enqueues and defeat group commit.
        if (tx is not null && t.VisibleAt <= t.EnqueuedAt) batch.BatchCommands.Add(Notify(s, t.Ns, t.Queue));
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (t.Group is not null) await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        var enqueued = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var taskId = t.Id;
        if (t.DedupId is not null)
        {
            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) taskId = reader.GetString(0);
        }
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var revision = reader.GetInt64(0);
        return (enqueued, enqueued ? t.Id : taskId, revision, reader.GetBoolean(1));
    }

    // ---------------------------------------------------------------- lease

    /// <inheritdoc />
    public async ValueTask<LeaseResult> LeaseAsync(string ns, string queue, string consumer, TimeSpan visibilityTimeout, TimeSpan wait = default, CancellationToken cancellationToken = default)
    {
        QueueRules.ValidateQueue(ns, queue);
        QueueRules.ValidateLease(consumer, visibilityTimeout, wait);
        var started = Now();
        var waitUntil = started + wait;
        if (wait > TimeSpan.Zero) await EnsureListeningAsync(cancellationToken).ConfigureAwait(false);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var signal = Signal();
            var (lease, nextWake) = await TryLeaseOnceAsync(ns, queue, consumer, visibilityTimeout, cancellationToken).ConfigureAwait(false);
            if (lease is not null)
            {
                QueueTelemetry.Leased(lease, started, Now());
                return new LeaseResult(lease, null);
            }
            var now = Now();
            if (now >= waitUntil) return new LeaseResult(null, nextWake);
            // Producers only NOTIFY queues someone waits on: register (or refresh), then look once more before sleeping, so
            // a task enqueued before the registration was visible to its producer is not slept through.
            if (await RegisterWaiterAsync(ns, queue, now, cancellationToken).ConfigureAwait(false)) continue;
            var wakeAt = nextWake is { } n && n < waitUntil ? n : waitUntil;
            if (wakeAt > now + FallbackPoll) wakeAt = now + FallbackPoll;
            await WaitAsync(signal, wakeAt - now, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task WaitAsync(Task signal, TimeSpan due, CancellationToken cancellationToken)
    {
        if (due <= TimeSpan.Zero) return;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var delay = Task.Delay(due, _time, cts.Token);
        await Task.WhenAny(signal, delay).ConfigureAwait(false);
        await cts.CancelAsync().ConfigureAwait(false);
        try
        {
            await delay.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
        }
        cancellationToken.ThrowIfCancellationRequested();
    }

    private async ValueTask<(QueueLease? Lease, DateTimeOffset? NextWake)> TryLeaseOnceAsync(string ns, string queue, string consumer, TimeSpan visibility, CancellationToken cancellationToken)
    {
        var now = Now();
        // Expired leases go back lazily: at most once a second per queue while tasks flow, and whenever the queue looks empty.
        var key = QueueKey(ns, queue);
        var reclaimedNow = false;
        if (!_lastReclaim.TryGetValue(key, out var last) || now.UtcTicks - last >= ReclaimInterval.Ticks)
        {
            _lastReclaim[key] = now.UtcTicks;
            await ReclaimCoreAsync(ns, queue, cancellationToken).ConfigureAwait(false);
            reclaimedNow = true;
        }
        while (true)
        {
            var lease = await Translate(() => LeaseCoreAsync(ns, queue, consumer, now, now + visibility, cancellationToken)).ConfigureAwait(false);
            if (lease is not null) return (lease, null);
            if (!reclaimedNow)
            {
                reclaimedNow = true;
                _lastReclaim[key] = now.UtcTicks;
                if (await ReclaimCoreAsync(ns, queue, cancellationToken).ConfigureAwait(false) > 0) continue;
            }
            return (null, await NextWakeAsync(ns, queue, cancellationToken).ConfigureAwait(false));
        }
    }

    private async Task<QueueLease?> LeaseCoreAsync(string ns, string queue, string consumer, DateTimeOffset now, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        // Only unindexed columns change (receipt, consumer, deadline, attempts), so with free space on the page
        // (fillfactor) the lease is a HOT update: no new index entries, and the old version is pruned in place.
        await using var cmd = _ds.CreateCommand($"""
            WITH c AS (
                SELECT id FROM {_s}.queue_tasks
                WHERE ns = $1 AND queue = $2 AND NOT waiting AND receipt IS NULL AND visible_at <= $3
                ORDER BY priority DESC, visible_at, seq
                LIMIT 1 FOR UPDATE SKIP LOCKED)
            UPDATE {_s}.queue_tasks t SET attempts = t.attempts + 1, receipt = (t.attempts + 1)::text || '.' || nextval('{_s}.queue_seq')::text || CASE WHEN t.group_key IS NULL THEN '' ELSE 'g' END, consumer = $4, deadline = $5
            FROM c WHERE t.ns = $1 AND t.queue = $2 AND t.id = c.id
            RETURNING t.id, t.payload::text, t.receipt, t.attempts, t.max_attempts, t.group_key, t.priority, t.enqueued_at, t.last_error, t.trace_parent,
                (SELECT revision FROM {_s}.meta WHERE id = 1)
            """);
        Add(cmd, ns);
        Add(cmd, queue);
        Add(cmd, now.UtcTicks);
        Add(cmd, consumer);
        Add(cmd, deadline.UtcTicks);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) return null;
        return new QueueLease
        {
            Namespace = ns,
            Queue = queue,
            TaskId = reader.GetString(0),
            Payload = ParseJson(reader.GetString(1)),
            Receipt = reader.GetString(2),
            Consumer = consumer,
            Attempt = reader.GetInt32(3),
            MaxAttempts = reader.GetInt32(4),
            Group = reader.IsDBNull(5) ? null : reader.GetString(5),
            Priority = reader.GetInt32(6),
            EnqueuedAt = At(reader.GetInt64(7)),
            Deadline = deadline,
            LastError = reader.IsDBNull(8) ? null : reader.GetString(8),
            TraceParent = reader.IsDBNull(9) ? null : reader.GetString(9),
            Revision = reader.GetInt64(10),
        };
    }

    /// <summary>The earliest moment a delayed task becomes visible or a lease expires (scans the queue's visible index).</summary>
    private async Task<DateTimeOffset?> NextWakeAsync(string ns, string queue, CancellationToken cancellationToken) =>
        await Translate(async () =>
        {
            await using var cmd = _ds.CreateCommand($"SELECT min(CASE WHEN receipt IS NULL THEN visible_at ELSE deadline END) FROM {_s}.queue_tasks WHERE ns = $1 AND queue = $2 AND NOT waiting");
            Add(cmd, ns);
            Add(cmd, queue);
            return await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long ticks ? At(ticks) : (DateTimeOffset?)null;
        }).ConfigureAwait(false);

    // ---------------------------------------------------------------- ack

    /// <inheritdoc />
    /// <remarks>
    /// With effects, the effects commit through the store (same semantics as <see cref="IConcordStore.TransactAsync"/>,
    /// with an idempotency key derived from the receipt, so a retry after a lost reply reports the first ack) and the task
    /// row is deleted in the same PostgreSQL transaction. Without effects the ack is one round trip that deletes the task
    /// and writes a tombstone (<c>queue_acked</c>: task id, receipt, revision) in the same statement; a retry with the same
    /// receipt within <see cref="AckReplayWindow"/> finds it and reports <see cref="AckStatus.Acked"/> with
    /// <see cref="AckResult.Replayed"/> and the first ack's revision. Tombstones are swept with the expired dedup ids.
    /// </remarks>
    public async ValueTask<AckResult> AckAsync(QueueLease lease, IReadOnlyList<TxnOp>? effects = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        SysKeys.ValidateName(lease.Queue, "Queue");
        if (effects is null || effects.Count == 0) return await AckWithoutEffectsAsync(lease, cancellationToken).ConfigureAwait(false);

        var idempotency = $"concord:queue-ack:{lease.Queue}/{lease.TaskId}/{lease.Receipt}";
        var stale = false;
        var stepRan = false;
        var result = await _store.TransactWithStepAsync(lease.Namespace, new TxnRequest { Then = effects },
            new WriteOptions { Agent = lease.Consumer, IdempotencyKey = idempotency, LogicalOperation = idempotency },
            async (conn, tx, _, ct) =>
            {
                stepRan = true;
                stale = false;
                var (deleted, promoted, _, _) = await AckCoreAsync(conn, tx, _s, lease, Now(), ct).ConfigureAwait(false);
                if (deleted)
                {
                    if (promoted) await NotifyInAsync(conn, tx, _s, lease.Namespace, lease.Queue, ct).ConfigureAwait(false);
                    return null;
                }
                stale = true;
                return new CommitRefusal($"{MarkerPrefix}{lease.Queue}/a/{lease.TaskId}", ConflictKind.NotFound, StaleMessage(lease));
            }, cancellationToken).ConfigureAwait(false);
        if (result.IsApplied)
        {
            if (result.Replayed) return new AckResult(AckStatus.Acked, result.Revision, null, -1, null) { Replayed = true };
            // A read-only effect list commits nothing, so the step did not run: ack on its own.
            if (!stepRan) return await AckWithoutEffectsAsync(lease, cancellationToken).ConfigureAwait(false);
            QueueTelemetry.Acked(lease.Queue);
            Pulse();
            return new AckResult(AckStatus.Acked, result.Revision, null, -1, null);
        }
        if (stale || !await IsCurrentAsync(lease, cancellationToken).ConfigureAwait(false))
            return new AckResult(AckStatus.StaleReceipt, 0, null, -1, StaleMessage(lease));
        return new AckResult(AckStatus.EffectConflict, result.Revision, result.Conflict, result.FailedOpIndex,
            $"effect operation {result.FailedOpIndex} was refused ({result.Conflict!.Message}); nothing was applied and the lease is still held");
    }

    private async Task<AckResult> AckWithoutEffectsAsync(QueueLease lease, CancellationToken cancellationToken)
    {
        var (deleted, promoted, revision, replayed) = await Translate(async () =>
        {
            await using var conn = await _ds.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            return await AckCoreAsync(conn, null, _s, lease, Now(), cancellationToken).ConfigureAwait(false);
        }).ConfigureAwait(false);
        // A retry after a lost reply finds the task gone and its own receipt in the tombstone: it was this ack.
        if (replayed) return new AckResult(AckStatus.Acked, revision, null, -1, null) { Replayed = true };
        if (!deleted) return new AckResult(AckStatus.StaleReceipt, 0, null, -1, StaleMessage(lease));
        QueueTelemetry.Acked(lease.Queue);
        if (promoted) await NotifyAsync(lease.Namespace, lease.Queue, cancellationToken).ConfigureAwait(false);
        return new AckResult(AckStatus.Acked, revision, null, -1, null);
    }

    /// <summary>
    /// Deletes the leased task if <paramref name="lease"/>'s receipt is current, records the ack in <c>queue_acked</c> (the
    /// receipt, until <paramref name="now"/> + <see cref="AckReplayWindow"/>) and, for a grouped task, promotes the next
    /// task of its group: one round trip, one transaction. Only the task id and receipt are trusted (leases rebuilt from an
    /// HTTP request carry no group): the delete returns the group, takes its lock after the row lock (the order every
    /// writer uses) and hands the key to the promotion through a transaction-local setting. When nothing was deleted,
    /// <c>Replayed</c> says whether this very receipt was acked within the window (a retry after a lost reply).
    /// </summary>
    private static async Task<(bool Deleted, bool Promoted, long Revision, bool Replayed)> AckCoreAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string s, QueueLease lease,
        DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var batch = new NpgsqlBatch(conn, tx);
        // Receipts of grouped tasks end in 'g' (LeaseCoreAsync): an ungrouped ack is the DELETE alone.
        var grouped = lease.Receipt.EndsWith('g');
        if (grouped) batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT set_config('concord.queue_group', '', true)"));
        // The tombstone is written by the statement that deletes the task, so both or neither happen.
        var remember = $"""
            a AS (INSERT INTO {s}.queue_acked (ns, queue, id, receipt, revision, expires_at)
                  SELECT $1, $2, $3, $4, (SELECT revision FROM {s}.meta WHERE id = 1), $6 FROM d
                  ON CONFLICT (ns, queue, id) DO UPDATE SET receipt = excluded.receipt, revision = excluded.revision, expires_at = excluded.expires_at)
            """;
        var delete = new NpgsqlBatchCommand(grouped
            ? $"""
              WITH d AS (DELETE FROM {s}.queue_tasks WHERE ns = $1 AND queue = $2 AND id = $3 AND receipt = $4 RETURNING group_key),
              {remember}
              SELECT d.group_key FROM d,
                  LATERAL (SELECT pg_advisory_xact_lock(hashtextextended($5 || d.group_key, 0))) l,
                  LATERAL (SELECT set_config('concord.queue_group', coalesce(d.group_key, ''), true)) c
              """
            : $"""
              WITH d AS (DELETE FROM {s}.queue_tasks WHERE ns = $1 AND queue = $2 AND id = $3 AND receipt = $4 AND group_key IS NULL RETURNING 1),
              {remember}
              SELECT 1 FROM d
              """);
        Add(delete, lease.Namespace);
        Add(delete, lease.Queue);
        Add(delete, lease.TaskId);
        Add(delete, lease.Receipt);
        Add(delete, grouped ? GroupLockPrefix(s, lease.Namespace, lease.Queue) : "");
        Add(delete, (now + AckReplayWindow).UtcTicks);
        batch.BatchCommands.Add(delete);
        if (grouped) batch.BatchCommands.Add(Promote(s, lease.Namespace, lease.Queue, null));
        // The ack's revision: the one its tombstone recorded (this ack's, or, for a retry, the first ack's).
        var revision = new NpgsqlBatchCommand($"""
            SELECT (SELECT revision FROM {s}.meta WHERE id = 1),
                   (SELECT revision FROM {s}.queue_acked WHERE ns = $1 AND queue = $2 AND id = $3 AND receipt = $4 AND expires_at > $5)
            """);
        Add(revision, lease.Namespace);
        Add(revision, lease.Queue);
        Add(revision, lease.TaskId);
        Add(revision, lease.Receipt);
        Add(revision, now.UtcTicks);
        batch.BatchCommands.Add(revision);
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (grouped) await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        var deleted = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var promoted = false;
        if (grouped)
        {
            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
            promoted = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var acked = reader.IsDBNull(1) ? (long?)null : reader.GetInt64(1);
        return (deleted, promoted, acked ?? reader.GetInt64(0), !deleted && acked is not null);
    }

    /// <inheritdoc />
    /// <remarks>
    /// The single operation returned puts a marker under <see cref="MarkerPrefix"/>; the store deletes the task row in the
    /// same PostgreSQL transaction as the rest of the caller's transaction, or fails the whole transaction on that
    /// operation (<see cref="ConflictKind.NotFound"/>) when the receipt is no longer current.
    /// </remarks>
    public async ValueTask<PreparedQueueOps> PrepareAckAsync(QueueLease lease, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        SysKeys.ValidateName(lease.Queue, "Queue");
        if (!await IsCurrentAsync(lease, cancellationToken).ConfigureAwait(false)) return new PreparedQueueOps([], true, StaleMessage(lease));
        var marker = new AckSpec { Ns = lease.Namespace, Queue = lease.Queue, Id = lease.TaskId, Receipt = lease.Receipt, Group = lease.Group };
        return new PreparedQueueOps([TxnOp.Put($"{MarkerPrefix}{lease.Queue}/a/{lease.TaskId}", JsonSerializer.SerializeToElement(marker, JsonDefaults.Web), Expect.Absent)], false, null);
    }

    private async Task<bool> IsCurrentAsync(QueueLease lease, CancellationToken cancellationToken) =>
        await Translate(async () =>
        {
            await using var cmd = _ds.CreateCommand($"SELECT 1 FROM {_s}.queue_tasks WHERE ns = $1 AND queue = $2 AND id = $3 AND receipt = $4");
            Add(cmd, lease.Namespace);
            Add(cmd, lease.Queue);
            Add(cmd, lease.TaskId);
            Add(cmd, lease.Receipt);
            return await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not null;
        }).ConfigureAwait(false);

    private static string StaleMessage(QueueLease lease) =>
        $"receipt {lease.Receipt} of '{lease.Consumer}' for task '{lease.TaskId}' is stale: its lease ended (acked, visibility timeout expired and the task was reclaimed, or it was nacked)";

    /// <summary>
    /// The store's hook for marker operations (<see cref="PrepareEnqueueAsync"/>, <see cref="PrepareAckAsync"/>) in a
    /// commit: applies them to the queue tables inside the commit's transaction and deletes the marker rows. Null when the
    /// commit may proceed; a refusal rolls it back.
    /// </summary>
    internal static async Task<CommitRefusal?> ApplyPreparedAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string s, CommitEntry commit, CancellationToken cancellationToken)
    {
        List<ChangeEvent>? markers = null;
        foreach (var change in commit.Changes)
            if (change.Key.StartsWith(MarkerPrefix, StringComparison.Ordinal) && change.Kind == ChangeKind.Put) (markers ??= []).Add(change);
        if (markers is null) return null;
        foreach (var change in markers)
        {
            var key = change.Key;
            var kind = key.Length > 2 ? key[key.LastIndexOf('/', key.LastIndexOf('/') - 1)..(key.LastIndexOf('/') + 1)] : "";
            if (kind == "/e/")
            {
                var spec = Deserialize<TaskSpec>(change);
                if (spec.Ns != commit.Namespace) return new CommitRefusal(key, ConflictKind.NotFound, $"task prepared for namespace '{spec.Ns}' cannot be enqueued in a transaction of '{commit.Namespace}'");
                var (enqueued, first, _, _) = await EnqueueCoreAsync(conn, tx, s, spec, cancellationToken).ConfigureAwait(false);
                if (!enqueued && spec.DedupId is null)
                    return new CommitRefusal(key, ConflictKind.AlreadyExists, $"task '{spec.Id}' of queue '{spec.Queue}' is already enqueued (the prepared enqueue was committed twice)");
                if (!enqueued)
                    return new CommitRefusal(key, ConflictKind.AlreadyExists, $"dedup id '{spec.DedupId}' of queue '{spec.Queue}' was already used by task '{first}' within the dedup window");
            }
            else if (kind == "/a/")
            {
                var spec = Deserialize<AckSpec>(change);
                if (spec.Ns != commit.Namespace) return new CommitRefusal(key, ConflictKind.NotFound, $"ack prepared for namespace '{spec.Ns}' cannot commit in a transaction of '{commit.Namespace}'");
                var lease = new QueueLease { Namespace = commit.Namespace, Queue = spec.Queue, TaskId = spec.Id, Receipt = spec.Receipt, Group = spec.Group, Consumer = "", Payload = default };
                var (deleted, promoted, _, _) = await AckCoreAsync(conn, tx, s, lease, commit.Time, cancellationToken).ConfigureAwait(false);
                if (promoted) await NotifyInAsync(conn, tx, s, lease.Namespace, lease.Queue, cancellationToken).ConfigureAwait(false);
                if (!deleted) return new CommitRefusal(key, ConflictKind.NotFound, $"receipt {spec.Receipt} for task '{spec.Id}' of queue '{spec.Queue}' is stale: the lease ended; prepare the ack again");
            }
            else throw new InvalidRequestException($"'{key}' is not a queue operation; keys under {MarkerPrefix} are reserved for the PostgreSQL queue");
            // The marker did its job: it stays in the change log but not in the key space.
            await using var drop = new NpgsqlCommand($"DELETE FROM {s}.kv WHERE ns = $1 AND key = $2", conn, tx);
            Add(drop, commit.Namespace);
            Add(drop, key);
            await drop.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        return null;
    }

    private static T Deserialize<T>(ChangeEvent change)
    {
        try
        {
            return change.Record.Value.Deserialize<T>(JsonDefaults.Web) ?? throw new JsonException("null");
        }
        catch (JsonException e)
        {
            throw new InvalidRequestException($"'{change.Key}' is not a prepared queue operation ({e.Message}); keys under {MarkerPrefix} are reserved for the PostgreSQL queue");
        }
    }

    // ---------------------------------------------------------------- nack, extend, reclaim

    /// <inheritdoc />
    public async ValueTask<NackResult> NackAsync(QueueLease lease, string? reason = null, TimeSpan delay = default, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        SysKeys.ValidateName(lease.Queue, "Queue");
        QueueRules.ValidateNackDelay(delay);
        var why = reason ?? $"nacked by '{lease.Consumer}'";
        var now = Now();
        var outcome = await Translate(async () =>
        {
            await using var conn = await _ds.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var tx = await conn.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            var row = await LockLeasedAsync(conn, tx, lease.Namespace, lease.Queue, lease.TaskId, lease.Receipt, null, cancellationToken).ConfigureAwait(false);
            if (row is null) return ((NackStatus?)null, 0L);
            var dead = await RetryOrDeadAsync(conn, tx, lease.Namespace, lease.Queue, row.Value, why, now, delay, cancellationToken).ConfigureAwait(false);
            var revision = await RevisionAsync(conn, tx, cancellationToken).ConfigureAwait(false);
            await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
            return ((NackStatus?)(dead ? NackStatus.DeadLettered : NackStatus.Requeued), revision);
        }).ConfigureAwait(false);
        if (outcome.Item1 is not { } status) return new NackResult(NackStatus.StaleReceipt, 0, StaleMessage(lease));
        if (status == NackStatus.DeadLettered) QueueTelemetry.DeadLettered(lease.Queue);
        await NotifyAsync(lease.Namespace, lease.Queue, cancellationToken).ConfigureAwait(false);
        return new NackResult(status, outcome.Item2, null);
    }

    private readonly record struct LeasedRow(string Id, int Attempts, int MaxAttempts, string? Consumer, long Deadline, string? Group);

    private async Task<LeasedRow?> LockLeasedAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string ns, string queue, string id, string? receipt, long? expiredAt, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand($"""
            SELECT id, attempts, max_attempts, consumer, deadline, group_key FROM {_s}.queue_tasks
            WHERE ns = $1 AND queue = $2 AND id = $3 AND receipt IS NOT NULL AND ($4::text IS NULL OR receipt = $4::text) AND ($5::bigint IS NULL OR deadline <= $5::bigint)
            FOR UPDATE
            """, conn, tx);
        Add(cmd, ns);
        Add(cmd, queue);
        Add(cmd, id);
        AddText(cmd, receipt);
        cmd.Parameters.Add(new NpgsqlParameter<long?> { TypedValue = expiredAt, NpgsqlDbType = NpgsqlDbType.Bigint });
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) return null;
        return new LeasedRow(reader.GetString(0), reader.GetInt32(1), reader.GetInt32(2), reader.IsDBNull(3) ? null : reader.GetString(3), reader.GetInt64(4), reader.IsDBNull(5) ? null : reader.GetString(5));
    }

    /// <summary>Ends a lease without success: back to the queue after <paramref name="delay"/>, or to the dead letters after the last attempt (the group moves on).</summary>
    private async Task<bool> RetryOrDeadAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string ns, string queue, LeasedRow row, string reason, DateTimeOffset now, TimeSpan delay, CancellationToken cancellationToken)
    {
        if (row.Attempts >= row.MaxAttempts)
        {
            // The row is locked (LockLeasedAsync); the group lock comes second, as in every writer.
            if (row.Group is not null) await ExecAsync(conn, tx, GroupLockQuery, cancellationToken, GroupLockKey(_s, ns, queue, row.Group)).ConfigureAwait(false);
            await ExecAsync(conn, tx, $"""
                WITH d AS (DELETE FROM {_s}.queue_tasks WHERE ns = $1 AND queue = $2 AND id = $3 RETURNING *)
                INSERT INTO {_s}.queue_dead (ns, queue, id, priority, group_key, attempts, max_attempts, consumer, last_error, enqueued_at, visible_at, dedup_id, trace_parent, dead_at, payload)
                SELECT ns, queue, id, priority, group_key, attempts, max_attempts, consumer, $4, enqueued_at, visible_at, dedup_id, trace_parent, $5, payload FROM d
                """, cancellationToken, ns, queue, row.Id, reason, now.UtcTicks).ConfigureAwait(false);
            if (row.Group is not null)
            {
                await using var promote = new NpgsqlBatch(conn, tx);
                promote.BatchCommands.Add(Promote(_s, ns, queue, row.Group));
                await promote.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            return true;
        }
        await ExecAsync(conn, tx, $"""
            UPDATE {_s}.queue_tasks SET receipt = NULL, deadline = NULL, last_error = $4, visible_at = $5, seq = nextval('{_s}.queue_seq')
            WHERE ns = $1 AND queue = $2 AND id = $3
            """, cancellationToken, ns, queue, row.Id, reason, (now + delay).UtcTicks).ConfigureAwait(false);
        return false;
    }

    /// <inheritdoc />
    public async ValueTask<ExtendResult> ExtendAsync(QueueLease lease, TimeSpan visibilityTimeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        SysKeys.ValidateName(lease.Queue, "Queue");
        QueueRules.ValidateVisibility(visibilityTimeout);
        var deadline = Now() + visibilityTimeout;
        var revision = await Translate(async () =>
        {
            await using var cmd = _ds.CreateCommand($"UPDATE {_s}.queue_tasks SET deadline = $5 WHERE ns = $1 AND queue = $2 AND id = $3 AND receipt = $4 RETURNING (SELECT revision FROM {_s}.meta WHERE id = 1)");
            Add(cmd, lease.Namespace);
            Add(cmd, lease.Queue);
            Add(cmd, lease.TaskId);
            Add(cmd, lease.Receipt);
            Add(cmd, deadline.UtcTicks);
            return await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as long?;
        }).ConfigureAwait(false);
        return revision is { } r ? new ExtendResult(lease with { Deadline = deadline, Revision = r }, null) : new ExtendResult(null, StaleMessage(lease));
    }

    /// <inheritdoc />
    public async ValueTask<int> ReclaimExpiredAsync(string ns, string queue, CancellationToken cancellationToken = default)
    {
        QueueRules.ValidateQueue(ns, queue);
        return await ReclaimCoreAsync(ns, queue, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Returns expired leases to the queue (or the dead letters), each in its own short transaction that takes the group
    /// lock before the row lock (the order every writer uses). Also forgets the queue's expired dedup ids and ack tombstones.
    /// </summary>
    private async Task<int> ReclaimCoreAsync(string ns, string queue, CancellationToken cancellationToken) =>
        await Translate(async () =>
        {
            var now = Now();
            var expired = new List<LeasedRow>();
            await using (var find = _ds.CreateCommand($"""
                SELECT id, attempts, max_attempts, consumer, deadline, group_key FROM {_s}.queue_tasks
                WHERE ns = $1 AND queue = $2 AND NOT waiting AND receipt IS NOT NULL AND deadline <= $3 ORDER BY deadline LIMIT 1000
                """))
            {
                Add(find, ns);
                Add(find, queue);
                Add(find, now.UtcTicks);
                await using var reader = await find.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    expired.Add(new LeasedRow(reader.GetString(0), reader.GetInt32(1), reader.GetInt32(2), reader.IsDBNull(3) ? null : reader.GetString(3), reader.GetInt64(4), reader.IsDBNull(5) ? null : reader.GetString(5)));
            }
            var reclaimed = 0;
            await using var conn = await _ds.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            foreach (var candidate in expired)
            {
                await using var tx = await conn.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                // Re-read under the lock: acked, nacked or extended meanwhile means there is nothing to reclaim.
                var row = await LockLeasedAsync(conn, tx, ns, queue, candidate.Id, null, now.UtcTicks, cancellationToken).ConfigureAwait(false);
                if (row is not { } r)
                {
                    await tx.RollbackAsync(cancellationToken).ConfigureAwait(false);
                    continue;
                }
                var reason = $"lease of attempt {r.Attempts} by '{r.Consumer}' expired at {At(r.Deadline):O} without an ack";
                var dead = await RetryOrDeadAsync(conn, tx, ns, queue, r, reason, now, TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
                await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
                QueueTelemetry.LeaseLost(queue, dead);
                reclaimed++;
            }
            await using (var sweep = new NpgsqlBatch(conn))
            {
                foreach (var table in new[] { "queue_dedup", "queue_acked" })
                {
                    var delete = new NpgsqlBatchCommand($"DELETE FROM {_s}.{table} WHERE ns = $1 AND queue = $2 AND expires_at <= $3");
                    Add(delete, ns);
                    Add(delete, queue);
                    Add(delete, now.UtcTicks);
                    sweep.BatchCommands.Add(delete);
                }
                await sweep.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            if (reclaimed > 0) await NotifyAsync(ns, queue, cancellationToken).ConfigureAwait(false);
            return reclaimed;
        }).ConfigureAwait(false);

    // ---------------------------------------------------------------- inspection and dead letters

    private const string TaskColumns = "id, payload::text, attempts, max_attempts, priority, group_key, dedup_id, enqueued_at, visible_at, consumer, last_error";

    /// <inheritdoc />
    public async ValueTask<QueueTask?> GetTaskAsync(string ns, string queue, string taskId, CancellationToken cancellationToken = default)
    {
        QueueRules.ValidateQueue(ns, queue);
        ArgumentException.ThrowIfNullOrWhiteSpace(taskId);
        return await Translate(async () =>
        {
            await using var cmd = _ds.CreateCommand($"""
                SELECT {TaskColumns}, CASE WHEN waiting THEN 1 WHEN receipt IS NOT NULL THEN 2 ELSE 0 END, deadline, NULL::bigint FROM {_s}.queue_tasks WHERE ns = $1 AND queue = $2 AND id = $3
                UNION ALL
                SELECT {TaskColumns}, 3, NULL::bigint, dead_at FROM {_s}.queue_dead WHERE ns = $1 AND queue = $2 AND id = $3
                """);
            Add(cmd, ns);
            Add(cmd, queue);
            Add(cmd, taskId);
            await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? ReadTask(reader, queue) : null;
        }).ConfigureAwait(false);
    }

    private static QueueTask ReadTask(NpgsqlDataReader r, string queue)
    {
        var state = (QueueTaskState)r.GetInt32(11);
        return new QueueTask
        {
            Queue = queue,
            Id = r.GetString(0),
            Payload = ParseJson(r.GetString(1)),
            Attempts = r.GetInt32(2),
            MaxAttempts = r.GetInt32(3),
            Priority = r.GetInt32(4),
            Group = r.IsDBNull(5) ? null : r.GetString(5),
            DedupId = r.IsDBNull(6) ? null : r.GetString(6),
            EnqueuedAt = At(r.GetInt64(7)),
            VisibleAt = At(r.GetInt64(8)),
            Consumer = r.IsDBNull(9) ? null : r.GetString(9),
            LastError = r.IsDBNull(10) ? null : r.GetString(10),
            State = state,
            LeaseDeadline = state == QueueTaskState.Leased && !r.IsDBNull(12) ? At(r.GetInt64(12)) : null,
            DeadAt = r.IsDBNull(13) ? null : At(r.GetInt64(13)),
        };
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<QueueTask>> ListDeadLettersAsync(string ns, string queue, int limit = 100, CancellationToken cancellationToken = default)
    {
        QueueRules.ValidateQueue(ns, queue);
        QueueRules.ValidateDeadLetterLimit(limit);
        return await Translate(async () =>
        {
            await using var cmd = _ds.CreateCommand($"SELECT {TaskColumns}, 3, NULL::bigint, dead_at FROM {_s}.queue_dead WHERE ns = $1 AND queue = $2 ORDER BY dead_at, id LIMIT $3");
            Add(cmd, ns);
            Add(cmd, queue);
            Add(cmd, limit);
            var tasks = new List<QueueTask>();
            await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) tasks.Add(ReadTask(reader, queue));
            return (IReadOnlyList<QueueTask>)tasks;
        }).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<bool> RequeueDeadLetterAsync(string ns, string queue, string taskId, CancellationToken cancellationToken = default)
    {
        QueueRules.ValidateQueue(ns, queue);
        ArgumentException.ThrowIfNullOrWhiteSpace(taskId);
        var now = Now();
        var requeued = await Translate(async () =>
        {
            await using var conn = await _ds.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var tx = await conn.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            string? group;
            await using (var find = new NpgsqlCommand($"SELECT group_key FROM {_s}.queue_dead WHERE ns = $1 AND queue = $2 AND id = $3", conn, tx))
            {
                Add(find, ns);
                Add(find, queue);
                Add(find, taskId);
                await using var reader = await find.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) return false;
                group = reader.IsDBNull(0) ? null : reader.GetString(0);
            }
            if (group is not null) await ExecAsync(conn, tx, GroupLockQuery, cancellationToken, GroupLockKey(_s, ns, queue, group)).ConfigureAwait(false);
            // At the end of its group: waiting when the group still has unfinished tasks.
            var moved = await ExecAsync(conn, tx, $"""
                WITH d AS (DELETE FROM {_s}.queue_dead WHERE ns = $1 AND queue = $2 AND id = $3 RETURNING *)
                INSERT INTO {_s}.queue_tasks (ns, queue, id, priority, visible_at, seq, waiting, group_key, attempts, max_attempts, consumer, last_error, enqueued_at, dedup_id, trace_parent, payload)
                SELECT ns, queue, id, priority, $4, nextval('{_s}.queue_seq'),
                    group_key IS NOT NULL AND EXISTS (SELECT 1 FROM {_s}.queue_tasks t WHERE t.ns = $1 AND t.queue = $2 AND t.group_key = d.group_key),
                    group_key, 0, max_attempts, consumer, last_error, enqueued_at, dedup_id, trace_parent, payload FROM d
                """, cancellationToken, ns, queue, taskId, now.UtcTicks).ConfigureAwait(false);
            await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
            return moved > 0;
        }).ConfigureAwait(false);
        if (requeued) await NotifyAsync(ns, queue, cancellationToken).ConfigureAwait(false);
        return requeued;
    }

    /// <inheritdoc />
    public async ValueTask<bool> DeleteDeadLetterAsync(string ns, string queue, string taskId, CancellationToken cancellationToken = default)
    {
        QueueRules.ValidateQueue(ns, queue);
        ArgumentException.ThrowIfNullOrWhiteSpace(taskId);
        var deleted = await Translate(async () =>
        {
            await using var conn = await _ds.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            return await ExecAsync(conn, null, $"DELETE FROM {_s}.queue_dead WHERE ns = $1 AND queue = $2 AND id = $3", cancellationToken, ns, queue, taskId).ConfigureAwait(false);
        }).ConfigureAwait(false);
        if (deleted > 0) QueueTelemetry.Acked(queue);
        return deleted > 0;
    }

    /// <inheritdoc />
    public async ValueTask<QueueStats> GetStatsAsync(string ns, string queue, CancellationToken cancellationToken = default)
    {
        QueueRules.ValidateQueue(ns, queue);
        var now = Now();
        return await Translate(async () =>
        {
            await using var cmd = _ds.CreateCommand($"""
                SELECT count(*) FILTER (WHERE NOT waiting AND receipt IS NULL AND visible_at <= $3)::int,
                       count(*) FILTER (WHERE NOT waiting AND receipt IS NULL AND visible_at > $3)::int,
                       count(*) FILTER (WHERE waiting)::int,
                       count(*) FILTER (WHERE receipt IS NOT NULL)::int,
                       (SELECT count(*) FROM {_s}.queue_dead WHERE ns = $1 AND queue = $2)::int
                FROM {_s}.queue_tasks WHERE ns = $1 AND queue = $2
                """);
            Add(cmd, ns);
            Add(cmd, queue);
            Add(cmd, now.UtcTicks);
            await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            return new QueueStats(reader.GetInt32(0), reader.GetInt32(1), reader.GetInt32(2), reader.GetInt32(3), reader.GetInt32(4));
        }).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Two loose index scans (one over <c>queue_tasks</c>, one over <c>queue_dead</c>, each hopping from one queue name to
    /// the next through the primary key), merged: O(limit) index probes however many tasks the queues hold.
    /// </remarks>
    public async ValueTask<QueueListPage> ListQueuesAsync(string ns, string? after = null, int limit = 100, CancellationToken cancellationToken = default)
    {
        QueueRules.ValidateListQueues(ns, after, limit);
        return await Translate(async () =>
        {
            await using var cmd = _ds.CreateCommand($"""
                WITH RECURSIVE
                t(q) AS (
                    (SELECT queue FROM {_s}.queue_tasks WHERE ns = $1 AND queue > $2 ORDER BY queue LIMIT 1)
                    UNION ALL
                    SELECT (SELECT queue FROM {_s}.queue_tasks WHERE ns = $1 AND queue > t.q ORDER BY queue LIMIT 1) FROM t WHERE t.q IS NOT NULL),
                d(q) AS (
                    (SELECT queue FROM {_s}.queue_dead WHERE ns = $1 AND queue > $2 ORDER BY queue LIMIT 1)
                    UNION ALL
                    SELECT (SELECT queue FROM {_s}.queue_dead WHERE ns = $1 AND queue > d.q ORDER BY queue LIMIT 1) FROM d WHERE d.q IS NOT NULL)
                SELECT q FROM ((SELECT q FROM t WHERE q IS NOT NULL LIMIT $3) UNION (SELECT q FROM d WHERE q IS NOT NULL LIMIT $3)) u
                ORDER BY q COLLATE "C" LIMIT $3
                """);
            Add(cmd, ns);
            Add(cmd, after ?? "");
            Add(cmd, limit + 1);
            var names = new List<string>(Math.Min(limit + 1, 128));
            await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) names.Add(reader.GetString(0));
            if (names.Count <= limit) return new QueueListPage(names, null);
            names.RemoveAt(limit);
            return new QueueListPage(names, names[^1]);
        }).ConfigureAwait(false);
    }

    // ---------------------------------------------------------------- wake-ups

    private Task Signal() => _signal.Next;

    private void Pulse() => _signal.Pulse();

    /// <summary>
    /// Records in <c>queue_waiters</c> (unlogged) that this service waits on the queue, for <see cref="WaiterTtl"/>;
    /// refreshed when less than half of it is left. True when it wrote (the caller then looks again before sleeping).
    /// </summary>
    private async Task<bool> RegisterWaiterAsync(string ns, string queue, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var key = QueueKey(ns, queue);
        if (_waiting.TryGetValue(key, out var until) && until - now.UtcTicks > WaiterTtl.Ticks / 2) return false;
        var expires = (now + WaiterTtl).UtcTicks;
        await Translate(async () =>
        {
            await using var cmd = _ds.CreateCommand($"""
                INSERT INTO {_s}.queue_waiters AS w (ns, queue, node, expires_at) SELECT $1, $2, $3, $4 FROM (SELECT set_config('synchronous_commit', 'off', true)) c
                ON CONFLICT (ns, queue, node) DO UPDATE SET expires_at = excluded.expires_at
                """);
            Add(cmd, ns);
            Add(cmd, queue);
            Add(cmd, _node);
            Add(cmd, expires);
            return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }).ConfigureAwait(false);
        _waiting[key] = expires;
        return true;
    }

    /// <summary>Starts the LISTEN connection on first use and waits until it listens, so no notification after this call is missed.</summary>
    private async Task EnsureListeningAsync(CancellationToken cancellationToken)
    {
        TaskCompletionSource listening;
        lock (_signalGate)
        {
            if (_listening is null)
            {
                _listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _listener = Task.Run(ListenAsync, CancellationToken.None);
            }
            listening = _listening;
        }
        // Bounded: if PostgreSQL is briefly unreachable the lease still works, woken by its timer and local pulses.
        await Task.WhenAny(listening.Task, Task.Delay(TimeSpan.FromSeconds(5), cancellationToken)).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
    }

    private async Task ListenAsync()
    {
        var delay = TimeSpan.FromMilliseconds(100);
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await using var conn = await _ds.OpenConnectionAsync(_stop.Token).ConfigureAwait(false);
                conn.Notification += (_, _) => Pulse();
                await using (var listen = new NpgsqlCommand($"LISTEN {_channel}", conn))
                    await listen.ExecuteNonQueryAsync(_stop.Token).ConfigureAwait(false);
                delay = TimeSpan.FromMilliseconds(100);
                _listening!.TrySetResult();
                Pulse(); // anything enqueued while we were not listening
                while (!_stop.IsCancellationRequested) await conn.WaitAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return; // the store closed its data source
            }
            catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or InvalidOperationException)
            {
                try
                {
                    await Task.Delay(delay, _time, _stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
            }
        }
    }

    /// <summary>Stops the notification listener.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested) return;
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_listener is not null)
        {
            try
            {
                await _listener.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
        _stop.Dispose();
    }

    // ---------------------------------------------------------------- SQL helpers

    private const string GroupLockQuery = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";

    private static string GroupLockPrefix(string s, string ns, string queue) => $"concord-queue:{s}\n{ns}\n{queue}\n";

    private static string GroupLockKey(string s, string ns, string queue, string group) => GroupLockPrefix(s, ns, queue) + group;

    /// <summary>Serializes enqueues into, and completions of, one group (held to the end of the transaction).</summary>
    private static NpgsqlBatchCommand GroupLock(string s, string ns, string queue, string group)
    {
        var cmd = new NpgsqlBatchCommand(GroupLockQuery);
        Add(cmd, GroupLockKey(s, ns, queue, group));
        return cmd;
    }

    /// <summary>Makes the oldest waiting task of a group its head, if the group has no head (run under the group lock).</summary>
    private static NpgsqlBatchCommand Promote(string s, string ns, string queue, string? group)
    {
        var cmd = new NpgsqlBatchCommand($"""
            WITH g AS (SELECT coalesce($3::text, nullif(current_setting('concord.queue_group', true), '')) AS key),
            n AS (
                SELECT id FROM {s}.queue_tasks
                WHERE ns = $1 AND queue = $2 AND group_key = (SELECT key FROM g) AND waiting
                  AND NOT EXISTS (SELECT 1 FROM {s}.queue_tasks WHERE ns = $1 AND queue = $2 AND group_key = (SELECT key FROM g) AND NOT waiting)
                ORDER BY seq LIMIT 1),
            u AS (UPDATE {s}.queue_tasks t SET waiting = false FROM n WHERE t.ns = $1 AND t.queue = $2 AND t.id = n.id RETURNING t.id)
            SELECT id FROM u
            """);
        Add(cmd, ns);
        Add(cmd, queue);
        AddText(cmd, group);
        return cmd;
    }

    /// <summary>
    /// Wakes waiting leases: this process's at once, other nodes' through NOTIFY, sent after the change committed as a
    /// transaction of its own with <c>synchronous_commit</c> off (no WAL flush wait, so the notification lock is held only briefly). A notification lost to a
    /// crash in between costs a waiting consumer at most <see cref="FallbackPoll"/>.
    /// </summary>
    private async Task NotifyAsync(string ns, string queue, CancellationToken cancellationToken)
    {
        Pulse();
        await Translate(async () =>
        {
            // NOTIFY assigns a transaction id, so its commit would wait for a WAL flush; nothing durable is written, so don't.
            await using var cmd = _ds.CreateCommand("SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)");
            Add(cmd, _channel);
            Add(cmd, QueueKey(ns, queue));
            await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }).ConfigureAwait(false);
    }

    private static async Task NotifyInAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string s, string ns, string queue, CancellationToken cancellationToken)
    {
        await using var batch = new NpgsqlBatch(conn, tx);
        batch.BatchCommands.Add(Notify(s, ns, queue));
        await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static NpgsqlBatchCommand Notify(string s, string ns, string queue)
    {
        var cmd = new NpgsqlBatchCommand("SELECT pg_notify($1, $2)");
        Add(cmd, Channel(s));
        Add(cmd, QueueKey(ns, queue));
        return cmd;
    }

    private async Task<long> RevisionAsync(NpgsqlConnection conn, NpgsqlTransaction tx, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand($"SELECT revision FROM {_s}.meta WHERE id = 1", conn, tx);
        return (long)(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    private static async Task<int> ExecAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string sql, CancellationToken cancellationToken, params object[] args)
    {
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        foreach (var a in args)
        {
            switch (a)
            {
                case string str: Add(cmd, str); break;
                case long l: Add(cmd, l); break;
                case int i: Add(cmd, i); break;
                default: throw new ArgumentException($"unsupported parameter {a.GetType()}", nameof(args));
            }
        }
        return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static void Add(NpgsqlCommand cmd, string value) => cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = value });

    private static void Add(NpgsqlCommand cmd, long value) => cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = value });

    private static void Add(NpgsqlCommand cmd, int value) => cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = value });

    private static void AddText(NpgsqlCommand cmd, string? value) => cmd.Parameters.Add(new NpgsqlParameter<string?> { TypedValue = value, NpgsqlDbType = NpgsqlDbType.Text });

    private static void Add(NpgsqlBatchCommand cmd, string value) => cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = value });

    private static void Add(NpgsqlBatchCommand cmd, long value) => cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = value });

    private static void Add(NpgsqlBatchCommand cmd, int value) => cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = value });

    private static void AddText(NpgsqlBatchCommand cmd, string? value) => cmd.Parameters.Add(new NpgsqlParameter<string?> { TypedValue = value, NpgsqlDbType = NpgsqlDbType.Text });

    private static JsonElement ParseJson(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.Clone();
    }

    /// <summary>Translates driver errors at the boundary, like <see cref="PostgresStore"/>.</summary>
    private static async Task<T> Translate<T>(Func<Task<T>> action)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (PostgresException e)
        {
            throw new StoreUnavailableException($"PostgreSQL refused the queue operation ({e.SqlState}: {e.MessageText})", e, e.IsTransient || e.SqlState is "40001" or "40P01");
        }
        catch (NpgsqlException e)
        {
            throw new StoreUnavailableException($"PostgreSQL is unavailable: {e.Message}", e, isTransient: true);
        }
        catch (IOException e)
        {
            throw new StoreUnavailableException($"PostgreSQL connection failed: {e.Message}", e, isTransient: true);
        }
    }

    /// <summary>A task to insert: what an enqueue computes up front, and the value of a prepared-enqueue marker.</summary>
    internal sealed class TaskSpec
    {
        public string Ns { get; set; } = "";
        public string Queue { get; set; } = "";
        public string Id { get; set; } = "";
        public string Payload { get; set; } = "null";
        public int MaxAttempts { get; set; }
        public int Priority { get; set; }
        public string? Group { get; set; }
        public string? DedupId { get; set; }
        public long DedupUntil { get; set; }
        public long EnqueuedAt { get; set; }
        public long VisibleAt { get; set; }
        public string? TraceParent { get; set; }
    }

    /// <summary>The value of a prepared-ack marker.</summary>
    internal sealed class AckSpec
    {
        public string Ns { get; set; } = "";
        public string Queue { get; set; } = "";
        public string Id { get; set; } = "";
        public string Receipt { get; set; } = "";
        public string? Group { get; set; }
    }
}
