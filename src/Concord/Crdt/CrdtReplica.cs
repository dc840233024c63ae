using System.Security.Cryptography;
using System.Text;

namespace Concord.Crdt;

/// <summary>The outcome of <see cref="CrdtReplica{T}.SyncAsync"/>.</summary>
/// <param name="Pushed">True when a batch of local deltas was merged into the store by this call.</param>
/// <param name="Replayed">True when the store answered the push from its idempotency record (an earlier attempt had landed).</param>
/// <param name="Version">The key's version the replica pulled (0 when the key is absent).</param>
/// <param name="Revision">The revision of the push, or of the read when nothing was pushed.</param>
public sealed record CrdtSyncResult(bool Pushed, bool Replayed, long Version, long Revision);

/// <summary>
/// A client-side replica of one CRDT key: an agent mutates a local copy without the network (offline), deltas
/// accumulate, and <see cref="SyncAsync"/> pushes their join with one merge and pulls the merged state.
/// </summary>
/// <remarks>
/// <para>
/// Safe under retries and duplicates: each batch is sent with an idempotency key derived from its content, so a retry
/// of a batch whose reply was lost is answered from the store's record; a batch that failed is kept and re-sent
/// (joined with newer deltas) on the next sync; and merging a delta twice is harmless anyway (joins are idempotent).
/// </para>
/// <para>
/// <see cref="ReplicaId"/> must be unique among everything that mutates the key (two replicas sharing an id can issue
/// the same dot and lose updates): use one id per process or worker, e.g. <c>{agent}/{instance}</c>. To survive a
/// restart, persist <see cref="State"/> and <see cref="Pending"/> and pass them back to the constructor.
/// </para>
/// <para>Thread-safe: mutations may run concurrently with a sync; concurrent syncs are serialized.</para>
/// </remarks>
/// <typeparam name="T">The CRDT type stored at the key.</typeparam>
public sealed class CrdtReplica<T> where T : CrdtState, ICrdt<T>
{
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _syncGate = new(1, 1);
    private T _state;
    private T? _pending;  // joined deltas not yet sent
    private T? _inFlight; // the batch being (or last unsuccessfully) sent

    /// <summary>Creates a replica of <paramref name="key"/>.</summary>
    /// <param name="key">The key whose state the replica mirrors.</param>
    /// <param name="replicaId">This replica's id in the CRDT's dots and counters (unique per replica).</param>
    /// <param name="state">A previously persisted local state. <value>Default: empty.</value></param>
    /// <param name="pending">Previously persisted unsent deltas. <value>Default: none.</value></param>
    public CrdtReplica(string key, string replicaId, T? state = null, T? pending = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        Dot.ValidateActor(replicaId);
        Key = key;
        ReplicaId = replicaId;
        _state = state ?? T.Empty;
        _pending = pending;
        if (pending is not null) _state = _state.Merge(pending);
    }

    /// <summary>The key.</summary>
    public string Key { get; }

    /// <summary>This replica's id.</summary>
    public string ReplicaId { get; }

    /// <summary>The local view: the last pulled state joined with every local delta.</summary>
    public T State
    {
        get
        {
            lock (_gate) return _state;
        }
    }

    /// <summary>Local deltas not yet acknowledged by the store (joined), or null.</summary>
    public T? Pending
    {
        get
        {
            lock (_gate) return Join(_inFlight, _pending);
        }
    }

    /// <summary>True when some local change has not reached the store yet.</summary>
    public bool HasPendingChanges => Pending is not null;

    /// <summary>
    /// Mutates the local copy: <paramref name="mutator"/> gets the current state and this replica's id and returns a delta
    /// (e.g. <c>(s, id) =&gt; s.Increment(id)</c>). Works offline. Returns the delta.
    /// </summary>
    public T Update(Func<T, string, T> mutator)
    {
        ArgumentNullException.ThrowIfNull(mutator);
        lock (_gate)
        {
            var delta = mutator(_state, ReplicaId);
            _state = _state.Merge(delta);
            _pending = _pending is null ? delta : _pending.Merge(delta);
            return delta;
        }
    }

    /// <summary>Joins a state or delta received from elsewhere (another replica, a watch) into the local view, without re-sending it.</summary>
    public void Receive(T remote)
    {
        ArgumentNullException.ThrowIfNull(remote);
        lock (_gate) _state = _state.Merge(remote);
    }

    /// <summary>
    /// Pushes the joined local deltas with one merge (idempotency key derived from the batch) and pulls the merged state.
    /// If the push fails, the batch stays pending and the exception propagates; call again to retry.
    /// </summary>
    /// <exception cref="CrdtTypeMismatchException">The key holds a plain value or another CRDT type.</exception>
    public async ValueTask<CrdtSyncResult> SyncAsync(ConcordSession session, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        await _syncGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            T? batch;
            lock (_gate)
            {
                _inFlight = Join(_inFlight, _pending);
                _pending = null;
                batch = _inFlight;
            }
            ConcordRecord? pulled = null;
            bool pushed = false, replayed = false;
            long revision;
            if (batch is not null)
            {
                var result = await session.MergeAsync(Key, batch, BatchKey(batch), cancellationToken).ConfigureAwait(false);
                if (!result.IsApplied) throw new InvalidOperationException($"Merge into '{Key}' was not applied: {result.Message}");
                lock (_gate) _inFlight = null;
                pushed = true;
                replayed = result.Replayed;
                revision = result.Revision;
                pulled = result.Record;
            }
            else
            {
                revision = await session.Store.GetRevisionAsync(cancellationToken).ConfigureAwait(false);
            }
            // A replayed answer is the state as of the original merge: read the current one instead.
            if (pulled is null || replayed) pulled = await session.GetAsync(Key, cancellationToken).ConfigureAwait(false);
            if (pulled is not null)
            {
                var remote = CrdtState.Parse<T>(pulled.Value);
                lock (_gate) _state = _state.Merge(remote);
            }
            return new CrdtSyncResult(pushed, replayed, pulled?.Version ?? 0, revision);
        }
        finally
        {
            _syncGate.Release();
        }
    }

    private string BatchKey(T batch)
    {
        // Content-addressed: a retry of the same batch replays; a different batch never collides, even after a restart.
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(Key + "\n" + batch.ToJsonString()));
        return $"crdt:{ReplicaId}:{Convert.ToHexStringLower(hash.AsSpan(0, 16))}";
    }

    private static T? Join(T? a, T? b) => a is null ? b : b is null ? a : a.Merge(b);
}
