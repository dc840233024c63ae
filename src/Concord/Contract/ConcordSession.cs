using System.Runtime.CompilerServices;
using System.Text.Json;

namespace Concord;

/// <summary>Backoff for retry helpers (<see cref="ConcordSession.UpdateAsync(string, Func{ConcordRecord?, CancellationToken, ValueTask{JsonElement?}}, UpdateOptions?, CancellationToken)"/>, transactions).</summary>
public sealed record RetryOptions
{
    /// <summary>Defaults: 10 attempts, 10 ms base delay, 1 s cap.</summary>
    public static RetryOptions Default { get; } = new();

    /// <summary>Attempts before giving up with the last conflict. <value>Default: 10.</value></summary>
    public int MaxAttempts { get; init; } = 10;

    /// <summary>Delay before the second attempt; doubles each time. <value>Default: 10 ms.</value></summary>
    public TimeSpan BaseDelay { get; init; } = TimeSpan.FromMilliseconds(10);

    /// <summary>Upper bound of one delay. <value>Default: 1 s.</value></summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Full-jitter delay before attempt <paramref name="attempt"/> (2-based).</summary>
    internal TimeSpan DelayBefore(int attempt, IRandomizer random)
    {
        var exp = BaseDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt - 2, 30));
        var capped = Math.Min(exp, MaxDelay.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(capped * random.NextDouble());
    }

    internal void Validate()
    {
        if (MaxAttempts < 1) throw new ArgumentException("MaxAttempts must be at least 1", nameof(MaxAttempts));
        if (BaseDelay < TimeSpan.Zero || MaxDelay < BaseDelay) throw new ArgumentException("Delays must satisfy 0 ≤ BaseDelay ≤ MaxDelay");
    }
}

/// <summary>Settings of a <see cref="ConcordSession"/>.</summary>
public sealed record SessionOptions
{
    /// <summary>Clock for backoff delays. <value>Default: <see cref="TimeProvider.System"/>.</value></summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Jitter source. Inject a <see cref="SeededRandomizer"/> for reproducible runs. <value>Default: seeded from the agent id.</value></summary>
    public IRandomizer? Randomizer { get; init; }

    /// <summary>Retry policy of the helpers. <value>Default: <see cref="RetryOptions.Default"/>.</value></summary>
    public RetryOptions Retry { get; init; } = RetryOptions.Default;

    /// <summary>
    /// How many keys' causal contexts the session remembers (least recently used are forgotten; a write to a forgotten
    /// key carries no context and counts as concurrent). <value>Default: 10,000.</value>
    /// </summary>
    public int CausalContextCapacity { get; init; } = 10_000;
}

/// <summary>Options for one <see cref="ConcordSession.UpdateAsync(string, Func{ConcordRecord?, CancellationToken, ValueTask{JsonElement?}}, UpdateOptions?, CancellationToken)"/> call.</summary>
public sealed record UpdateOptions
{
    /// <summary>One idempotency key for the whole logical update, reused by every attempt. <value>Default: null.</value></summary>
    public string? IdempotencyKey { get; init; }

    /// <summary>Overrides the session's retry policy. <value>Default: null.</value></summary>
    public RetryOptions? Retry { get; init; }

    /// <summary>TTL of the written value. <value>Default: null.</value></summary>
    public TimeSpan? Ttl { get; init; }
}

/// <summary>The outcome of a retrying helper.</summary>
/// <param name="Write">The final write (applied, or the last conflict when attempts ran out); null if the computation chose not to write.</param>
/// <param name="Attempts">Attempts made (1 = no conflict).</param>
public sealed record UpdateResult(WriteResult? Write, int Attempts)
{
    /// <summary>True when the update was written.</summary>
    public bool IsApplied => Write?.IsApplied == true;

    /// <summary>The record after the update (or the current one on conflict).</summary>
    public ConcordRecord? Record => Write?.Record;
}

/// <summary>
/// One agent's view of one namespace: every call carries the agent id, so records, histories and traces say who wrote what.
/// </summary>
/// <remarks>Thread-safe; cheap to create. Holds no resources: disposing the store ends it.</remarks>
public sealed partial class ConcordSession
{
    private readonly IRandomizer _random;

    // Latest reads carry the agent id (for journals and traces) without allocating per call.
    private readonly ReadOptions _latestRead;

    /// <summary>Creates a session.</summary>
    public ConcordSession(IConcordStore store, string ns, string agentId, SessionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentException.ThrowIfNullOrWhiteSpace(ns);
        ArgumentException.ThrowIfNullOrWhiteSpace(agentId);
        Store = store;
        Namespace = ns;
        AgentId = agentId;
        Options = options ?? new SessionOptions();
        Options.Retry.Validate();
        _random = Options.Randomizer ?? new SeededRandomizer(StableHash(agentId));
        _contexts = new CausalContextCache(Options.CausalContextCapacity);
        _latestRead = new ReadOptions { Agent = agentId };
    }

    /// <summary>The underlying store.</summary>
    public IConcordStore Store { get; }

    /// <summary>The namespace every call addresses.</summary>
    public string Namespace { get; }

    /// <summary>The agent identity recorded on every write.</summary>
    public string AgentId { get; }

    /// <summary>The session's settings.</summary>
    public SessionOptions Options { get; }

    /// <summary>Reads the latest version of <paramref name="key"/>, or null.</summary>
    public ValueTask<ConcordRecord?> GetAsync(string key, CancellationToken cancellationToken = default) =>
        Observe(Store.GetAsync(Namespace, key, _latestRead, cancellationToken));

    /// <summary>Reads <paramref name="key"/> as of <paramref name="revision"/>.</summary>
    public ValueTask<ConcordRecord?> GetAsync(string key, long revision, CancellationToken cancellationToken = default) =>
        Observe(Store.GetAsync(Namespace, key, new ReadOptions { AtRevision = revision, Agent = AgentId }, cancellationToken));

    /// <summary>Reads and deserializes <paramref name="key"/>; default when absent.</summary>
    public async ValueTask<T?> GetValueAsync<T>(string key, CancellationToken cancellationToken = default)
    {
        var record = await GetAsync(key, cancellationToken).ConfigureAwait(false);
        return record is null ? default : record.ValueAs<T>();
    }

    /// <summary>Lists live records under <paramref name="prefix"/> (one page).</summary>
    public ValueTask<ListResult> ListAsync(string prefix = "", string? after = null, int limit = 1000, CancellationToken cancellationToken = default) =>
        Observe(Store.ListAsync(Namespace, new ListRequest { Prefix = prefix, After = after, Limit = limit }, cancellationToken));

    /// <summary>Writes a whole value under an expectation.</summary>
    public ValueTask<WriteResult> PutAsync(string key, JsonElement value, Expectation expect = default, string? idempotencyKey = null, TimeSpan? ttl = null, CancellationToken cancellationToken = default) =>
        Observe(Store.PutAsync(Namespace, key, value, Write(expect, idempotencyKey, ttl, key: key), cancellationToken));

    /// <summary>Serializes and writes <paramref name="value"/> under an expectation.</summary>
    public ValueTask<WriteResult> PutAsync<T>(string key, T value, Expectation expect = default, string? idempotencyKey = null, TimeSpan? ttl = null, CancellationToken cancellationToken = default) =>
        PutAsync(key, JsonSerializer.SerializeToElement(value, JsonDefaults.Web), expect, idempotencyKey, ttl, cancellationToken);

    /// <summary>Deletes <paramref name="key"/> under an expectation.</summary>
    public ValueTask<WriteResult> DeleteAsync(string key, Expectation expect = default, string? idempotencyKey = null, CancellationToken cancellationToken = default) =>
        Observe(Store.DeleteAsync(Namespace, key, Write(expect, idempotencyKey, null, key: key), cancellationToken));

    /// <summary>Applies an atomic patch.</summary>
    public ValueTask<WriteResult> PatchAsync(string key, JsonPatch patch, Expectation expect = default, string? idempotencyKey = null, CancellationToken cancellationToken = default) =>
        Observe(Store.PatchAsync(Namespace, key, patch, Write(expect, idempotencyKey, null, key: key), cancellationToken));

    /// <summary>Atomically adds <paramref name="by"/> to the number at <paramref name="path"/> (default: the whole value's <c>/value</c>).</summary>
    public ValueTask<WriteResult> IncrementAsync(string key, double by = 1, string path = "/value", string? idempotencyKey = null, CancellationToken cancellationToken = default) =>
        PatchAsync(key, JsonPatch.Create().Increment(path, by), default, idempotencyKey, cancellationToken);

    /// <summary>Runs a compare/then/else transaction.</summary>
    public ValueTask<TxnResult> TransactAsync(TxnRequest request, string? idempotencyKey = null, CancellationToken cancellationToken = default) =>
        Observe(Store.TransactAsync(Namespace, WithContexts(request), Write(default, idempotencyKey, null), cancellationToken));

    /// <summary>Watches a key or prefix.</summary>
    public IAsyncEnumerable<ChangeEvent> WatchAsync(WatchRequest request, CancellationToken cancellationToken = default) =>
        Store.WatchAsync(Namespace, request, cancellationToken);

    internal WriteOptions Write(Expectation expect, string? idempotencyKey, TimeSpan? ttl, string? logical = null, string? key = null) => new()
    {
        Expect = expect,
        IdempotencyKey = idempotencyKey,
        Ttl = ttl,
        Agent = AgentId,
        LogicalOperation = logical,
        Context = key is null ? null : GetContext(key),
    };

    /// <summary>
    /// Read → compute → compare-and-swap, retried on conflict with capped exponential backoff and full jitter.
    /// The conflict result carries the current record, so a retry without a backoff delay recomputes without another
    /// read; after a delay the key is read again (what the conflict carried is likely stale by then).
    /// </summary>
    /// <param name="key">Key to update.</param>
    /// <param name="compute">New value from the current record (null when absent); return null to leave the key as it is.
    /// It may run several times: keep it free of side effects other than thinking.</param>
    /// <param name="options">Idempotency key, retry policy, TTL.</param>
    /// <param name="cancellationToken">Cancels between attempts and during waits.</param>
    public async ValueTask<UpdateResult> UpdateAsync(string key, Func<ConcordRecord?, CancellationToken, ValueTask<JsonElement?>> compute,
        UpdateOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(compute);
        var retry = options?.Retry ?? Options.Retry;
        retry.Validate();
        using var activity = Diagnostics.ConcordTelemetry.ActivitySource.StartActivity("concord.update");
        activity?.SetTag(Diagnostics.ConcordTelemetry.Tags.Namespace, Namespace);
        activity?.SetTag(Diagnostics.ConcordTelemetry.Tags.Key, key);
        activity?.SetTag(Diagnostics.ConcordTelemetry.Tags.AgentId, AgentId);
        var current = await GetAsync(key, cancellationToken).ConfigureAwait(false);
        WriteResult? last = null;
        for (var attempt = 1; attempt <= retry.MaxAttempts; attempt++)
        {
            if (attempt > 1)
            {
                Diagnostics.ConcordTelemetry.Retries.Add(1, new KeyValuePair<string, object?>(Diagnostics.ConcordTelemetry.Tags.Operation, "update"));
                activity?.AddEvent(new System.Diagnostics.ActivityEvent("concord.retry", tags: new System.Diagnostics.ActivityTagsCollection
                {
                    [Diagnostics.ConcordTelemetry.Tags.RetryAttempt] = attempt,
                    [Diagnostics.ConcordTelemetry.Tags.Version] = current?.Version ?? 0,
                    ["concord.current_writer"] = current?.Writer,
                }));
                if (retry.DelayBefore(attempt, _random) is var delay && delay > TimeSpan.Zero)
                {
                    await Task.Delay(delay, Options.TimeProvider, cancellationToken).ConfigureAwait(false);
                    // The conflict's record was current before the wait, not after it: recomputing on it would conflict again.
                    current = await GetAsync(key, cancellationToken).ConfigureAwait(false);
                }
            }
            var next = await compute(current, cancellationToken).ConfigureAwait(false);
            if (next is not { } value) return new UpdateResult(null, attempt);
            last = await Observe(Store.PutAsync(Namespace, key, value,
                Write(Expect.Version(current?.Version ?? 0), options?.IdempotencyKey, options?.Ttl, logical: "update:" + key, key: key), cancellationToken)).ConfigureAwait(false);
            activity?.SetTag(Diagnostics.ConcordTelemetry.Tags.RetryAttempt, attempt);
            if (last.IsApplied) return new UpdateResult(last, attempt);
            if (last.Conflict is not (ConflictKind.VersionMismatch or ConflictKind.AlreadyExists or ConflictKind.NotFound))
                return new UpdateResult(last, attempt);
            current = last.Record;
        }
        activity?.SetTag(Diagnostics.ConcordTelemetry.Tags.Conflict, last?.Conflict.ToString());
        return new UpdateResult(last, retry.MaxAttempts);
    }

    /// <summary>Typed <see cref="UpdateAsync(string, Func{ConcordRecord?, CancellationToken, ValueTask{JsonElement?}}, UpdateOptions?, CancellationToken)"/>: <paramref name="compute"/> maps the current value (default when absent) to the new one.</summary>
    public ValueTask<UpdateResult> UpdateAsync<T>(string key, Func<T?, T> compute, UpdateOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(compute);
        return UpdateAsync(key, (record, _) =>
        {
            var current = record is null ? default : record.ValueAs<T>();
            return ValueTask.FromResult<JsonElement?>(JsonSerializer.SerializeToElement(compute(current), JsonDefaults.Web));
        }, options, cancellationToken);
    }

    /// <summary>Starts an interactive optimistic transaction reading at the current revision.</summary>
    public async ValueTask<OptimisticTransaction> BeginTransactionAsync(CancellationToken cancellationToken = default) =>
        new(this, await Store.GetRevisionAsync(cancellationToken).ConfigureAwait(false));

    /// <summary>
    /// Runs <paramref name="body"/> in an optimistic transaction and commits it, re-running the whole body when the
    /// read set changed (serializable: no lost update, no write skew, no phantom).
    /// </summary>
    public async ValueTask<CommitResult> RunTransactionAsync(Func<OptimisticTransaction, CancellationToken, ValueTask> body,
        RetryOptions? retry = null, string? idempotencyKey = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        retry ??= Options.Retry;
        retry.Validate();
        CommitResult? last = null;
        for (var attempt = 1; attempt <= retry.MaxAttempts; attempt++)
        {
            if (attempt > 1)
            {
                Diagnostics.ConcordTelemetry.Retries.Add(1, new KeyValuePair<string, object?>(Diagnostics.ConcordTelemetry.Tags.Operation, "transaction"));
                await Task.Delay(retry.DelayBefore(attempt, _random), Options.TimeProvider, cancellationToken).ConfigureAwait(false);
            }
            var tx = await BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await body(tx, cancellationToken).ConfigureAwait(false);
            }
            catch (RevisionCompactedException)
            {
                continue; // the snapshot aged out while the body ran: start over on a fresh one
            }
            last = await tx.CommitAsync(idempotencyKey, cancellationToken).ConfigureAwait(false) with { Attempts = attempt };
            if (last.Committed || last.Conflict != ConflictKind.ReadSetChanged) return last;
        }
        return last ?? new CommitResult(false, ConflictKind.ReadSetChanged, 0, "the snapshot was compacted on every attempt") { Attempts = retry.MaxAttempts };
    }

    private static int StableHash(string s)
    {
        var h = 17;
        foreach (var c in s) h = unchecked(h * 31 + c);
        return h;
    }
}

/// <summary>The outcome of committing an <see cref="OptimisticTransaction"/>.</summary>
/// <param name="Committed">True when the writes were applied (or there were none).</param>
/// <param name="Conflict">Why not: <see cref="ConflictKind.ReadSetChanged"/>, or an operation's own conflict.</param>
/// <param name="Revision">Commit revision (the snapshot revision for read-only transactions).</param>
/// <param name="Message">Explanation of a conflict.</param>
public sealed record CommitResult(bool Committed, ConflictKind Conflict, long Revision, string? Message)
{
    /// <summary>Attempts made by <see cref="ConcordSession.RunTransactionAsync"/> (1 otherwise).</summary>
    public int Attempts { get; init; } = 1;

    /// <summary>True when the commit result is an idempotent replay.</summary>
    public bool Replayed { get; init; }
}

/// <summary>
/// An interactive optimistic transaction: reads see one snapshot and are recorded (key → revision, prefix → revision);
/// writes are buffered; <see cref="CommitAsync"/> validates that nothing read changed and applies all writes at one revision.
/// </summary>
/// <remarks>Not thread-safe: one agent drives one transaction.</remarks>
public sealed class OptimisticTransaction
{
    private readonly ConcordSession _session;
    private readonly HashSet<string> _readKeys = new(StringComparer.Ordinal);
    private readonly HashSet<string> _readPrefixes = new(StringComparer.Ordinal);
    private readonly List<TxnOp> _writes = [];
    private readonly Dictionary<string, ConcordRecord?> _ownWrites = new(StringComparer.Ordinal);
    private bool _finished;

    internal OptimisticTransaction(ConcordSession session, long snapshotRevision)
    {
        _session = session;
        SnapshotRevision = snapshotRevision;
    }

    /// <summary>The revision every read sees.</summary>
    public long SnapshotRevision { get; }

    /// <summary>Keys read so far.</summary>
    public IReadOnlyCollection<string> ReadKeys => _readKeys;

    /// <summary>Reads <paramref name="key"/> at the snapshot (or this transaction's own buffered put/delete of it).</summary>
    public async ValueTask<ConcordRecord?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        ThrowIfFinished();
        if (_ownWrites.TryGetValue(key, out var own)) return own;
        var record = await _session.Store.GetAsync(_session.Namespace, key, new ReadOptions { AtRevision = SnapshotRevision, Agent = _session.AgentId }, cancellationToken).ConfigureAwait(false);
        _session.Remember(record);
        _readKeys.Add(key);
        return record;
    }

    /// <summary>Reads every live record under <paramref name="prefix"/> at the snapshot; commit fails if the set changes (no phantoms).</summary>
    public async ValueTask<IReadOnlyList<ConcordRecord>> ListAsync(string prefix, CancellationToken cancellationToken = default)
    {
        ThrowIfFinished();
        var all = new List<ConcordRecord>();
        string? after = null;
        while (true)
        {
            var page = await _session.Store.ListAsync(_session.Namespace, new ListRequest { Prefix = prefix, After = after, AtRevision = SnapshotRevision, Limit = 1000 }, cancellationToken).ConfigureAwait(false);
            all.AddRange(page.Records);
            foreach (var record in page.Records) _session.Remember(record);
            if (page.NextAfter is null) break;
            after = page.NextAfter;
        }
        _readPrefixes.Add(prefix);
        return all;
    }

    /// <summary>Buffers a put.</summary>
    public void Put(string key, JsonElement value)
    {
        ThrowIfFinished();
        _writes.Add(TxnOp.Put(key, value) with { Context = _session.GetContext(key) });
        _ownWrites[key] = new ConcordRecord(key, value.Clone(), 0, 0, 0, _session.AgentId, default, null, false);
    }

    /// <summary>Serializes and buffers a put.</summary>
    public void Put<T>(string key, T value) => Put(key, JsonSerializer.SerializeToElement(value, JsonDefaults.Web));

    /// <summary>Buffers a delete.</summary>
    public void Delete(string key)
    {
        ThrowIfFinished();
        _writes.Add(TxnOp.Delete(key) with { Context = _session.GetContext(key) });
        _ownWrites[key] = null;
    }

    /// <summary>Buffers a patch (applied at commit to the then-current value).</summary>
    public void Patch(string key, JsonPatch patch)
    {
        ThrowIfFinished();
        _writes.Add(TxnOp.PatchKey(key, patch));
    }

    /// <summary>Validates the read set and applies the buffered writes atomically.</summary>
    /// <param name="idempotencyKey">Operation id of the logical transaction. A retry that re-runs the transaction (new snapshot,
    /// maybe new values) and writes the same keys gets the original result, marked replayed.</param>
    /// <param name="cancellationToken">Cancels the commit.</param>
    public async ValueTask<CommitResult> CommitAsync(string? idempotencyKey = null, CancellationToken cancellationToken = default)
    {
        ThrowIfFinished();
        _finished = true;
        if (_writes.Count == 0) return new CommitResult(true, ConflictKind.None, SnapshotRevision, null);
        var compares = new List<TxnCompare>(_readKeys.Count + _readPrefixes.Count);
        foreach (var key in _readKeys) compares.Add(TxnCompare.ModRevision(key, CompareOp.LessOrEqual, SnapshotRevision));
        foreach (var prefix in _readPrefixes) compares.Add(TxnCompare.PrefixUnchangedSince(prefix, SnapshotRevision));
        var request = new TxnRequest { Compares = compares, Then = _writes };
        // A retry of the same logical transaction re-reads at a newer snapshot, so its compares (and maybe its values)
        // differ: fingerprint what the transaction writes to, not the payload, as UpdateAsync does.
        var logical = idempotencyKey is null ? null : "txn:" + string.Join(",", _writes.Select(w => $"{w.Kind}:{w.Key}"));
        var result = await _session.Observe(_session.Store.TransactAsync(_session.Namespace, request, _session.Write(default, idempotencyKey, null, logical), cancellationToken)).ConfigureAwait(false);
        if (result.Conflict is { } conflict) return new CommitResult(false, conflict.Conflict, result.Revision, conflict.Message) { Replayed = result.Replayed };
        if (!result.Succeeded)
        {
            return new CommitResult(false, ConflictKind.ReadSetChanged, result.Revision,
                $"something this transaction read (keys: {string.Join(", ", _readKeys.Take(5))}{(_readPrefixes.Count > 0 ? $"; prefixes: {string.Join(", ", _readPrefixes)}" : "")}) changed after revision {SnapshotRevision}")
            { Replayed = result.Replayed };
        }
        return new CommitResult(true, ConflictKind.None, result.Revision, null) { Replayed = result.Replayed };
    }

    private void ThrowIfFinished([CallerMemberName] string? caller = null)
    {
        if (_finished) throw new InvalidOperationException($"{caller}: the transaction was already committed");
    }
}
