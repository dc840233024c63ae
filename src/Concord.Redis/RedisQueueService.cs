using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Concord.Coordination;
using Concord.Coordination.Queues;
using Concord.Diagnostics;
using Concord.Engine;
using Concord.Internal;
using StackExchange.Redis;

namespace Concord.Redis;

/// <summary>Settings of <see cref="RedisQueueService"/> that only the native Redis queue has.</summary>
public sealed class RedisQueueOptions
{
    /// <summary>
    /// How long an ack is remembered (its receipt, under the task's id) so a retry after a lost reply reports
    /// <see cref="AckResult.Replayed"/> instead of a stale receipt (a retry of an ack with effects is answered by the
    /// store's idempotency record; the marker also answers a retry without them). One small key per ack lives this long.
    /// <value>Default: 2 minutes.</value>
    /// </summary>
    public TimeSpan AckReplayWindow { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Entries kept (approximately) in each queue's journal stream (<c>…|log</c>: enqueue, lease, ack, retry, dead, …
    /// in commit order), for timelines and tests. Zero turns the journal off. <value>Default: 0.</value>
    /// </summary>
    public int JournalLength { get; set; }

    /// <summary>A waiting lease looks again at least this often even without a notification (pub/sub is not guaranteed). <value>Default: 1 s.</value></summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    internal void Validate()
    {
        if (AckReplayWindow < TimeSpan.FromMilliseconds(1)) throw new ArgumentException("AckReplayWindow must be at least 1 ms", nameof(AckReplayWindow));
        if (JournalLength < 0) throw new ArgumentException("JournalLength must not be negative", nameof(JournalLength));
        if (PollInterval <= TimeSpan.Zero) throw new ArgumentException("PollInterval must be positive", nameof(PollInterval));
    }
}

/// <summary>
/// <see cref="IQueueService"/> natively on Redis data structures, with Redis Streams as the delivery mechanism: one
/// stream per (queue, priority level) read through a consumer group, so a lease is an <c>XREADGROUP</c> and the group's
/// pending entries list holds the tasks in flight; an ack is <c>XACK</c> + <c>XDEL</c>. A hash per task holds its
/// payload, attempts, receipt and state; delayed tasks wait in a sorted set until due; a group's tasks wait in a list and
/// only its head is ever in a stream; dead letters sit in their own sorted set with the reason in the task hash.
/// Every state change is one Lua script, so it is atomic.
/// </summary>
/// <remarks>
/// <para>
/// <b>Visibility timeouts.</b> Each lease has its own deadline (now + the caller's visibility timeout, extendable) in a
/// sorted set; the lease and reclaim scripts move expired leases back to their stream (or to the dead letters).
/// <c>XAUTOCLAIM</c>'s idle time cannot express this: it is measured on the Redis server's clock from the last delivery,
/// one threshold per call, so it can neither honour per-lease timeouts and extensions nor the injected
/// <see cref="QueueServiceOptions.TimeProvider"/>. All semantic times come from that clock (microseconds, passed to the
/// scripts); the server clock only orders stream entry ids and expires the garbage-collection TTLs of dedup entries.
/// </para>
/// <para>
/// <b>Receipts.</b> Every lease gets a fresh receipt (<c>attempt.sequence.nonce</c>); ack, nack and extend check it inside their
/// script, so a consumer whose lease expired and was reclaimed or re-leased is refused.
/// </para>
/// <para>
/// <b>Ack with effects.</b> <see cref="AckAsync"/> with effects commits them through <see cref="RedisStore"/> (versions,
/// idempotency, revisions, watch) and acks the task in the same Lua execution (a <see cref="RedisCommitHook"/> that checks
/// the receipt before anything is written): both or neither. <see cref="PrepareAckAsync"/> and
/// <see cref="PrepareEnqueueAsync"/> return marker operations (<see cref="MarkerPrefix"/>) that a <see cref="RedisStore"/>
/// transaction turns into the ack or enqueue in its own commit script, the same way: both or neither.
/// </para>
/// <para>
/// <b>Waiting.</b> StackExchange.Redis does not run blocking commands (<c>XREADGROUP BLOCK</c>) on its multiplexer, so a
/// waiting lease subscribes to the service's pub/sub channel (every script that makes a task ready publishes the queue)
/// and re-runs the non-blocking lease script when notified, when the next delayed task or lease deadline is due, or every
/// <see cref="RedisQueueOptions.PollInterval"/> in case a notification was lost.
/// </para>
/// <para>Thread-safe. Single Redis node, like <see cref="RedisStore"/>; durability is Redis's (see docs/backends.md).</para>
/// </remarks>
public sealed class RedisQueueService : IQueueService, IAsyncDisposable
{
    private readonly RedisStore _store;
    private readonly IDatabase _db;
    private readonly QueueServiceOptions _options;
    private readonly RedisQueueOptions _redis;
    private readonly TimeProvider _time;
    private readonly string _prefix;
    private readonly RedisChannel _channel;
    private readonly ConcurrentDictionary<string, AsyncPulse> _signals = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _subscribeGate = new(1, 1);
    private readonly Action<RedisChannel, RedisValue> _onNotify;
    private volatile bool _subscribed;
    private bool _disposed;

    /// <summary>Creates the service over <paramref name="store"/> (its multiplexer, database and key prefix).</summary>
    public RedisQueueService(RedisStore store, QueueServiceOptions? options = null, RedisQueueOptions? redisOptions = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        _options = options ?? new QueueServiceOptions();
        _options.Validate();
        _redis = redisOptions ?? new RedisQueueOptions();
        _redis.Validate();
        _store = store;
        _db = store.Database;
        _time = _options.TimeProvider;
        _prefix = store.Prefix;
        _channel = RedisChannel.Literal(_prefix + ":q:work");
        _onNotify = (_, message) =>
        {
            if (_signals.TryGetValue((string)message!, out var s)) s.Pulse();
        };
    }

    // ---------------------------------------------------------------- times and keys

    private static long ToMicros(DateTimeOffset t) => (t.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10;

    private static DateTimeOffset FromMicros(long us) => new(DateTimeOffset.UnixEpoch.UtcTicks + us * 10, TimeSpan.Zero);

    private static string Str(long value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>Now, truncated to the microseconds the scripts work in, so what we return equals what we store.</summary>
    private DateTimeOffset Now() => FromMicros(ToMicros(_time.GetUtcNow()));

    private string Base(string ns, string queue)
    {
        QueueRules.ValidateQueue(ns, queue);
        return $"{_prefix}:q:{ns}/{queue}|";
    }

    private List<RedisValue> Args(string @base, DateTimeOffset now) =>
        [@base, Str(ToMicros(now)), _redis.JournalLength, (string)_channel!, _store.RevisionKey];

    /// <summary>ARGV: the queue's task counter, the store's revision key. Returns both values (0 when unset).</summary>
    private const string CountScript = "return { tonumber(redis.call('GET', ARGV[1]) or '0'), tonumber(redis.call('GET', ARGV[2]) or '0') }";

    private async Task<RedisResult[]> RunAsync(string script, List<RedisValue> args)
    {
        try
        {
            return (RedisResult[])(await _db.ScriptEvaluateAsync(script, null, [.. args]).ConfigureAwait(false))!;
        }
        catch (RedisServerException e)
        {
            throw new StoreUnavailableException($"Redis refused the queue operation: {e.Message}", e, isTransient: e.Message.StartsWith("LOADING", StringComparison.Ordinal) || e.Message.StartsWith("BUSY", StringComparison.Ordinal));
        }
        catch (RedisException e)
        {
            throw new StoreUnavailableException($"Redis is unavailable: {e.Message}", e, isTransient: true);
        }
        catch (TimeoutException e)
        {
            throw new StoreUnavailableException($"Redis timed out: {e.Message}", e, isTransient: true);
        }
    }

    private async Task<RedisResult> RunScalarAsync(string script, List<RedisValue> args)
    {
        try
        {
            return await _db.ScriptEvaluateAsync(script, null, [.. args]).ConfigureAwait(false);
        }
        catch (RedisServerException e)
        {
            throw new StoreUnavailableException($"Redis refused the queue operation: {e.Message}", e);
        }
        catch (RedisException e)
        {
            throw new StoreUnavailableException($"Redis is unavailable: {e.Message}", e, isTransient: true);
        }
        catch (TimeoutException e)
        {
            throw new StoreUnavailableException($"Redis timed out: {e.Message}", e, isTransient: true);
        }
    }

    // ---------------------------------------------------------------- enqueue

    /// <inheritdoc />
    public async ValueTask<EnqueueResult> EnqueueAsync(string ns, string queue, JsonElement payload, EnqueueOptions? options = null, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        options ??= new EnqueueOptions();
        using var activity = ConcordTelemetry.ActivitySource.StartActivity("concord.queue.enqueue", ActivityKind.Producer);
        var spec = NewTask(ns, queue, payload, options);
        if (await CountIfFullAsync(spec.Base) is { } full)
        {
            activity?.SetTag("concord.queue.full", true);
            return new EnqueueResult(EnqueueStatus.QueueFull, "", full.Revision);
        }
        var args = Args(spec.Base, FromMicros(spec.NowMicros));
        args.AddRange(spec.Values());
        var r = await RunAsync(RedisQueueScripts.Enqueue, args).ConfigureAwait(false);
        var taskId = (string)r[1]!;
        var revision = (long)r[2];
        if ((long)r[0] == 0)
        {
            QueueTelemetry.Duplicate(activity, ns, queue, taskId);
            return new EnqueueResult(EnqueueStatus.Duplicate, taskId, revision);
        }
        QueueTelemetry.Enqueued(activity, ns, queue, taskId, options.Agent, false);
        return new EnqueueResult(EnqueueStatus.Enqueued, taskId, revision);
    }

    /// <summary>
    /// The queue's unfinished tasks (dead letters included) and the store revision when they reach
    /// <see cref="QueueServiceOptions.MaxTasks"/>; null otherwise. Kept by the scripts; checked before the enqueue, so
    /// concurrent producers can overshoot by their number.
    /// </summary>
    private async Task<(long Tasks, long Revision)?> CountIfFullAsync(string @base)
    {
        if (_options.MaxTasks is not { } max) return null;
        var counts = await RunAsync(CountScript, [@base + "n", _store.RevisionKey]).ConfigureAwait(false);
        return (long)counts[0] >= max ? ((long)counts[0], (long)counts[1]) : null;
    }

    /// <summary>Validates an enqueue and computes the task (id, times, dedup window) with this service's clock and settings.</summary>
    private EnqueueSpec NewTask(string ns, string queue, JsonElement payload, EnqueueOptions options)
    {
        var @base = Base(ns, queue);
        var maxAttempts = QueueRules.ValidateEnqueue(payload, options, _options);
        var now = Now();
        return new EnqueueSpec
        {
            Ns = ns,
            Queue = queue,
            Base = @base,
            NowMicros = ToMicros(now),
            Id = Guid.CreateVersion7(now).ToString("N"),
            Payload = payload.GetRawText(),
            MaxAttempts = maxAttempts,
            Priority = options.Priority,
            Group = options.Group ?? "",
            DedupId = options.DedupId ?? "",
            DedupUntil = _options.DedupWindow is { } w ? Str(ToMicros(now + w)) : "-1",
            DedupPx = _options.DedupWindow is { } window ? Str((long)Math.Ceiling(window.TotalMilliseconds)) : "",
            VisibleAt = Str(ToMicros(now + options.Delay)),
            TraceParent = ConcordTelemetry.CurrentTraceParent() ?? "",
        };
    }

    /// <inheritdoc />
    /// <remarks>
    /// The single operation returned puts a marker under <see cref="MarkerPrefix"/> (<c>…/{queue}/e/{task id}</c>). When a
    /// <see cref="RedisStore"/> transaction commits it, the store's commit script enqueues the task in the same Lua
    /// execution (a <see cref="RedisCommitHook"/>) and removes the marker from the key space (it stays in the change feed).
    /// A dedup id already used within the window, or the same prepared enqueue committed twice, refuses the whole
    /// transaction on that operation (<see cref="ConflictKind.AlreadyExists"/>). The task's times were computed now, with
    /// this service's clock and dedup window.
    /// </remarks>
    public async ValueTask<PreparedEnqueue> PrepareEnqueueAsync(string ns, string queue, JsonElement payload, EnqueueOptions? options = null, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var spec = NewTask(ns, queue, payload, options ?? new EnqueueOptions());
        if (await CountIfFullAsync(spec.Base) is { } full) throw new QueueFullException(queue, full.Tasks, _options.MaxTasks!.Value);
        var op = TxnOp.Put($"{MarkerPrefix}{queue}/e/{spec.Id}", JsonSerializer.SerializeToElement(spec, JsonDefaults.Web), Expect.Absent);
        return new PreparedEnqueue(spec.Id, [op]);
    }

    // ---------------------------------------------------------------- lease

    /// <inheritdoc />
    public async ValueTask<LeaseResult> LeaseAsync(string ns, string queue, string consumer, TimeSpan visibilityTimeout, TimeSpan wait = default, CancellationToken cancellationToken = default)
    {
        var @base = Base(ns, queue);
        QueueRules.ValidateLease(consumer, visibilityTimeout, wait);
        var started = Now();
        var waitUntil = started + wait;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            // Take the signal before looking, so a task made ready after our look wakes us.
            var signal = wait > TimeSpan.Zero ? await SignalAsync(@base).ConfigureAwait(false) : null;
            var now = Now();
            var args = Args(@base, now);
            args.Add(consumer);
            args.Add(Str(ToMicros(now + visibilityTimeout)));
            // The counter alone could repeat after a crash that loses the AOF tail (counter and lease roll back together,
            // a consumer of the lost lease still holds its receipt): the nonce keeps receipts unique anyway.
            args.Add(Guid.NewGuid().ToString("N")[..12]);
            var r = await RunAsync(RedisQueueScripts.Lease, args).ConfigureAwait(false);
            if ((long)r[0] == 1)
            {
                var lease = ToLease(ns, queue, Fields((RedisResult[])r[1]!), (long)r[2]);
                QueueTelemetry.Leased(lease, started, Now());
                return new LeaseResult(lease, null);
            }
            DateTimeOffset? nextWake = null;
            foreach (var score in new[] { (string?)r[1], (string?)r[2] })
            {
                if (string.IsNullOrEmpty(score)) continue;
                var at = FromMicros(long.Parse(score, NumberStyles.Integer, CultureInfo.InvariantCulture));
                if (nextWake is null || at < nextWake) nextWake = at;
            }
            now = Now();
            if (now >= waitUntil) return new LeaseResult(null, nextWake);
            var wakeAt = nextWake is { } n && n < waitUntil ? n : waitUntil;
            await WaitAsync(signal!, wakeAt - now, cancellationToken).ConfigureAwait(false);
        }
    }

    private static Dictionary<string, string> Fields(RedisResult[] flat)
    {
        var fields = new Dictionary<string, string>(flat.Length / 2, StringComparer.Ordinal);
        for (var i = 0; i + 1 < flat.Length; i += 2) fields[(string)flat[i]!] = (string)flat[i + 1]!;
        return fields;
    }

    private static string? Opt(Dictionary<string, string> f, string name) => f.TryGetValue(name, out var v) && v.Length > 0 ? v : null;

    private static long Long(Dictionary<string, string> f, string name) =>
        Opt(f, name) is { } v ? long.Parse(v, NumberStyles.Integer, CultureInfo.InvariantCulture) : 0;

    private static JsonElement Payload(Dictionary<string, string> f)
    {
        using var doc = JsonDocument.Parse(f["p"]);
        return doc.RootElement.Clone();
    }

    private static QueueLease ToLease(string ns, string queue, Dictionary<string, string> f, long revision) => new()
    {
        Namespace = ns,
        Queue = queue,
        TaskId = IdOf(f),
        Payload = Payload(f),
        Receipt = f["r"],
        Consumer = f["c"],
        Attempt = (int)Long(f, "a"),
        MaxAttempts = (int)Long(f, "m"),
        Group = Opt(f, "g"),
        Priority = (int)Long(f, "pr"),
        EnqueuedAt = FromMicros(Long(f, "enq")),
        Deadline = FromMicros(Long(f, "dl")),
        LastError = Opt(f, "e"),
        Revision = revision,
        TraceParent = Opt(f, "tp"),
    };

    private static string IdOf(Dictionary<string, string> f) => f["tid"];

    private static QueueTask ToTask(string queue, Dictionary<string, string> f) => new()
    {
        Queue = queue,
        Id = IdOf(f),
        Payload = Payload(f),
        State = f["st"] switch
        {
            "leased" => QueueTaskState.Leased,
            "waiting" => QueueTaskState.Waiting,
            "dead" => QueueTaskState.Dead,
            _ => QueueTaskState.Ready,
        },
        Attempts = (int)Long(f, "a"),
        MaxAttempts = (int)Long(f, "m"),
        Priority = (int)Long(f, "pr"),
        Group = Opt(f, "g"),
        DedupId = Opt(f, "dd"),
        EnqueuedAt = FromMicros(Long(f, "enq")),
        VisibleAt = FromMicros(Long(f, "vis")),
        Consumer = Opt(f, "c"),
        LeaseDeadline = f["st"] == "leased" ? FromMicros(Long(f, "dl")) : null,
        LastError = Opt(f, "e"),
        DeadAt = Opt(f, "dead") is not null ? FromMicros(Long(f, "dead")) : null,
    };

    // ---------------------------------------------------------------- waiting

    private async ValueTask<Task> SignalAsync(string @base)
    {
        if (!_subscribed)
        {
            await _subscribeGate.WaitAsync().ConfigureAwait(false);
            try
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (!_subscribed)
                {
                    await _store.Multiplexer.GetSubscriber().SubscribeAsync(_channel, _onNotify).ConfigureAwait(false);
                    _subscribed = true;
                }
            }
            finally
            {
                _subscribeGate.Release();
            }
        }
        return _signals.GetOrAdd(@base, static _ => new AsyncPulse()).Next;
    }

    private async Task WaitAsync(Task signal, TimeSpan due, CancellationToken cancellationToken)
    {
        if (due <= TimeSpan.Zero) return;
        var poll = due < _redis.PollInterval ? due : _redis.PollInterval;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var delay = Task.Delay(poll, _time, cts.Token);
        await Task.WhenAny(delay, signal).ConfigureAwait(false);
        await cts.CancelAsync().ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
    }

    // ---------------------------------------------------------------- ack, nack, extend

    private static string StaleMessage(QueueLease lease, string why) => why == "gone"
        ? $"task '{lease.TaskId}' is no longer in queue '{lease.Queue}' (already acked, or deleted)"
        : $"receipt {lease.Receipt} of '{lease.Consumer}' for task '{lease.TaskId}' is stale: its lease ended (visibility timeout expired and the task was reclaimed, or it was nacked) and the task is now {why}";

    /// <inheritdoc />
    public async ValueTask<AckResult> AckAsync(QueueLease lease, IReadOnlyList<TxnOp>? effects = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        cancellationToken.ThrowIfCancellationRequested();
        var @base = Base(lease.Namespace, lease.Queue);
        var now = Now();
        var args = Args(@base, now);
        args.Add(lease.TaskId);
        args.Add(lease.Receipt);
        args.Add(Str((long)Math.Ceiling(_redis.AckReplayWindow.TotalMilliseconds)));
        if (effects is null || !effects.Any(o => o.Kind != TxnOpKind.Get))
        {
            // Nothing to write in the store: the ack is one queue script.
            var r = await RunAsync(RedisQueueScripts.Ack, args).ConfigureAwait(false);
            switch ((long)r[0])
            {
                case 1:
                    QueueTelemetry.Acked(lease.Queue);
                    return new AckResult(AckStatus.Acked, (long)r[1], null, -1, null);
                case 2:
                    return new AckResult(AckStatus.Acked, (long)r[1], null, -1, null) { Replayed = true };
                default:
                    return new AckResult(AckStatus.StaleReceipt, 0, null, -1, StaleMessage(lease, (string)r[1]!));
            }
        }

        // Effects: the store commits them and, in the same script, the hook checks the receipt first and acks after.
        var idempotency = $"concord:queue-ack:{lease.Queue}/{lease.TaskId}/{lease.Receipt}";
        var hook = new RedisCommitHook { Lua = RedisQueueScripts.QueueHook, Args = [_redis.JournalLength, "a", 5, @base, "", lease.TaskId, lease.Receipt, args[^1]] };
        TxnResult result;
        try
        {
            result = await _store.TransactWithHookAsync(lease.Namespace, new TxnRequest { Then = [.. effects] },
                new WriteOptions { Agent = lease.Consumer, IdempotencyKey = idempotency, LogicalOperation = idempotency }, hook, cancellationToken).ConfigureAwait(false);
        }
        catch (CommitHookRefusedException e)
        {
            // Only the ack's own entry throws (a refused marker among the effects is reported as that operation's failure).
            return new AckResult(AckStatus.StaleReceipt, 0, null, -1, StaleMessage(lease, ParseRefusal(e.Message).Reason));
        }
        if (result.IsApplied)
        {
            if (!result.Replayed) QueueTelemetry.Acked(lease.Queue);
            return new AckResult(AckStatus.Acked, result.Revision, null, -1, null) { Replayed = result.Replayed };
        }
        // An effect's expectation failed. A stale receipt wins (as in StoreQueueService): the lease is not held any more.
        if (await StaleAsync(@base, lease).ConfigureAwait(false) is { } stale)
            return new AckResult(AckStatus.StaleReceipt, 0, null, -1, StaleMessage(lease, stale));
        var index = result.FailedOpIndex;
        return new AckResult(AckStatus.EffectConflict, result.Revision, result.Conflict, index,
            $"effect operation {index} was refused ({result.Conflict!.Message}); nothing was applied and the lease is still held");
    }

    /// <summary>Why the receipt of <paramref name="lease"/> is not current, or null when it is.</summary>
    private async Task<string?> StaleAsync(string @base, QueueLease lease)
    {
        var t = await _db.HashGetAsync(@base + "t:" + lease.TaskId, ["st", "r", "c", "a"]).ConfigureAwait(false);
        if (t[0].IsNull) return "gone";
        if ((string?)t[0] == "leased" && (string?)t[1] == lease.Receipt) return null;
        return (string?)t[0] == "leased" ? $"leased by '{t[2]}' (attempt {t[3]})" : (string)t[0]!;
    }

    /// <inheritdoc />
    /// <remarks>
    /// The single operation returned puts a marker under <see cref="MarkerPrefix"/> (<c>…/{queue}/a/{task id}</c>). When a
    /// <see cref="RedisStore"/> transaction commits it, the store's commit script checks the receipt before writing
    /// anything and acks the task after the transaction's writes, in the same Lua execution; a receipt no longer current
    /// refuses the whole transaction on that operation (<see cref="ConflictKind.NotFound"/>): prepare again.
    /// </remarks>
    public async ValueTask<PreparedQueueOps> PrepareAckAsync(QueueLease lease, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        cancellationToken.ThrowIfCancellationRequested();
        var @base = Base(lease.Namespace, lease.Queue);
        if (await StaleAsync(@base, lease).ConfigureAwait(false) is { } stale) return new PreparedQueueOps([], true, StaleMessage(lease, stale));
        var spec = new AckSpec { Ns = lease.Namespace, Queue = lease.Queue, Id = lease.TaskId, Receipt = lease.Receipt, ReplayPx = Str((long)Math.Ceiling(_redis.AckReplayWindow.TotalMilliseconds)) };
        return new PreparedQueueOps([TxnOp.Put($"{MarkerPrefix}{lease.Queue}/a/{lease.TaskId}", JsonSerializer.SerializeToElement(spec, JsonDefaults.Web), Expect.Absent)], false, null);
    }

    // ---------------------------------------------------------------- prepared operations in store commits

    /// <summary>Key prefix of the marker operations that <see cref="PrepareEnqueueAsync"/> and <see cref="PrepareAckAsync"/> return.</summary>
    public const string MarkerPrefix = "_sys/redisqueue/";

    /// <summary>True when <paramref name="request"/> puts a marker: the store then commits it alone, with the queue hook.</summary>
    internal static bool HasMarkers(TxnRequest request)
    {
        foreach (var op in request.Then) if (op.Kind == TxnOpKind.Put && op.Key.StartsWith(MarkerPrefix, StringComparison.Ordinal)) return true;
        foreach (var op in request.Else) if (op.Kind == TxnOpKind.Put && op.Key.StartsWith(MarkerPrefix, StringComparison.Ordinal)) return true;
        return false;
    }

    /// <summary>The hook a request with markers (and no hook of its own) is submitted with; completed at commit time.</summary>
    internal static readonly RedisCommitHook MarkersOnly = new() { Lua = RedisQueueScripts.QueueHook, Args = [0] };

    /// <summary>
    /// The hook to run with <paramref name="commit"/>: the entries of <paramref name="attached"/> (an ack with effects) plus
    /// one per marker the commit puts, behind the header the queue Lua expects. Null when there is nothing to run (a
    /// hook that is not a queue hook is returned as is). Throws <see cref="CommitHookRefusedException"/> for a marker
    /// that does not belong to the commit's namespace or is not a prepared operation.
    /// </summary>
    internal static RedisCommitHook? CompleteHook(RedisCommitHook? attached, CommitEntry commit, string prefix, string revisionKey, string kvKey, string indexKey)
    {
        if (attached is null || !ReferenceEquals(attached.Lua, RedisQueueScripts.QueueHook)) return attached;
        var entries = attached.Args.Skip(1).ToList();
        foreach (var change in commit.Changes)
        {
            var key = change.Key;
            if (change.Kind != ChangeKind.Put || !key.StartsWith(MarkerPrefix, StringComparison.Ordinal)) continue;
            var (queue, kind) = ParseMarker(key);
            if (kind == "e")
            {
                var spec = Deserialize<EnqueueSpec>(change);
                if (spec.Ns != commit.Namespace || spec.Queue != queue)
                    throw new CommitHookRefusedException($"foreign\n{key}\ntask prepared for queue '{spec.Queue}' of namespace '{spec.Ns}' cannot be enqueued by a transaction of '{commit.Namespace}' under this key");
                entries.AddRange(["e", 12, $"{prefix}:q:{commit.Namespace}/{queue}|", key, .. spec.Values()]);
            }
            else
            {
                var spec = Deserialize<AckSpec>(change);
                if (spec.Ns != commit.Namespace || spec.Queue != queue)
                    throw new CommitHookRefusedException($"foreign\n{key}\nack prepared for queue '{spec.Queue}' of namespace '{spec.Ns}' cannot commit in a transaction of '{commit.Namespace}'");
                entries.AddRange(["a", 5, $"{prefix}:q:{commit.Namespace}/{queue}|", key, spec.Id, spec.Receipt, spec.ReplayPx]);
            }
        }
        if (entries.Count == 0) return null;
        List<RedisValue> args = ["", Str(ToMicros(commit.Time)), attached.Args[0], prefix + ":q:work", revisionKey, kvKey, indexKey];
        args.AddRange(entries);
        return new RedisCommitHook { Lua = RedisQueueScripts.QueueHook, Args = args };
    }

    /// <summary>
    /// The not-applied result for a refusal of a marker in <paramref name="request"/>, blaming that operation; null when the
    /// refusal is not about a marker (the ack's own entry, which <see cref="AckAsync"/> reports as a stale receipt).
    /// </summary>
    internal static TxnResult? RefusedResult(CommitHookRefusedException refused, TxnRequest request)
    {
        var (code, key, reason) = ParseRefusal(refused.Message);
        if (key.Length == 0) return null;
        var (queue, kind) = ParseMarker(key);
        var succeeded = request.Then.Any(o => o.Key == key);
        var ops = succeeded ? request.Then : request.Else;
        var index = -1;
        for (var i = 0; i < ops.Count; i++)
        {
            if (ops[i].Key != key) continue;
            index = i;
            break;
        }
        var id = key[(key.LastIndexOf('/') + 1)..];
        var dedupId = kind == "e" && index >= 0 && ops[index].Value is { ValueKind: JsonValueKind.Object } v && v.TryGetProperty("dedupId", out var d) ? d.GetString() : null;
        var (conflict, message) = code switch
        {
            "stale" => (ConflictKind.NotFound, $"receipt for task '{id}' of queue '{queue}' is stale: the lease ended (the task is now {reason}); prepare the ack again"),
            "dup" => (ConflictKind.AlreadyExists, $"dedup id '{dedupId}' of queue '{queue}' was already used by task '{reason}' within the dedup window"),
            "exists" => (ConflictKind.AlreadyExists, $"task '{id}' of queue '{queue}' is already enqueued (the prepared enqueue was committed twice)"),
            _ => (ConflictKind.NotFound, reason),
        };
        return new TxnResult(succeeded, [], refused.Revision, new WriteResult(key, conflict, null, refused.Revision, message: message), failedOpIndex: index);
    }

    private static (string Code, string Key, string Reason) ParseRefusal(string text)
    {
        var parts = text.Split('\n', 3);
        return parts.Length == 3 ? (parts[0], parts[1], parts[2]) : ("", "", text);
    }

    /// <summary>Queue and kind ("e" or "a") of a marker key <c>{MarkerPrefix}{queue}/{kind}/{id}</c>.</summary>
    private static (string Queue, string Kind) ParseMarker(string key)
    {
        var rest = key.AsSpan(MarkerPrefix.Length);
        var parts = rest.ToString().Split('/');
        if (parts.Length != 3 || parts[1] is not ("e" or "a"))
            throw new InvalidRequestException($"'{key}' is not a queue operation; keys under {MarkerPrefix} are reserved for the native Redis queue");
        SysKeys.ValidateName(parts[0], "Queue");
        return (parts[0], parts[1]);
    }

    private static T Deserialize<T>(ChangeEvent change)
    {
        try
        {
            return change.Record.Value.Deserialize<T>(JsonDefaults.Web) ?? throw new JsonException("null");
        }
        catch (JsonException e)
        {
            throw new InvalidRequestException($"'{change.Key}' is not a prepared queue operation ({e.Message}); keys under {MarkerPrefix} are reserved for the native Redis queue");
        }
    }

    /// <summary>A task to enqueue: what an enqueue computes up front, and the value of a prepared-enqueue marker.</summary>
    internal sealed class EnqueueSpec
    {
        public string Ns { get; set; } = "";
        public string Queue { get; set; } = "";
        public string Id { get; set; } = "";
        public string Payload { get; set; } = "null";
        public int MaxAttempts { get; set; }
        public int Priority { get; set; }
        public string Group { get; set; } = "";
        public string DedupId { get; set; } = "";
        public string DedupUntil { get; set; } = "-1";
        public string DedupPx { get; set; } = "";
        public string VisibleAt { get; set; } = "0";
        public string TraceParent { get; set; } = "";

        [System.Text.Json.Serialization.JsonIgnore]
        public string Base { get; set; } = "";

        [System.Text.Json.Serialization.JsonIgnore]
        public long NowMicros { get; set; }

        /// <summary>The enqueue's arguments in the order of the Lua <c>enqueue</c> function.</summary>
        public RedisValue[] Values() => [Id, Payload, MaxAttempts, Priority, Group, DedupId, DedupUntil, DedupPx, VisibleAt, TraceParent];
    }

    /// <summary>The value of a prepared-ack marker.</summary>
    internal sealed class AckSpec
    {
        public string Ns { get; set; } = "";
        public string Queue { get; set; } = "";
        public string Id { get; set; } = "";
        public string Receipt { get; set; } = "";
        public string ReplayPx { get; set; } = "";
    }

    /// <inheritdoc />
    public async ValueTask<NackResult> NackAsync(QueueLease lease, string? reason = null, TimeSpan delay = default, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        cancellationToken.ThrowIfCancellationRequested();
        QueueRules.ValidateNackDelay(delay);
        var now = Now();
        var args = Args(Base(lease.Namespace, lease.Queue), now);
        args.Add(lease.TaskId);
        args.Add(lease.Receipt);
        args.Add(reason ?? $"nacked by '{lease.Consumer}'");
        args.Add(Str(ToMicros(now + delay)));
        var r = await RunAsync(RedisQueueScripts.Nack, args).ConfigureAwait(false);
        if ((long)r[0] == 0) return new NackResult(NackStatus.StaleReceipt, 0, StaleMessage(lease, (string)r[1]!));
        var dead = (long)r[1] == 1;
        if (dead) QueueTelemetry.DeadLettered(lease.Queue);
        return new NackResult(dead ? NackStatus.DeadLettered : NackStatus.Requeued, (long)r[2], null);
    }

    /// <inheritdoc />
    public async ValueTask<ExtendResult> ExtendAsync(QueueLease lease, TimeSpan visibilityTimeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        cancellationToken.ThrowIfCancellationRequested();
        QueueRules.ValidateVisibility(visibilityTimeout);
        var now = Now();
        var deadline = now + visibilityTimeout;
        var args = Args(Base(lease.Namespace, lease.Queue), now);
        args.Add(lease.TaskId);
        args.Add(lease.Receipt);
        args.Add(Str(ToMicros(deadline)));
        var r = await RunAsync(RedisQueueScripts.Extend, args).ConfigureAwait(false);
        return (long)r[0] == 0
            ? new ExtendResult(null, StaleMessage(lease, (string)r[1]!))
            : new ExtendResult(lease with { Deadline = deadline, Revision = (long)r[1] }, null);
    }

    /// <inheritdoc />
    public async ValueTask<int> ReclaimExpiredAsync(string ns, string queue, CancellationToken cancellationToken = default)
    {
        var @base = Base(ns, queue);
        const int batch = 1000;
        var total = 0;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var args = Args(@base, Now());
            args.Add(batch);
            var r = await RunAsync(RedisQueueScripts.Reclaim, args).ConfigureAwait(false);
            var n = (int)(long)r[0];
            for (var i = 0; i < n; i++) QueueTelemetry.LeaseLost(queue, i < (long)r[1]);
            total += n;
            if (n < batch) return total;
        }
    }

    // ---------------------------------------------------------------- inspection and dead letters

    /// <inheritdoc />
    public async ValueTask<QueueTask?> GetTaskAsync(string ns, string queue, string taskId, CancellationToken cancellationToken = default)
    {
        var @base = Base(ns, queue);
        ArgumentException.ThrowIfNullOrWhiteSpace(taskId);
        cancellationToken.ThrowIfCancellationRequested();
        HashEntry[] entries;
        try
        {
            entries = await _db.HashGetAllAsync(@base + "t:" + SysKeys.Segment(taskId, "Task id")).ConfigureAwait(false);
        }
        catch (RedisException e)
        {
            throw new StoreUnavailableException($"Redis is unavailable: {e.Message}", e, isTransient: true);
        }
        if (entries.Length == 0) return null;
        return ToTask(queue, entries.ToDictionary(e => (string)e.Name!, e => (string)e.Value!, StringComparer.Ordinal));
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<QueueTask>> ListDeadLettersAsync(string ns, string queue, int limit = 100, CancellationToken cancellationToken = default)
    {
        var @base = Base(ns, queue);
        QueueRules.ValidateDeadLetterLimit(limit);
        cancellationToken.ThrowIfCancellationRequested();
        var args = Args(@base, Now());
        args.Add(limit);
        var r = await RunAsync(RedisQueueScripts.ListDead, args).ConfigureAwait(false);
        return [.. r.Select(h => ToTask(queue, Fields((RedisResult[])h!)))];
    }

    /// <inheritdoc />
    public async ValueTask<bool> RequeueDeadLetterAsync(string ns, string queue, string taskId, CancellationToken cancellationToken = default)
    {
        var args = Args(Base(ns, queue), Now());
        args.Add(SysKeys.Segment(taskId, "Task id"));
        cancellationToken.ThrowIfCancellationRequested();
        return (long)await RunScalarAsync(RedisQueueScripts.Requeue, args).ConfigureAwait(false) == 1;
    }

    /// <inheritdoc />
    public async ValueTask<bool> DeleteDeadLetterAsync(string ns, string queue, string taskId, CancellationToken cancellationToken = default)
    {
        var args = Args(Base(ns, queue), Now());
        args.Add(SysKeys.Segment(taskId, "Task id"));
        cancellationToken.ThrowIfCancellationRequested();
        var deleted = (long)await RunScalarAsync(RedisQueueScripts.DeleteDead, args).ConfigureAwait(false) == 1;
        if (deleted) QueueTelemetry.Acked(queue);
        return deleted;
    }

    /// <inheritdoc />
    public async ValueTask<QueueStats> GetStatsAsync(string ns, string queue, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var r = await RunAsync(RedisQueueScripts.Stats, Args(Base(ns, queue), Now())).ConfigureAwait(false);
        return new QueueStats((int)(long)r[0], (int)(long)r[1], (int)(long)r[2], (int)(long)r[3], (int)(long)r[4]);
    }

    /// <inheritdoc />
    /// <remarks>
    /// One <c>ZRANGEBYLEX</c> over the namespace's queue index (<c>{prefix}:q:{ns}|queues</c>), which the scripts keep in
    /// step with each queue's task count: O(log queues + limit).
    /// </remarks>
    public async ValueTask<QueueListPage> ListQueuesAsync(string ns, string? after = null, int limit = 100, CancellationToken cancellationToken = default)
    {
        QueueRules.ValidateListQueues(ns, after, limit);
        cancellationToken.ThrowIfCancellationRequested();
        RedisValue[] values;
        try
        {
            values = await _db.SortedSetRangeByValueAsync($"{_prefix}:q:{ns}|queues", after is null ? default : (RedisValue)after, default,
                after is null ? Exclude.None : Exclude.Start, Order.Ascending, 0, limit + 1).ConfigureAwait(false);
        }
        catch (RedisException e)
        {
            throw new StoreUnavailableException($"Redis is unavailable: {e.Message}", e, isTransient: true);
        }
        catch (TimeoutException e)
        {
            throw new StoreUnavailableException($"Redis timed out: {e.Message}", e, isTransient: true);
        }
        var names = values.Select(v => (string)v!).ToList();
        if (names.Count <= limit) return new QueueListPage(names, null);
        names.RemoveAt(limit);
        return new QueueListPage(names, names[^1]);
    }

    /// <summary>The journal of a queue (see <see cref="RedisQueueOptions.JournalLength"/>): (event, task id, detail) in commit order.</summary>
    internal async Task<IReadOnlyList<(string Event, string TaskId, string Detail)>> ReadJournalAsync(string ns, string queue)
    {
        var entries = await _db.StreamRangeAsync(Base(ns, queue) + "log").ConfigureAwait(false);
        return [.. entries.Select(e => ((string)e["e"]!, (string)e["id"]!, (string)e["x"]!))];
    }

    /// <summary>Stops waking waiting leases (they still poll) and unsubscribes.</summary>
    public async ValueTask DisposeAsync()
    {
        await _subscribeGate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_disposed) return;
            _disposed = true;
            if (_subscribed)
            {
                try
                {
                    await _store.Multiplexer.GetSubscriber().UnsubscribeAsync(_channel, _onNotify).ConfigureAwait(false);
                }
                catch (RedisException)
                {
                }
                catch (ObjectDisposedException)
                {
                }
            }
        }
        finally
        {
            _subscribeGate.Release();
        }
    }
}
