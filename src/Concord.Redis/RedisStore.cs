using System.Buffers;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Concord.Engine;
using Concord.Internal;
using StackExchange.Redis;
using PendingCommit = Concord.Engine.PendingCommit<Concord.Redis.RedisCommitHook>;

namespace Concord.Redis;

/// <summary>Settings of <see cref="RedisStore"/>.</summary>
public sealed class RedisStoreOptions
{
    /// <summary>StackExchange.Redis configuration string, e.g. <c>127.0.0.1:6379</c>.</summary>
    public string? Configuration { get; set; }

    /// <summary>A multiplexer owned by the caller. <value>Default: null (one is created from <see cref="Configuration"/> and owned by the store).</value></summary>
    public IConnectionMultiplexer? Multiplexer { get; set; }

    /// <summary>Prefix of every Redis key the store uses; lets several deployments share a Redis. <value>Default: concord.</value></summary>
    public string Prefix { get; set; } = "concord";

    /// <summary>Redis database number. <value>Default: 0.</value></summary>
    public int Database { get; set; }

    /// <summary>Semantics shared with the embedded engine (strict mode, limits, retention, clock).</summary>
    public ConcordEngineOptions Semantics { get; set; } = new();

    /// <summary>How often watchers and stream subscribers poll when no notification arrives. <value>Default: 1 s.</value></summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Attempts when another writer committed between our read and our commit. <value>Default: 200.</value></summary>
    public int MaxAttempts { get; set; } = 200;

    /// <summary>Clock for the backoff between lost commit races (real time even when <see cref="Semantics"/> uses a fake clock). <value>Default: system.</value></summary>
    public TimeProvider BackoffTimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Jitter source for that backoff. <value>Default: seeded from the key prefix.</value></summary>
    public IRandomizer? Randomizer { get; set; }
}

/// <summary>
/// <see cref="IConcordStore"/> natively on Redis. Commits are group-committed: one loop per node reads what a batch of
/// queued requests needs (one atomic script; skipped when the loop still remembers every row, see docs/backends.md),
/// evaluates them in order with the engine's own semantics (<see cref="TxnEvaluator"/>), then runs one Lua script that
/// applies their new versions, change stream entries, history, index and idempotency records as consecutive revisions
/// atomically — only if the global revision is still the one read. Commits are therefore totally ordered
/// (linearizable); a batch that lost the race is re-read and re-evaluated. Watchers read the change stream, woken by pub/sub.
/// Stream events also go, in the same script, to a Redis Stream per namespace whose entry ids are their positions (the
/// native event log the stream service reads instead of merging streams).
/// </summary>
/// <remarks>
/// <para>Durability is Redis's: with <c>appendonly yes</c> + <c>appendfsync always</c> nothing acknowledged is lost;
/// with <c>appendfsync everysec</c> (the usual setting, and what scripts/ensure-deps.sh starts) a crash of the Redis
/// process or machine can lose the last ~1 s of acknowledged writes; without AOF, everything since the last RDB snapshot.</para>
/// <para>Single Redis node (or primary): the script touches keys it computes, so Redis Cluster is not supported.</para>
/// </remarks>
public sealed partial class RedisStore : IConcordStore
{
    private readonly IConnectionMultiplexer _mux;
    private readonly bool _ownsMux;
    private readonly IDatabase _db;
    private readonly RedisStoreOptions _options;
    private readonly ConcordEngineOptions _semantics;
    private readonly TimeProvider _time;
    private readonly string _p;
    private readonly RedisChannel _channel;
    private readonly CancellationTokenSource _stop = new();
    private readonly GroupCommitQueue<PendingCommit> _commits = new(MaxBatch, static p => p.Attachment is not null);
    // Rows as of _cacheRevision, for batches that skip the read (speculation); touched only by the one running commit loop.
    private readonly Dictionary<(string Ns, string Key), ConcordRecord?> _cache = [];
    private long _cacheRevision = -1;
    private long _cacheTicks;
    private int _speculationPause;
    private int _cacheInvalid;
    private readonly AsyncPulse _changed = new();
    private ITimer? _sweeper;
    private readonly IRandomizer _random;
    private int _sweeping;

    private RedisStore(IConnectionMultiplexer mux, bool owns, RedisStoreOptions options)
    {
        _mux = mux;
        _ownsMux = owns;
        _options = options;
        _semantics = options.Semantics;
        _time = _semantics.TimeProvider;
        _db = mux.GetDatabase(options.Database);
        _p = options.Prefix;
        _channel = RedisChannel.Literal(_p + ":changed");
        _random = options.Randomizer ?? new SeededRandomizer(StringComparer.Ordinal.GetHashCode(_p) ^ Environment.ProcessId);
    }

    /// <summary>Connects and starts the change subscription and the sweeper.</summary>
    public static async Task<RedisStore> OpenAsync(RedisStoreOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Semantics.Validate();
        cancellationToken.ThrowIfCancellationRequested();
        var owns = options.Multiplexer is null;
        IConnectionMultiplexer mux;
        try
        {
            mux = options.Multiplexer ?? await ConnectionMultiplexer.ConnectAsync(options.Configuration ?? throw new ArgumentException("Configuration or Multiplexer is required", nameof(options))).ConfigureAwait(false);
        }
        catch (RedisConnectionException e)
        {
            throw new StoreUnavailableException($"Redis is unavailable: {e.Message}", e, isTransient: true);
        }
        try
        {
            await CheckServerAsync(mux, options.Database).ConfigureAwait(false);
        }
        catch
        {
            if (owns) await mux.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        var store = new RedisStore(mux, owns, options);
        // A server that restarted may have lost its tail (appendfsync everysec): never speculate on rows seen before.
        mux.ConnectionRestored += store.OnConnectionEvent;
        mux.ConnectionFailed += store.OnConnectionEvent;
        await mux.GetSubscriber().SubscribeAsync(store._channel, (_, _) => store.PulseChanged()).ConfigureAwait(false);
        await store.StartEventLogAsync().ConfigureAwait(false);
        store._sweeper = store._time.CreateTimer(static s => _ = ((RedisStore)s!).SweepAsync(), store, store._semantics.ExpirySweepInterval, store._semantics.ExpirySweepInterval);
        return store;
    }

    private void OnConnectionEvent(object? sender, ConnectionFailedEventArgs e) => Interlocked.Exchange(ref _cacheInvalid, 1);

    /// <summary>
    /// Refuses servers the store cannot be correct on: Redis Cluster (a commit's script touches keys of many slots), and a
    /// server that evicts keys under memory pressure (an evicted version, history entry or idempotency record silently
    /// loses an acknowledged write).
    /// </summary>
    private static async Task CheckServerAsync(IConnectionMultiplexer mux, int database)
    {
        foreach (var server in mux.GetServers())
        {
            if (server.ServerType == ServerType.Cluster)
                throw new StoreUnavailableException($"Redis Cluster is not supported ({server.EndPoint}): a commit is one script over keys of many hash slots; use a single Redis server (a primary, optionally with replicas)");
        }
        // INFO through a script: the client refuses INFO itself without admin mode.
        var info = (string?)await Translate(() => mux.GetDatabase(database).ScriptEvaluateAsync("return redis.call('INFO', 'memory')")).ConfigureAwait(false) ?? "";
        string Field(string name) => info.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith(name + ":", StringComparison.Ordinal))?[(name.Length + 1)..] ?? "";
        var maxMemory = Field("maxmemory");
        var policy = Field("maxmemory_policy");
        if (maxMemory is not ("" or "0") && policy is not ("" or "noeviction"))
            throw new StoreUnavailableException($"Redis evicts keys (maxmemory {maxMemory}, maxmemory-policy {policy}): an evicted version, history entry or idempotency record would silently lose acknowledged writes. Set maxmemory-policy noeviction (or maxmemory 0)");
    }

    // ------------------------------------------------------------------ key layout

    private RedisKey RevKey => _p + ":rev";
    private RedisKey TicksKey => _p + ":ticks";
    private RedisKey OldestKey => _p + ":oldest";
    private RedisKey StreamKey => _p + ":changes";
    private RedisKey ExpiryKey => _p + ":expiry";
    private RedisKey TokenKey => _p + ":token";
    private RedisKey KvKey(string ns) => $"{_p}:kv:{ns}";
    private RedisKey IndexKey(string ns) => $"{_p}:idx:{ns}";
    private RedisKey HistoryKey(string ns, string key) => $"{_p}:hist:{ns}:{key}";
    private RedisKey IdempotencyKey(string ns, string key) => $"{_p}:idem:{ns}:{key}";

    // ------------------------------------------------------------------ reads

    /// <inheritdoc />
    public async ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default) =>
        (await ReadMetaAsync().ConfigureAwait(false)).Revision;

    private async Task<(long Revision, long Oldest)> ReadMetaAsync()
    {
        var values = await Translate(() => _db.StringGetAsync([RevKey, OldestKey])).ConfigureAwait(false);
        var revision = values[0].IsNull ? 0 : (long)values[0];
        var oldest = values[1].IsNull ? 1 : (long)values[1];
        return (revision, Math.Max(oldest, revision - _semantics.RetainedRevisions + 1));
    }

    /// <inheritdoc />
    public async ValueTask<ConcordRecord?> GetAsync(string ns, string key, ReadOptions? options = null, CancellationToken cancellationToken = default)
    {
        KeyRules.ValidateNamespace(ns);
        KeyRules.ValidateKey(key);
        if (options?.AtRevision is { } at)
        {
            await CheckRevisionAsync(at).ConfigureAwait(false);
            var record = await AtRevisionAsync(ns, key, at).ConfigureAwait(false);
            return record is null || record.IsDeleted ? null : record;
        }
        var json = await Translate(() => _db.HashGetAsync(KvKey(ns), key)).ConfigureAwait(false);
        return json.IsNull ? null : Visible(ParseRecord(json!), latest: true);
    }

    private async Task<ConcordRecord?> AtRevisionAsync(string ns, string key, long at)
    {
        var versions = await Translate(() => _db.SortedSetRangeByScoreAsync(HistoryKey(ns, key), double.NegativeInfinity, at + 0.5, Exclude.None, Order.Descending, 0, 1)).ConfigureAwait(false);
        return versions.Length == 0 ? null : ParseRecord(versions[0]!);
    }

    private async Task CheckRevisionAsync(long at)
    {
        if (at < 0) throw new InvalidRequestException($"AtRevision must not be negative (got {at})");
        var (revision, oldest) = await ReadMetaAsync().ConfigureAwait(false);
        if (at > revision) throw new UnknownRevisionException(at, revision);
        oldest = Math.Min(oldest, revision);
        if (at < oldest) throw new RevisionCompactedException(at, oldest - 1);
    }

    private ConcordRecord? Visible(ConcordRecord record, bool latest)
    {
        if (record.IsDeleted) return null;
        if (latest && record.ExpiresAt is { } expires && expires <= _time.GetUtcNow()) return null;
        return record;
    }

    /// <inheritdoc />
    public async ValueTask<ListResult> ListAsync(string ns, ListRequest request, CancellationToken cancellationToken = default)
    {
        KeyRules.ValidateNamespace(ns);
        ArgumentNullException.ThrowIfNull(request);
        KeyRules.ValidatePrefix(request.Prefix);
        if (request.Limit is < 1 or > 10_000) throw new InvalidRequestException($"List limit must be between 1 and 10000 (got {request.Limit})");
        long readAt;
        if (request.AtRevision is { } at)
        {
            await CheckRevisionAsync(at).ConfigureAwait(false);
            readAt = at;
        }
        else readAt = (await ReadMetaAsync().ConfigureAwait(false)).Revision;

        var records = new List<ConcordRecord>();
        var after = request.After;
        while (records.Count < request.Limit)
        {
            var want = request.Limit - records.Count;
            var exclusive = after is not null && string.CompareOrdinal(after, request.Prefix) >= 0;
            RedisValue min = exclusive ? after : request.Prefix.Length == 0 ? default : request.Prefix;
            var max = PrefixEnd(request.Prefix);
            var keys = await Translate(() => _db.SortedSetRangeByValueAsync(IndexKey(ns), min, max, exclusive ? Exclude.Start : Exclude.None, Order.Ascending, 0, want)).ConfigureAwait(false);
            if (keys.Length == 0) return new ListResult(records, readAt, null);
            if (request.AtRevision is null)
            {
                var values = await Translate(() => _db.HashGetAsync(KvKey(ns), keys)).ConfigureAwait(false);
                foreach (var v in values)
                {
                    if (!v.IsNull && Visible(ParseRecord(v!), latest: true) is { } r) records.Add(r);
                }
            }
            else
            {
                foreach (var k in keys)
                {
                    if (await AtRevisionAsync(ns, k!, readAt).ConfigureAwait(false) is { IsDeleted: false } r) records.Add(r);
                }
            }
            after = keys[^1]!;
            if (keys.Length < want) return new ListResult(records, readAt, null);
        }
        return new ListResult(records, readAt, after);
    }

    // ------------------------------------------------------------------ writes

    /// <inheritdoc />
    public async ValueTask<WriteResult> PutAsync(string ns, string key, JsonElement value, WriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= WriteOptions.Default;
        return SingleKeyWrites.ToWriteResult(key, await ExecuteAsync(ns, SingleKeyWrites.Put(key, value, options), options, cancellationToken).ConfigureAwait(false));
    }

    /// <inheritdoc />
    public async ValueTask<WriteResult> DeleteAsync(string ns, string key, WriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= WriteOptions.Default;
        return SingleKeyWrites.ToWriteResult(key, await ExecuteAsync(ns, SingleKeyWrites.Delete(key, options), options, cancellationToken).ConfigureAwait(false));
    }

    /// <inheritdoc />
    public async ValueTask<WriteResult> PatchAsync(string ns, string key, JsonPatch patch, WriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= WriteOptions.Default;
        return SingleKeyWrites.ToWriteResult(key, await ExecuteAsync(ns, SingleKeyWrites.Patch(key, patch, options), options, cancellationToken).ConfigureAwait(false));
    }

    /// <inheritdoc />
    public ValueTask<TxnResult> TransactAsync(string ns, TxnRequest request, WriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return ExecuteAsync(ns, request, options ?? WriteOptions.Default, cancellationToken);
    }

    /// <summary>
    /// <see cref="TransactAsync"/> whose commit also runs <paramref name="hook"/> in the same script (both or neither);
    /// for native services (RedisQueueService's ack with effects). Throws <see cref="CommitHookRefusedException"/> when
    /// the hook's guard refuses. A replay or a conflict writes nothing and does not run the hook. A hooked request is
    /// committed in a batch of its own, so a refusal cannot fail other requests.
    /// </summary>
    internal ValueTask<TxnResult> TransactWithHookAsync(string ns, TxnRequest request, WriteOptions options, RedisCommitHook hook, CancellationToken cancellationToken) =>
        ExecuteAsync(ns, request, options, cancellationToken, hook);

    /// <summary>Database, key prefix and revision key, for native services that keep their own keys under <see cref="Prefix"/>.</summary>
    internal IDatabase Database => _db;

    /// <inheritdoc cref="Database"/>
    internal string Prefix => _p;

    /// <inheritdoc cref="Database"/>
    internal string RevisionKey => RevKey!;

    /// <summary>The multiplexer (for native services' pub/sub).</summary>
    internal IConnectionMultiplexer Multiplexer => _mux;

    private async ValueTask<TxnResult> ExecuteAsync(string ns, TxnRequest request, WriteOptions options, CancellationToken cancellationToken, RedisCommitHook? hook = null)
    {
        var pending = PendingCommit.Create(ns, request, options, _semantics.MaxValueBytes, hook, cancellationToken);
        // Prepared queue operations (RedisQueueService markers) commit with the queue's hook, so the request goes alone.
        if (hook is null && RedisQueueService.HasMarkers(request)) pending = pending with { Attachment = RedisQueueService.MarkersOnly };
        _commits.Submit(pending, CommitLoopAsync, _stop.Token);
        // Cancelling the wait does not withdraw a request the loop already took: its outcome is then unknown.
        return await pending.Done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Most requests one read and one commit script carry.</summary>
    private const int MaxBatch = 256;

    /// <summary>
    /// Group commit. One loop per node (started by the request that finds it idle, ending when the queue is empty) takes
    /// every request queued meanwhile, reads what they all need in one atomic script, evaluates them in queue order (each
    /// sees the effects of those before it) and applies them as consecutive revisions in one commit script, which first
    /// checks that the revision is still the one read. Two round trips per batch instead of two or three per request,
    /// and a node's clients never race each other. A batch that lost the race to another node is re-read and
    /// re-evaluated whole. The loop never throws: every request it takes is completed, with its result or an exception.
    /// </summary>
    /// <remarks>
    /// Speculative batches (see <see cref="TrySendSpeculative"/>) are pipelined: up to <see cref="MaxInFlight"/> commit
    /// scripts are on the wire at once, each evaluated on top of the ones before it. They are settled in order; the
    /// first that did not apply sends its batch, and every batch still in flight behind it, through the read path again,
    /// in queue order.
    /// </remarks>
    private async Task CommitLoopAsync()
    {
        var inFlight = new Queue<Flight>();
        while (true)
        {
            // While commits are in flight the loop keeps the lead even when the queue is empty: it must settle them.
            // A hooked request goes alone (see _commits): its guard may refuse the whole script.
            var batch = _commits.TakeBatch(keepLead: inFlight.Count > 0);
            if (batch.Count == 0)
            {
                if (inFlight.Count == 0) return;
                await SettleInOrderAsync(inFlight).ConfigureAwait(false);
                continue;
            }
            // A request cancelled while it waited is withdrawn: nothing of it was sent.
            batch.RemoveAll(p => p.CancellationToken.IsCancellationRequested && p.Done.TrySetCanceled(p.CancellationToken));
            if (batch.Count == 0) continue;
            if (inFlight.Count >= MaxInFlight) await SettleInOrderAsync(inFlight).ConfigureAwait(false);
            if (TrySendSpeculative(batch, inFlight.Count > 0 ? inFlight.Last().Token : null) is { } flight)
            {
                if (inFlight.Count > 0) Interlocked.Increment(ref _pipelined);
                inFlight.Enqueue(flight);
                continue;
            }
            while (inFlight.Count > 0) await SettleInOrderAsync(inFlight).ConfigureAwait(false);
            await CommitBatchWithRetriesAsync(batch).ConfigureAwait(false);
        }
    }

    /// <summary>Most speculative commit scripts one node has on the wire at once.</summary>
    private const int MaxInFlight = 4;

    /// <summary>
    /// A speculative batch whose commit script was sent: its outcomes (valid only if the script applies), the script's
    /// answer, and the commit token the script leaves when it applies (the previous flight's token when it commits nothing).
    /// </summary>
    private sealed record Flight(List<PendingCommit> Batch, object[] Outcomes, Task<bool> Applied, string? Token);

    /// <summary>
    /// Evaluates <paramref name="batch"/> against the remembered rows — which include the commits still in flight — and
    /// sends its commit script without waiting for the answer; null when the batch cannot be speculated (it then goes
    /// through <see cref="CommitBatchWithRetriesAsync"/> once everything in flight is settled).
    /// </summary>
    /// <param name="batch">Requests taken from the queue, none of them hooked.</param>
    /// <param name="previousToken">
    /// The token of the newest commit in flight, or null when nothing of this node is in flight. The script applies only
    /// if the revision is the expected one AND the last commit left that token: a revision alone could also have been
    /// reached by another node's commits after an earlier flight failed.
    /// </param>
    private Flight? TrySendSpeculative(List<PendingCommit> batch, string? previousToken)
    {
        if (Volatile.Read(ref _cacheInvalid) == 1 || _speculationPause > 0 || batch.Any(p => p.Attachment is not null) || !CanSpeculate(batch)) return null;
        var outcomes = Evaluate(batch, ViewsFromCache(batch), _cacheRevision, _cacheTicks, out var commits);
        var token = commits.Count > 0 ? NewCommitToken() : previousToken;
        var applied = CommitAsync(commits, _cacheRevision, null, previousToken, token);
        CacheCommits(commits);
        return new Flight(batch, outcomes, applied, token);
    }

    /// <summary>
    /// Settles the oldest flight: completes its requests when its script applied; otherwise forgets the remembered rows
    /// and runs its batch again through the read path, and settles every flight behind it the same way (they were
    /// evaluated on top of it, so their scripts fail too, unless it applied after all — an error with an unknown outcome).
    /// </summary>
    private async Task SettleInOrderAsync(Queue<Flight> inFlight)
    {
        if (await SettleAsync(inFlight.Dequeue()).ConfigureAwait(false)) return;
        while (inFlight.Count > 0) await SettleAsync(inFlight.Dequeue()).ConfigureAwait(false);
    }

    /// <summary>
    /// Pipelining counters for tests and diagnostics: speculative scripts sent while another was in flight, and flights
    /// that did not apply and went through the read path again.
    /// </summary>
    internal (long Pipelined, long Rerun) PipelineStats => (Interlocked.Read(ref _pipelined), Interlocked.Read(ref _rerun));

    private long _pipelined;
    private long _rerun;

    private async Task<bool> SettleAsync(Flight flight)
    {
        bool applied;
        try
        {
            applied = await flight.Applied.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // The script may or may not have run: the callers get a transient error and retry with their idempotency keys.
            ClearCache();
            PendingCommit.Fail(flight.Batch, e, _stop.IsCancellationRequested);
            return false;
        }
        if (applied)
        {
            PendingCommit.Complete(flight.Batch, flight.Outcomes);
            return true;
        }
        // Another writer (a node, the sweeper) committed since, or an earlier flight failed: read, and speculate less for a while.
        ClearCache();
        _speculationPause = 8;
        Interlocked.Increment(ref _rerun);
        await CommitBatchWithRetriesAsync(flight.Batch).ConfigureAwait(false);
        return false;
    }

    private long _tokens;

    /// <summary>A token no other commit ever leaves: this store instance's id and a counter.</summary>
    private string NewCommitToken() => $"{_instance}:{Interlocked.Increment(ref _tokens).ToString(CultureInfo.InvariantCulture)}";

    private readonly string _instance = Guid.NewGuid().ToString("N");

    private async Task CommitBatchWithRetriesAsync(List<PendingCommit> batch)
    {
        try
        {
            for (var attempt = 1; attempt <= _options.MaxAttempts; attempt++)
            {
                if (attempt > 2)
                {
                    // Lost the race to other nodes more than once: back off with full jitter so contenders spread out.
                    var cap = Math.Min(20.0, 0.25 * Math.Pow(2, Math.Min(attempt - 2, 8)));
                    await Task.Delay(TimeSpan.FromMilliseconds(cap * _random.NextDouble()), _options.BackoffTimeProvider, _stop.Token).ConfigureAwait(false);
                }
                if (await AttemptBatchAsync(batch).ConfigureAwait(false) is not { } outcomes) continue;
                PendingCommit.Complete(batch, outcomes);
                return;
            }
            var gaveUp = new StoreUnavailableException($"Gave up after {_options.MaxAttempts} attempts: other writers kept committing first", null, isTransient: true);
            foreach (var p in batch) p.Done.TrySetException(gaveUp);
        }
        catch (CommitHookRefusedException refused) when (batch.Count == 1 && RedisQueueService.RefusedResult(refused, batch[0].Request) is { } result)
        {
            // A prepared queue operation was refused (stale receipt, dedup id taken): nothing was written.
            batch[0].Done.TrySetResult(result);
        }
        catch (Exception e)
        {
            // A failure of the read applied nothing; one of the commit script leaves the outcome unknown. Either way the
            // callers get a transient StoreUnavailableException and retry with their idempotency keys.
            PendingCommit.Fail(batch, e, _stop.IsCancellationRequested);
        }
    }

    // KEYS: rev, ticks. ARGV: triples ('h', hash, field) or ('s', key, ''). Returns rev, ticks, then each value (nil when absent).
    private const string ReadScript = """
        local out = { redis.call('GET', KEYS[1]) or '0', redis.call('GET', KEYS[2]) or '0' }
        for i = 1, #ARGV, 3 do
          if ARGV[i] == 'h' then out[#out + 1] = redis.call('HGET', ARGV[i + 1], ARGV[i + 2])
          else out[#out + 1] = redis.call('GET', ARGV[i + 1]) end
        end
        return out
        """;

    /// <summary>
    /// One read–evaluate–commit attempt for a batch; null when another writer committed between the read and the commit.
    /// Returns each request's <see cref="TxnResult"/> or the <see cref="ConcordException"/> its evaluation threw.
    /// </summary>
    private async Task<object[]?> AttemptBatchAsync(List<PendingCommit> batch)
    {
        if (Volatile.Read(ref _cacheInvalid) == 1)
        {
            Interlocked.Exchange(ref _cacheInvalid, 0);
            ClearCache();
        }
        if (_speculationPause > 0) _speculationPause--;
        else if (CanSpeculate(batch))
        {
            // One round trip: evaluate against the rows this node last saw, and let the commit script's revision check
            // prove they are still current (a batch of conflicts sends no commit but still checks the revision).
            var speculated = Evaluate(batch, ViewsFromCache(batch), _cacheRevision, _cacheTicks, out var speculativeCommits);
            if (await CommitAsync(speculativeCommits, _cacheRevision, HookOf(batch, speculativeCommits)).ConfigureAwait(false))
            {
                CacheCommits(speculativeCommits);
                return speculated;
            }
            // Another writer (a node, the sweeper) committed since: read, and speculate less for a while.
            ClearCache();
            _speculationPause = 8;
        }

        // The revision, every row and every idempotency record, read atomically: one consistent state at one instant.
        var args = new List<RedisValue>();
        foreach (var p in batch)
        {
            var kv = (string)KvKey(p.Ns)!;
            foreach (var key in p.Keys) args.AddRange(["h", kv, key]);
            if (p.Options.IdempotencyKey is { } ik) args.AddRange(["s", (string)IdempotencyKey(p.Ns, ik)!, ""]);
        }
        var read = (RedisResult[])(await Translate(() => _db.ScriptEvaluateAsync(ReadScript, [RevKey, TicksKey], [.. args])).ConfigureAwait(false))!;
        var revision = (long)read[0];
        var ticks = (long)read[1];
        if (revision != _cacheRevision) ClearCache();
        var views = new Dictionary<string, BatchView>(StringComparer.Ordinal);
        var at = 2;
        var prefixesRead = false;
        foreach (var p in batch)
        {
            if (!views.TryGetValue(p.Ns, out var view)) views[p.Ns] = view = new BatchView();
            foreach (var key in p.Keys)
            {
                var row = read[at++];
                var record = row.IsNull ? null : ParseRecord((string)row!);
                if (record is not null) view.Rows[key] = record;
                CacheRow(p.Ns, key, record);
            }
            if (p.Options.IdempotencyKey is not null)
            {
                var idem = read[at++];
                if (!idem.IsNull)
                {
                    using var doc = JsonDocument.Parse((string)idem!);
                    var entry = Codec.ReadIdempotency(doc.RootElement);
                    view.Idempotency[entry.Key] = entry;
                }
            }
            // Prefix revisions take several reads; the commit script's revision check validates them.
            foreach (var prefix in p.Prefixes)
            {
                prefixesRead = true;
                if (!view.Prefixes.ContainsKey(prefix)) view.Prefixes[prefix] = await PrefixModRevisionAsync(p.Ns, prefix).ConfigureAwait(false);
            }
        }
        _cacheRevision = revision;
        _cacheTicks = ticks;

        var outcomes = Evaluate(batch, views, revision, ticks, out var commits);
        // Nothing to write and everything read atomically: the answers (conflicts, replays) hold at the read's instant.
        if (commits.Count == 0 && !prefixesRead) return outcomes;
        if (!await CommitAsync(commits, revision, HookOf(batch, commits)).ConfigureAwait(false))
        {
            ClearCache();
            return null;
        }
        CacheCommits(commits);
        return outcomes;
    }

    /// <summary>The hook runs only with a commit (never for a replay or a conflict), and only a batch of one carries it.</summary>
    private RedisCommitHook? HookOf(List<PendingCommit> batch, List<CommitEntry> commits) => commits.Count > 0 && batch.Count == 1
        ? RedisQueueService.CompleteHook(batch[0].Attachment, commits[0], _p, (string)RevKey!, (string)KvKey(commits[0].Namespace)!, (string)IndexKey(commits[0].Namespace)!)
        : null;

    /// <summary>Evaluates the batch in queue order, each request seeing the commits before it; returns the outcomes and the commits.</summary>
    private object[] Evaluate(List<PendingCommit> batch, Dictionary<string, BatchView> views, long last, long lastTicks, out List<CommitEntry> commits)
    {
        var outcomes = new object[batch.Count];
        commits = [];
        for (var i = 0; i < batch.Count; i++)
        {
            var p = batch[i];
            var view = views[p.Ns];
            var now = _time.GetUtcNow();
            var commitTime = new DateTimeOffset(Math.Max(now.UtcTicks, lastTicks + 1), TimeSpan.Zero);
            CommitEntry? commit;
            try
            {
                outcomes[i] = TxnEvaluator.Evaluate(p.Ns, p.Request, p.Options, p.Fingerprint, view, new EvaluationContext(last, now, commitTime, _semantics), out commit);
            }
            catch (ConcordException e)
            {
                outcomes[i] = e;
                continue;
            }
            if (commit is null) continue;
            commits.Add(commit);
            last = commit.Revision;
            lastTicks = commit.Time.UtcTicks;
            view.Apply(commit);
        }
        return outcomes;
    }

    // ------------------------------------------------------------------ speculation (state of the one running commit loop)

    /// <summary>Most rows remembered for speculation.</summary>
    private const int MaxCachedRows = 100_000;

    /// <summary>
    /// A batch can skip the read when every row it needs is remembered as of <see cref="_cacheRevision"/> and it needs
    /// nothing else: no idempotency record (whose absence is not remembered) and no prefix revision.
    /// </summary>
    private bool CanSpeculate(List<PendingCommit> batch)
    {
        if (_cacheRevision < 0) return false;
        foreach (var p in batch)
        {
            if (p.Options.IdempotencyKey is not null || p.Prefixes.Length > 0) return false;
            foreach (var key in p.Keys)
            {
                if (!_cache.ContainsKey((p.Ns, key))) return false;
            }
        }
        return true;
    }

    private Dictionary<string, BatchView> ViewsFromCache(List<PendingCommit> batch)
    {
        var views = new Dictionary<string, BatchView>(StringComparer.Ordinal);
        foreach (var p in batch)
        {
            if (!views.TryGetValue(p.Ns, out var view)) views[p.Ns] = view = new BatchView();
            foreach (var key in p.Keys)
            {
                if (_cache[(p.Ns, key)] is { } record) view.Rows[key] = record;
            }
        }
        return views;
    }

    private void CacheRow(string ns, string key, ConcordRecord? record)
    {
        if (_cache.Count >= MaxCachedRows) _cache.Clear();
        _cache[(ns, key)] = record;
    }

    /// <summary>Carries the remembered rows forward over this node's own commits (nobody else committed in between: the script checked).</summary>
    private void CacheCommits(List<CommitEntry> commits)
    {
        if (commits.Count == 0) return;
        foreach (var commit in commits)
        {
            // The queue hook removed the committed markers from the key space in the same script.
            foreach (var change in commit.Changes)
                CacheRow(commit.Namespace, change.Record.Key, change.Key.StartsWith(RedisQueueService.MarkerPrefix, StringComparison.Ordinal) ? null : change.Record);
        }
        _cacheRevision = commits[^1].Revision;
        _cacheTicks = commits[^1].Time.UtcTicks;
    }

    private void ClearCache()
    {
        _cache.Clear();
        _cacheRevision = -1;
    }

    /// <summary>Inclusive upper bound of keys under a prefix (lexicographic by UTF-8 bytes); default = unbounded.</summary>
    private static RedisValue PrefixEnd(string prefix) => prefix.Length == 0 ? default : prefix + char.ConvertFromUtf32(0x10FFFF);

    private async Task<long> PrefixModRevisionAsync(string ns, string prefix)
    {
        long max = 0;
        RedisValue min = prefix.Length == 0 ? default : prefix;
        var exclude = Exclude.None;
        var upper = PrefixEnd(prefix);
        while (true)
        {
            var keys = await Translate(() => _db.SortedSetRangeByValueAsync(IndexKey(ns), min, upper, exclude, Order.Ascending, 0, 1000)).ConfigureAwait(false);
            if (keys.Length == 0) return max;
            var values = await Translate(() => _db.HashGetAsync(KvKey(ns), keys)).ConfigureAwait(false);
            foreach (var v in values)
            {
                if (!v.IsNull && ParseRecord(v!).Revision is var r && r > max) max = r;
            }
            if (keys.Length < 1000) return max;
            min = keys[^1];
            exclude = Exclude.Start;
        }
    }

    // KEYS: rev, ticks, stream, expiry. ARGV: expected rev, ticks of the last commit, channel, retained revisions, number
    // of commits, the commit-token key, the token the last commit must have left ("" = any), the token these commits
    // leave, then per commit (revisions expected + 1, + 2, …): n, 7 per change (kv hash, index zset, history zset,
    // key, record json, deleted 0/1, expires ticks or ""), then idem key, idem json, idem ttl ms ("" "" "" when none), then
    // the namespace's event log stream, m, and m pairs (1-based change number, event index) in ascending index order:
    // XADD with explicit ids revision-index, which grow because revisions do (RedisEventLog.cs).
    // Each key's history keeps every version newer than the retention horizon plus the newest one at or below it.
    // History scores are revision + index/100000, so two writes of one key in one transaction stay ordered.
    private const string CommitScript = """
        local rev = tonumber(redis.call('GET', KEYS[1]) or '0')
        if rev ~= tonumber(ARGV[1]) then return 0 end
        if ARGV[7] ~= '' and redis.call('GET', ARGV[6]) ~= ARGV[7] then return 0 end
        local commits = tonumber(ARGV[5])
        if commits == 0 then return 1 end
        local retained = tonumber(ARGV[4])
        local a = 9
        for c = 1, commits do
          local newrev = rev + c
          local horizon = newrev - retained + 1
          local n = tonumber(ARGV[a])
          a = a + 1
          local recs = {}
          for i = 0, n - 1 do
            local kv, idx, hist, key, rec, deleted, exp = ARGV[a], ARGV[a+1], ARGV[a+2], ARGV[a+3], ARGV[a+4], ARGV[a+5], ARGV[a+6]
            recs[i + 1] = a
            -- kv fields are never removed (deletes are tombstones; the queue hook drops a committed marker's field and index entry together), so a key is in the index exactly when HSET found it.
            if redis.call('HSET', kv, key, rec) == 1 then redis.call('ZADD', idx, 0, key) end
            redis.call('ZADD', hist, newrev + i / 100000, rec)
            if horizon > 1 then
              local keep = redis.call('ZREVRANGEBYSCORE', hist, horizon + 0.5, '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
              if #keep > 0 then redis.call('ZREMRANGEBYSCORE', hist, '-inf', '(' .. keep[2]) end
            end
            redis.call('XADD', KEYS[3], newrev .. '-' .. i, 'r', rec, 'kv', kv, 'deleted', deleted)
            local member = kv .. '\0' .. key
            if exp ~= '' then redis.call('ZADD', KEYS[4], exp, member) else redis.call('ZREM', KEYS[4], member) end
            a = a + 7
          end
          if ARGV[a] ~= '' then redis.call('SET', ARGV[a], ARGV[a+1], 'PX', ARGV[a+2]) end
          a = a + 3
          local events, m = ARGV[a], tonumber(ARGV[a+1])
          a = a + 2
          for e = 1, m do
            local at = recs[tonumber(ARGV[a])]
            redis.call('XADD', events, newrev .. '-' .. ARGV[a+1], 'k', ARGV[at+3], 'r', ARGV[at+4])
            a = a + 2
          end
        end
        redis.call('SET', KEYS[1], rev + commits)
        redis.call('SET', KEYS[2], ARGV[2])
        redis.call('SET', ARGV[6], ARGV[8])
        redis.call('PUBLISH', ARGV[3], rev + commits)
        return 1
        """;

    /// <summary>Applies a commit atomically if the revision is still <paramref name="expected"/>; false when another commit won.</summary>
    private Task<bool> CommitAsync(CommitEntry commit, long expected) => CommitAsync([commit], expected);

    /// <summary>
    /// Applies consecutive commits (revisions <paramref name="expected"/> + 1, + 2, …) atomically if the revision is still
    /// <paramref name="expected"/>; false when another commit won. With no commits, only checks the revision.
    /// </summary>
    /// <param name="commits">The commits, revisions <paramref name="expected"/> + 1, + 2, ….</param>
    /// <param name="expected">The revision the commits were evaluated on.</param>
    /// <param name="hook">Native work to commit with them (a batch of one).</param>
    /// <param name="expectedToken">When set, the script also requires the last commit to have left this token (pipelined commits).</param>
    /// <param name="token">The token these commits leave; a fresh one when null.</param>
    private async Task<bool> CommitAsync(IReadOnlyList<CommitEntry> commits, long expected, RedisCommitHook? hook = null, string? expectedToken = null, string? token = null)
    {
        var args = new List<RedisValue>
        {
            expected, commits.Count > 0 ? commits[^1].Time.UtcTicks : 0, _channel.ToString(), _semantics.RetainedRevisions, commits.Count,
            (string)TokenKey!, expectedToken ?? "", commits.Count > 0 ? token ?? NewCommitToken() : "",
        };
        for (var c = 0; c < commits.Count; c++)
        {
            var commit = commits[c];
            if (commit.Revision != expected + 1 + c) throw new InvalidOperationException("Commits of one script must have consecutive revisions after the expected one");
            args.Add(commit.Changes.Count);
            foreach (var change in commit.Changes)
            {
                var r = change.Record;
                args.Add((string)KvKey(commit.Namespace)!);
                args.Add((string)IndexKey(commit.Namespace)!);
                args.Add((string)HistoryKey(commit.Namespace, r.Key)!);
                args.Add(r.Key);
                args.Add(RecordJson(r, change.Kind));
                args.Add(r.IsDeleted ? 1 : 0);
                args.Add(r.ExpiresAt is { } x ? x.UtcTicks.ToString(CultureInfo.InvariantCulture) : "");
            }
            if (commit.Idempotency is { } idem)
            {
                var buffer = new ArrayBufferWriter<byte>(256);
                using (var w = new Utf8JsonWriter(buffer)) Codec.WriteIdempotency(w, idem);
                args.Add((string)IdempotencyKey(commit.Namespace, idem.Key)!);
                args.Add(Encoding.UTF8.GetString(buffer.WrittenSpan));
                args.Add(Math.Max(1, (long)(idem.ExpiresAt - _time.GetUtcNow()).TotalMilliseconds));
            }
            else args.AddRange(["", "", ""]);
            AddEventLogArgs(args, commit);
        }
        if (hook is not null)
        {
            args.AddRange(hook.Args);
            args.Add(hook.Args.Count);
            var hooked = await Translate(() => _db.ScriptEvaluateAsync(hook.Compose(CommitScript), [RevKey, TicksKey, StreamKey, ExpiryKey, .. hook.Keys], [.. args])).ConfigureAwait(false);
            if (hooked.Resp2Type == ResultType.BulkString) throw new CommitHookRefusedException((string)hooked!) { Revision = expected };
            return (long)hooked == 1;
        }
        var ok = await Translate(() => _db.ScriptEvaluateAsync(CommitScript, [RevKey, TicksKey, StreamKey, ExpiryKey], [.. args])).ConfigureAwait(false);
        return (long)ok == 1;
    }

    /// <summary>The record as JSON, with the change kind so the stream entry can be turned back into an event.</summary>
    private static string RecordJson(ConcordRecord record, ChangeKind kind = ChangeKind.Put)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("kind", (int)kind);
            w.WritePropertyName("r");
            Codec.WriteRecord(w, record);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static ConcordRecord ParseRecord(string json) => ParseChange(json).Record;

    private static (ChangeKind Kind, ConcordRecord Record) ParseChange(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return ((ChangeKind)doc.RootElement.GetProperty("kind").GetInt32(), Codec.ReadRecord(doc.RootElement.GetProperty("r")));
    }

    // ------------------------------------------------------------------ watch

    /// <inheritdoc />
    public async IAsyncEnumerable<ChangeEvent> WatchAsync(string ns, WatchRequest request, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        KeyRules.ValidateNamespace(ns);
        ArgumentNullException.ThrowIfNull(request);
        request.Validate();
        var (revision, oldest) = await ReadMetaAsync().ConfigureAwait(false);
        string position;
        if (request.FromRevision == 0) position = $"{revision}-{int.MaxValue}";
        else
        {
            if (request.FromRevision < oldest) throw new RevisionCompactedException(request.FromRevision, oldest - 1);
            position = $"{request.FromRevision - 1}-{int.MaxValue}";
        }
        var kv = (string)KvKey(ns)!;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        while (true)
        {
            var signal = ChangedSignal();
            var from = position;
            var entries = await Translate(() => _db.StreamRangeAsync(StreamKey, "(" + from, "+", 1000)).ConfigureAwait(false);
            foreach (var entry in entries)
            {
                position = entry.Id!;
                if ((string?)entry["kv"] != kv) continue;
                var (kind, record) = ParseChange((string)entry["r"]!);
                if (!request.Matches(record.Key)) continue;
                yield return new ChangeEvent(ns, kind, record);
            }
            if (entries.Length == 1000) continue;
            try
            {
                await signal.WaitAsync(_options.PollInterval, _time, stop.Token).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // Poll anyway: pub/sub messages are not guaranteed.
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                throw new StoreUnavailableException("The store is closed");
            }
        }
    }

    private Task ChangedSignal() => _changed.Next;

    private void PulseChanged() => _changed.Pulse();

    // ------------------------------------------------------------------ housekeeping

    /// <summary>Turns expired keys into tombstones and trims history and the change stream to the retention window.</summary>
    internal async Task SweepAsync()
    {
        if (Interlocked.Exchange(ref _sweeping, 1) == 1) return;
        try
        {
            await SweepOnceAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is ConcordException or ObjectDisposedException or RedisException)
        {
            // Housekeeping retries on the next tick.
        }
        finally
        {
            Volatile.Write(ref _sweeping, 0);
        }
    }

    private async Task SweepOnceAsync()
    {
        var now = _time.GetUtcNow();
        var due = await Translate(() => _db.SortedSetRangeByScoreAsync(ExpiryKey, double.NegativeInfinity, now.UtcTicks, Exclude.None, Order.Ascending, 0, 1000)).ConfigureAwait(false);
        foreach (var group in due.Select(m => ((string)m!).Split('\0', 2)).GroupBy(p => p[0]))
        {
            var ns = group.Key[(_p.Length + 4)..];
            for (var attempt = 0; attempt < 10; attempt++)
            {
                var meta = await Translate(() => _db.StringGetAsync([RevKey, TicksKey])).ConfigureAwait(false);
                var last = meta[0].IsNull ? 0 : (long)meta[0];
                var lastTicks = meta[1].IsNull ? 0 : (long)meta[1];
                var revision = last + 1;
                var time = new DateTimeOffset(Math.Max(now.UtcTicks, lastTicks + 1), TimeSpan.Zero);
                var changes = new List<ChangeEvent>();
                foreach (var parts in group)
                {
                    var json = await Translate(() => _db.HashGetAsync(group.Key, parts[1])).ConfigureAwait(false);
                    if (json.IsNull) continue;
                    var r = ParseRecord(json!);
                    if (r.IsDeleted || r.ExpiresAt is not { } x || x > now) continue;
                    changes.Add(new ChangeEvent(ns, ChangeKind.Expire, new ConcordRecord(r.Key, default, r.Version + 1, revision, r.CreateRevision, "concord:ttl", time, null, true)));
                }
                if (changes.Count == 0) break;
                if (await CommitAsync(new CommitEntry { Revision = revision, Namespace = ns, Time = time, Changes = changes }, last).ConfigureAwait(false)) break;
            }
        }
        // Trim the change stream to the retention window (history sets are trimmed when their key is read or written past it).
        var (revisionNow, _) = await ReadMetaAsync().ConfigureAwait(false);
        var horizon = revisionNow - _semantics.RetainedRevisions + 1;
        if (horizon > 1)
        {
            await Translate(() => _db.StreamTrimByMinIdAsync(StreamKey, $"{horizon}-0")).ConfigureAwait(false);
            await Translate(() => _db.StringSetAsync(OldestKey, horizon)).ConfigureAwait(false);
        }
    }

    // ------------------------------------------------------------------ errors and disposal

    private static async Task<T> Translate<T>(Func<Task<T>> action)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (RedisServerException e)
        {
            throw new StoreUnavailableException($"Redis refused the operation: {e.Message}", e, isTransient: e.Message.StartsWith("LOADING", StringComparison.Ordinal) || e.Message.StartsWith("BUSY", StringComparison.Ordinal));
        }
        catch (RedisException e)
        {
            // Connection and timeout failures: the outcome of a write in flight is unknown; retry with the same idempotency key.
            throw new StoreUnavailableException($"Redis is unavailable: {e.Message}", e, isTransient: true);
        }
        catch (TimeoutException e)
        {
            throw new StoreUnavailableException($"Redis timed out: {e.Message}", e, isTransient: true);
        }
    }

    /// <summary>Stops the sweeper and the subscription; disposes the multiplexer if the store created it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested) return;
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_sweeper is not null) await _sweeper.DisposeAsync().ConfigureAwait(false);
        _mux.ConnectionRestored -= OnConnectionEvent;
        _mux.ConnectionFailed -= OnConnectionEvent;
        try
        {
            await _mux.GetSubscriber().UnsubscribeAsync(_channel).ConfigureAwait(false);
        }
        catch (RedisException)
        {
        }
        if (_ownsMux) await _mux.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
    }
}
