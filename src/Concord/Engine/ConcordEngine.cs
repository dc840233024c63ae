using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Threading.Channels;
using Concord.Diagnostics;
using Concord.Internal;

namespace Concord.Engine;

/// <summary>
/// The embedded engine: an in-process, linearizable implementation of <see cref="IConcordStore"/>.
/// </summary>
/// <remarks>
/// <para>
/// One writer at a time (the write lock) validates and applies each mutation to an in-memory MVCC map and
/// assigns it the next revision. In <c>embedded</c> mode the commit is appended to the durable log and the caller
/// is acknowledged only after a group fsync; readers see a revision only once it is durable, so nothing a reader
/// observed can be lost by a crash. In <c>memory</c> mode commits are visible immediately.
/// </para>
/// <para>Thread-safe. Readers never take the write lock.</para>
/// <para>
/// Lock order (why this cannot deadlock): write lock → publish lock → log buffer lock. The log flusher takes only
/// the publish lock and the log's own locks; watchers take only the publish lock.
/// </para>
/// </remarks>
public sealed class ConcordEngine : IConcordStore
{
    private readonly ConcordEngineOptions _options;
    private readonly TimeProvider _time;
    private readonly Lock _writeGate = new();
    private readonly Lock _publishGate = new();
    private readonly ConcurrentDictionary<string, NamespaceState> _namespaces = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<ChangeEvent> _unpublished = new();
    private readonly List<ChangeEvent> _history = [];
    private readonly List<Subscriber> _subscribers = [];
    private readonly PriorityQueue<(NamespaceState Ns, string Key, long Version), long> _expiries = new();
    private readonly Queue<(NamespaceState Ns, IdempotencyEntry Entry, int Bytes)> _idempotencyExpiries = new();
    private long _idempotencyBytes;
    private long _idempotencyEvicted;
    private DateTimeOffset? _idempotencyLastEvictedAt;
    private readonly ArrayBufferWriter<byte> _encodeBuffer = new(4096);
    private readonly string? _dataDirectory;
    private readonly FileStream? _directoryLock;
    private WriteAheadLog? _log;
    private ITimer? _sweeper;
    private long _lastRevision;
    private long _visibleRevision;
    private long _oldestReadable = 1;
    private long _historyFrom = 1;
    private long _lastTicks;
    private readonly SemaphoreSlim _snapshotGate = new(1, 1); // one snapshot at a time; DisposeAsync waits for it
    private bool _disposed;

    private ConcordEngine(ConcordEngineOptions options, string? dataDirectory, FileStream? directoryLock)
    {
        options.Validate();
        _options = options;
        _time = options.TimeProvider;
        _dataDirectory = dataDirectory;
        _directoryLock = directoryLock;
    }

    /// <summary>True when commits go to a durable log (<c>embedded</c> mode).</summary>
    public bool IsDurable => _dataDirectory is not null;

    /// <summary>The settings the engine runs with.</summary>
    public ConcordEngineOptions Options => _options;

    /// <summary>Creates an engine in <c>memory</c> mode (no disk). <see cref="ConcordEngineOptions.DataDirectory"/> is ignored.</summary>
    public static ConcordEngine CreateInMemory(ConcordEngineOptions? options = null)
    {
        var engine = new ConcordEngine(options ?? new ConcordEngineOptions(), null, null);
        engine.StartSweeper();
        return engine;
    }

    /// <summary>
    /// Opens an engine. With a <see cref="ConcordEngineOptions.DataDirectory"/> it runs in <c>embedded</c> mode:
    /// the latest snapshot is loaded, the log replayed (a torn tail is dropped), and a new log segment started.
    /// </summary>
    /// <exception cref="CorruptDataException">A snapshot or a log segment other than the last is corrupt.</exception>
    /// <exception cref="StoreUnavailableException">Another process has the data directory open.</exception>
    public static Task<ConcordEngine> OpenAsync(ConcordEngineOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.DataDirectory is null) return Task.FromResult(CreateInMemory(options));
        cancellationToken.ThrowIfCancellationRequested();
        var dir = Path.GetFullPath(options.DataDirectory);
        Directory.CreateDirectory(dir);
        FileStream directoryLock;
        try
        {
            directoryLock = new FileStream(Path.Combine(dir, "LOCK"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new StoreUnavailableException($"The data directory '{dir}' is in use by another process", e, isTransient: true);
        }
        var engine = new ConcordEngine(options, dir, directoryLock);
        try
        {
            var recovered = Recovery.Load(dir, engine.InstallSnapshot, engine.InstallRecovered);
            engine._lastRevision = recovered.LastRevision;
            engine._visibleRevision = recovered.LastRevision;
            engine._oldestReadable = Math.Max(1, recovered.SnapshotRevision);
            engine._historyFrom = recovered.SnapshotRevision + 1;
            engine._lastTicks = recovered.LastTicks;
            engine._log = WriteAheadLog.Open(dir, recovered.LastRevision + 1, engine.OnDurable);
        }
        catch
        {
            directoryLock.Dispose();
            throw;
        }
        engine.StartSweeper();
        return Task.FromResult(engine);
    }

    // ---------------------------------------------------------------- reads

    /// <inheritdoc />
    public ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Volatile.Read(ref _visibleRevision));

    /// <inheritdoc />
    public ValueTask<ConcordRecord?> GetAsync(string ns, string key, ReadOptions? options = null, CancellationToken cancellationToken = default)
    {
        // Every stored key was validated when it was written, so a hit needs no validation (it cost 60% of a read); a
        // miss validates, so an invalid name still throws instead of reading as absent, with the same precedence.
        if (ns is null || key is null || !_namespaces.TryGetValue(ns, out var state) || !state.Keys.TryGetValue(key, out var entry))
        {
            KeyRules.ValidateNamespace(ns!);
            KeyRules.ValidateKey(key!);
            entry = null;
        }
        ThrowIfDisposed();
        var latest = options?.AtRevision is null;
        while (true)
        {
            var revision = ResolveReadRevision(options?.AtRevision);
            var record = entry is null ? null : Visible(entry.At(revision), latest);
            if (!CompactedWhileReading(revision, latest)) return ValueTask.FromResult(record);
        }
    }

    /// <inheritdoc />
    public ValueTask<ListResult> ListAsync(string ns, ListRequest request, CancellationToken cancellationToken = default)
    {
        KeyRules.ValidateNamespace(ns);
        ArgumentNullException.ThrowIfNull(request);
        KeyRules.ValidatePrefix(request.Prefix);
        if (request.Limit is < 1 or > 10_000) throw new InvalidRequestException($"List limit must be between 1 and 10000 (got {request.Limit})");
        ThrowIfDisposed();
        var latest = request.AtRevision is null;
        while (true)
        {
            var revision = ResolveReadRevision(request.AtRevision);
            var page = Scan(revision);
            if (!CompactedWhileReading(revision, latest)) return ValueTask.FromResult(page);
        }

        ListResult Scan(long revision)
        {
            var records = new List<ConcordRecord>();
            if (!_namespaces.TryGetValue(ns, out var state)) return new ListResult(records, revision, null);
            var after = request.After;
            while (true)
            {
                var keys = state.KeysInRange(request.Prefix, after, request.Limit - records.Count, revision);
                foreach (var key in keys)
                {
                    if (state.Keys.TryGetValue(key, out var entry) && Visible(entry.At(revision), latest) is { } record) records.Add(record);
                    after = key;
                    if (records.Count == request.Limit) return new ListResult(records, revision, key);
                }
                if (keys.Count == 0) return new ListResult(records, revision, null);
            }
        }
    }

    /// <summary>
    /// True when a read at <paramref name="revision"/> raced with compaction: versions it may have needed were trimmed
    /// while it walked the chains, so a key could have looked absent. A snapshot read then fails as compacted (as it
    /// would have a moment later); a latest read is retried at the new latest revision. Trimming publishes the new
    /// oldest revision before it unlinks versions, so a read that saw a trimmed chain sees the new oldest here.
    /// </summary>
    private bool CompactedWhileReading(long revision, bool latest)
    {
        var oldest = Math.Min(Volatile.Read(ref _oldestReadable), Volatile.Read(ref _visibleRevision));
        if (revision >= oldest) return false;
        if (!latest) throw new RevisionCompactedException(revision, oldest - 1);
        return true;
    }

    private ConcordRecord? Visible(ConcordRecord? record, bool latest)
    {
        if (record is null || record.IsDeleted) return null;
        // Latest reads hide a key whose TTL passed even before the sweeper writes its tombstone.
        if (latest && record.ExpiresAt is { } expires && expires <= _time.GetUtcNow()) return null;
        return record;
    }

    private long ResolveReadRevision(long? at)
    {
        var visible = Volatile.Read(ref _visibleRevision);
        if (at is not { } revision) return visible;
        if (revision < 0) throw new InvalidRequestException($"AtRevision must not be negative (got {revision})");
        if (revision > visible) throw new UnknownRevisionException(revision, visible);
        var oldest = Math.Min(Volatile.Read(ref _oldestReadable), visible);
        // The exception takes the newest compacted revision, one below the oldest readable.
        if (revision < oldest) throw new RevisionCompactedException(revision, oldest - 1);
        return revision;
    }

    // ---------------------------------------------------------------- writes

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

    private async ValueTask<TxnResult> ExecuteAsync(string ns, TxnRequest request, WriteOptions options, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        TxnEvaluator.Validate(ns, request, _options.MaxValueBytes);
        var fingerprint = options.IdempotencyKey is null ? null : Fingerprint.Compute(ns, request, options);
        TxnResult result;
        Task durable;
        lock (_writeGate)
        {
            ThrowIfDisposed();
            result = ApplyLocked(ns, request, options, fingerprint, out var commit);
            durable = commit is not null ? Commit(commit) : WaitVisible(_lastRevision);
        }
        if (!durable.IsCompletedSuccessfully) await durable.WaitAsync(cancellationToken).ConfigureAwait(false);
        return result;
    }

    /// <summary>Validates and applies one request. Caller holds the write lock. Returns the commit to log, if any.</summary>
    private TxnResult ApplyLocked(string ns, TxnRequest request, WriteOptions options, byte[]? fingerprint, out CommitEntry? commit)
    {
        var state = _namespaces.GetOrAdd(ns, static n => new NamespaceState(n));
        var now = _time.GetUtcNow();
        var context = new EvaluationContext(_lastRevision, now, NextCommitTime(now), _options);
        var result = TxnEvaluator.Evaluate(ns, request, options, fingerprint, state, context, out commit);
        if (commit is not null) Install(state, commit);
        return result;
    }

    private DateTimeOffset NextCommitTime(DateTimeOffset physicalNow)
    {
        // Hybrid logical clock: physical time, but strictly increasing even if the wall clock steps back.
        _lastTicks = Math.Max(physicalNow.UtcTicks, _lastTicks + 1);
        return new DateTimeOffset(_lastTicks, TimeSpan.Zero);
    }

    /// <summary>Installs a commit's versions into the MVCC map. Caller holds the write lock (or is recovering).</summary>
    private void Install(NamespaceState state, CommitEntry commit)
    {
        _lastRevision = commit.Revision;
        var visible = Volatile.Read(ref _visibleRevision);
        var oldest = Math.Max(Volatile.Read(ref _oldestReadable), Math.Min(commit.Revision - _options.RetainedRevisions + 1, visible));
        Volatile.Write(ref _oldestReadable, oldest);
        foreach (var change in commit.Changes)
        {
            var record = change.Record;
            state.Install(record, oldest);
            if (record.ExpiresAt is { } expires) _expiries.Enqueue((state, record.Key, record.Version), expires.UtcTicks);
        }
        state.PublishLive(commit.Revision, oldest);
        if (commit.Idempotency is { } idem) Remember(state, idem);
        if (commit.Fences is { } fences)
        {
            foreach (var (name, token) in fences) state.Fences[name] = token;
        }
    }

    /// <summary>Makes a commit durable (embedded) or visible (memory). Caller holds the write lock.</summary>
    private Task Commit(CommitEntry commit)
    {
        if (_log is null)
        {
            lock (_publishGate)
            {
                Volatile.Write(ref _visibleRevision, commit.Revision);
                foreach (var change in commit.Changes) Deliver(change);
                TrimHistory();
            }
            return Task.CompletedTask;
        }
        foreach (var change in commit.Changes) _unpublished.Enqueue(change);
        _encodeBuffer.ResetWrittenCount();
        Codec.WriteCommit(_encodeBuffer, commit);
        var durable = _log.Append(commit.Revision, _encodeBuffer.WrittenSpan);
        if (_log.BytesSinceRotation >= _options.SnapshotEveryBytes && _snapshotGate.Wait(0))
            _ = Task.Run(RunBackgroundSnapshotAsync);
        return durable;
    }

    private async Task RunBackgroundSnapshotAsync()
    {
        try
        {
            await SnapshotCoreAsync().ConfigureAwait(false);
        }
        catch (ConcordException)
        {
            // The store already fail-stopped or is closing; the log is still complete, so recovery is unaffected.
        }
        catch (IOException)
        {
            // A failed snapshot leaves the log intact; the next threshold crossing retries.
        }
        finally
        {
            _snapshotGate.Release();
        }
    }

    /// <summary>Completes once everything up to <paramref name="revision"/> is visible to readers.</summary>
    private Task WaitVisible(long revision) => _log is null ? Task.CompletedTask : _log.WaitDurableAsync(revision);

    /// <summary>Called by the log flusher after an fsync: publish the durable revisions to readers and watchers.</summary>
    private void OnDurable(long revision)
    {
        lock (_publishGate)
        {
            Volatile.Write(ref _visibleRevision, revision);
            while (_unpublished.TryPeek(out var change) && change.Revision <= revision)
            {
                _unpublished.TryDequeue(out _);
                Deliver(change);
            }
            TrimHistory();
        }
    }

    // ---------------------------------------------------------------- watch

    private sealed class Subscriber(string ns, WatchRequest request, Channel<ChangeEvent> channel)
    {
        public readonly string Namespace = ns;
        public readonly WatchRequest Request = request;
        public readonly Channel<ChangeEvent> Channel = channel;
    }

    /// <summary>Appends to the history and fans out. Caller holds the publish lock.</summary>
    private void Deliver(ChangeEvent change)
    {
        _history.Add(change);
        for (var i = _subscribers.Count - 1; i >= 0; i--)
        {
            var sub = _subscribers[i];
            if (sub.Namespace != change.Namespace || !sub.Request.Matches(change.Key)) continue;
            if (!sub.Channel.Writer.TryWrite(change))
            {
                // Never block the commit path on a slow watcher: disconnect it with a resume point.
                sub.Channel.Writer.TryComplete(new WatchOverflowException(change.Revision));
                _subscribers.RemoveAt(i);
            }
        }
    }

    private void TrimHistory()
    {
        var keepFrom = Volatile.Read(ref _visibleRevision) - _options.RetainedRevisions + 1;
        // Trim in chunks so the cost is amortized.
        if (_history.Count == 0 || _history[0].Revision >= keepFrom - 1024) return;
        var cut = FirstIndexAtOrAfter(keepFrom);
        _history.RemoveRange(0, cut);
        _historyFrom = Math.Max(_historyFrom, keepFrom);
    }

    private int FirstIndexAtOrAfter(long revision)
    {
        int lo = 0, hi = _history.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_history[mid].Revision < revision) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ChangeEvent> WatchAsync(string ns, WatchRequest request, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        KeyRules.ValidateNamespace(ns);
        ArgumentNullException.ThrowIfNull(request);
        request.Validate();
        ThrowIfDisposed();

        var channel = Channel.CreateBounded<ChangeEvent>(new BoundedChannelOptions(_options.WatchBufferSize)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        var subscriber = new Subscriber(ns, request, channel);
        var backlog = new List<ChangeEvent>();
        lock (_publishGate)
        {
            if (request.FromRevision > 0)
            {
                if (request.FromRevision < _historyFrom) throw new RevisionCompactedException(request.FromRevision, _historyFrom - 1);
                for (var i = FirstIndexAtOrAfter(request.FromRevision); i < _history.Count; i++)
                {
                    var change = _history[i];
                    if (change.Namespace == ns && request.Matches(change.Key)) backlog.Add(change);
                }
            }
            _subscribers.Add(subscriber);
        }
        try
        {
            foreach (var change in backlog) yield return change;
            await foreach (var change in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                // A FromRevision beyond the current one: live changes before it were not asked for.
                if (change.Revision >= request.FromRevision) yield return change;
            }
        }
        finally
        {
            lock (_publishGate) _subscribers.Remove(subscriber);
        }
    }

    // ---------------------------------------------------------------- expiry and housekeeping

    /// <summary>
    /// Stores an idempotency record (writer lock held) and keeps their estimated memory within
    /// <see cref="ConcordEngineOptions.IdempotencyMemoryLimit"/> by forgetting the oldest records first, before their
    /// retention ends if need be: under a write rate the limit cannot hold for the whole retention, the replay window
    /// shrinks instead of memory growing without bound (counted in <see cref="IdempotencyStats.EvictedEarly"/>).
    /// </summary>
    private void Remember(NamespaceState state, IdempotencyEntry entry)
    {
        var bytes = IdempotencyFootprint.Estimate(entry);
        state.Idempotency[entry.Key] = entry;
        _idempotencyExpiries.Enqueue((state, entry, bytes));
        _idempotencyBytes += bytes;
        while (_idempotencyBytes > _options.IdempotencyMemoryLimit && _idempotencyExpiries.Count > 1)
        {
            var (_, oldest, _) = ForgetOldestIdempotency();
            _idempotencyEvicted++;
            _idempotencyLastEvictedAt = oldest.ExpiresAt - _options.IdempotencyRetention;
            ConcordTelemetry.IdempotencyEvictions.Add(1);
        }
    }

    private (NamespaceState Ns, IdempotencyEntry Entry, int Bytes) ForgetOldestIdempotency()
    {
        var oldest = _idempotencyExpiries.Dequeue();
        _idempotencyBytes -= oldest.Bytes;
        if (oldest.Ns.Idempotency.TryGetValue(oldest.Entry.Key, out var current) && ReferenceEquals(current, oldest.Entry))
            oldest.Ns.Idempotency.Remove(oldest.Entry.Key);
        return oldest;
    }

    /// <summary>
    /// How many idempotency records are held, their estimated memory, and how many were forgotten before their retention
    /// ended because of <see cref="ConcordEngineOptions.IdempotencyMemoryLimit"/>.
    /// </summary>
    public IdempotencyStats GetIdempotencyStats()
    {
        lock (_writeGate)
        {
            DateTimeOffset? oldest = _idempotencyExpiries.TryPeek(out var head) ? head.Entry.ExpiresAt - _options.IdempotencyRetention : null;
            return new IdempotencyStats(_idempotencyExpiries.Count, _idempotencyBytes, _idempotencyEvicted, oldest, _idempotencyLastEvictedAt);
        }
    }

    private void StartSweeper() =>
        _sweeper = _time.CreateTimer(static s => ((ConcordEngine)s!).Sweep(), this, _options.ExpirySweepInterval, _options.ExpirySweepInterval);

    /// <summary>Turns expired keys into tombstones (so watchers see the expiry) and forgets expired idempotency records.</summary>
    internal void Sweep()
    {
        lock (_writeGate)
        {
            if (_disposed) return;
            var now = _time.GetUtcNow();
            while (_idempotencyExpiries.TryPeek(out var idem) && idem.Entry.ExpiresAt <= now) ForgetOldestIdempotency();
            Dictionary<NamespaceState, List<ConcordRecord>>? expired = null;
            while (_expiries.TryPeek(out var item, out var at) && at <= now.UtcTicks)
            {
                _expiries.Dequeue();
                if (!item.Ns.Keys.TryGetValue(item.Key, out var entry) || entry.Latest is not { IsDeleted: false } latest || latest.Version != item.Version) continue;
                expired ??= [];
                if (!expired.TryGetValue(item.Ns, out var list)) expired[item.Ns] = list = [];
                list.Add(latest);
            }
            if (expired is null) return;
            foreach (var (state, records) in expired)
            {
                var revision = _lastRevision + 1;
                var time = NextCommitTime(now);
                var changes = records.Select(r => new ChangeEvent(state.Name, ChangeKind.Expire,
                    new ConcordRecord(r.Key, default, r.Version + 1, revision, r.CreateRevision, "concord:ttl", time, null, true))).ToList();
                var commit = new CommitEntry { Revision = revision, Namespace = state.Name, Time = time, Changes = changes };
                Install(state, commit);
                try
                {
                    _ = Commit(commit);
                }
                catch (StoreUnavailableException)
                {
                    return;
                }
            }
        }
    }

    /// <summary>
    /// Writes a snapshot of the current state and deletes the log segments it covers. Runs automatically every
    /// <see cref="ConcordEngineOptions.SnapshotEveryBytes"/>; call it to bound recovery time explicitly.
    /// </summary>
    /// <returns>The revision the snapshot covers (0 in memory mode).</returns>
    public async Task<long> SnapshotAsync(CancellationToken cancellationToken = default)
    {
        if (_log is null) return 0;
        await _snapshotGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await SnapshotCoreAsync().ConfigureAwait(false);
        }
        finally
        {
            _snapshotGate.Release();
        }
    }

    private async Task<long> SnapshotCoreAsync()
    {
        SnapshotImage image;
        lock (_writeGate)
        {
            ThrowIfDisposed();
            // Rotating flushes and fsyncs everything up to the snapshot revision, so the image is durable state.
            _log!.Rotate(_lastRevision + 1);
            image = new SnapshotImage(_lastRevision, _lastTicks, [.. _namespaces.Values.Select(s => new SnapshotImage.Namespace(
                s.Name,
                [.. s.Keys.Values.Select(e => e.Latest).OfType<ConcordRecord>()],
                [.. s.Idempotency.Values],
                new Dictionary<string, long>(s.Fences, StringComparer.Ordinal)))]);
        }
        await Task.Run(() => Snapshots.Write(_dataDirectory!, image)).ConfigureAwait(false);
        return image.Revision;
    }

    private void InstallRecovered(CommitEntry commit)
    {
        var state = _namespaces.GetOrAdd(commit.Namespace, static n => new NamespaceState(n));
        Install(state, commit);
        _history.AddRange(commit.Changes);
    }

    private void InstallSnapshot(SnapshotImage image)
    {
        var now = _time.GetUtcNow();
        foreach (var ns in image.Namespaces)
        {
            var state = _namespaces.GetOrAdd(ns.Name, static n => new NamespaceState(n));
            foreach (var record in ns.Records)
            {
                state.Reset(record);
                if (record.ExpiresAt is { } expires && !record.IsDeleted) _expiries.Enqueue((state, record.Key, record.Version), expires.UtcTicks);
            }
            state.PublishLive(image.Revision, image.Revision);
            foreach (var idem in ns.Idempotency)
            {
                if (idem.ExpiresAt <= now) continue;
                Remember(state, idem);
            }
            foreach (var (name, token) in ns.Fences) state.Fences[name] = token;
        }
    }

    private void ThrowIfDisposed()
    {
        if (_disposed) throw new StoreUnavailableException("The store is closed");
    }

    /// <summary>Flushes the log, stops timers and ends every watch.</summary>
    public async ValueTask DisposeAsync()
    {
        lock (_writeGate)
        {
            if (_disposed) return;
            _disposed = true;
        }
        // A snapshot still writing would otherwise rename files and delete segments after the directory lock is released.
        // Held to the end: a later SnapshotAsync then gets the gate and fails with "closed" instead of waiting forever.
        await _snapshotGate.WaitAsync().ConfigureAwait(false);
        if (_sweeper is not null) await _sweeper.DisposeAsync().ConfigureAwait(false);
        if (_log is not null) await _log.DisposeAsync().ConfigureAwait(false);
        lock (_publishGate)
        {
            foreach (var sub in _subscribers) sub.Channel.Writer.TryComplete(new StoreUnavailableException("The store is closed"));
            _subscribers.Clear();
        }
        if (_directoryLock is not null) await _directoryLock.DisposeAsync().ConfigureAwait(false);
        _snapshotGate.Release();
    }
}
