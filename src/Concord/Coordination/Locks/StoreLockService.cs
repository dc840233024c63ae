using System.Text.Json;

namespace Concord.Coordination.Locks;

/// <summary>
/// <see cref="ILockService"/> built on the state contract, like etcd's concurrency package: each lock is one record
/// <c>_sys/locks/{name}</c> holding the token counter, the fence floor, live holders and FIFO waiters, changed only
/// by compare-and-swap. Works on every backend (embedded, PostgreSQL, Redis, HTTP) and is durable with the store.
/// </summary>
/// <remarks>
/// Waiting is event-driven: a waiter watches its lock's record and also wakes when a holder's or waiter's lease
/// ends. Expired holders and waiters are pruned by whoever next changes the record. Times come from the injected
/// <see cref="TimeProvider"/>; clients sharing a lock should share a clock within a small skew (a skewed clock shortens
/// or lengthens leases, but fencing tokens keep writes safe regardless).
/// </remarks>
public sealed class StoreLockService : ILockService
{
    /// <summary>Key prefix of lock records.</summary>
    public const string KeyPrefix = "_sys/locks/";

    private readonly IConcordStore _store;
    private readonly TimeProvider _time;
    private long _ids;

    /// <summary>Creates the service over <paramref name="store"/>.</summary>
    public StoreLockService(IConcordStore store, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>
    /// Most waiters queued on one lock; a further acquisition that would have to wait is refused at once with
    /// <see cref="LockStatus.TooManyWaiters"/> (so one hot key cannot grow its lock record without bound).
    /// <value>Default: 1,000.</value>
    /// </summary>
    public int MaxWaitersPerLock { get; init; } = 1000;

    /// <summary>The record key of lock <paramref name="name"/>.</summary>
    public static string KeyFor(string name) => KeyPrefix + name;

    /// <inheritdoc />
    public async ValueTask<LockResult> AcquireAsync(string ns, string name, LockRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        request.Validate();
        var key = KeyFor(name);
        var started = _time.GetUtcNow();
        var deadline = started + request.Wait;
        using var activity = Diagnostics.ConcordTelemetry.ActivitySource.StartActivity("concord.lock.acquire");
        activity?.SetTag(Diagnostics.ConcordTelemetry.Tags.Namespace, ns);
        activity?.SetTag("concord.lock", name);
        activity?.SetTag(Diagnostics.ConcordTelemetry.Tags.AgentId, request.Owner);
        var result = await AcquireCoreAsync(ns, name, key, request, deadline, cancellationToken).ConfigureAwait(false);
        activity?.SetTag("concord.lock.status", result.Status.ToString());
        if (result.Lease is { } granted)
        {
            activity?.SetTag(Diagnostics.ConcordTelemetry.Tags.FenceToken, granted.Token);
            granted.Lost.Register(static s =>
            {
                var l = (Lease)s!;
                if (l.ExpiredWhileHeld) Diagnostics.ConcordTelemetry.LeasesLost.Add(1, new KeyValuePair<string, object?>("concord.lease.kind", "lock"));
            }, granted);
        }
        Diagnostics.ConcordTelemetry.LockWait.Record((_time.GetUtcNow() - started).TotalSeconds,
            new KeyValuePair<string, object?>("concord.lock.status", result.Status.ToString()));
        return result;
    }

    private async ValueTask<LockResult> AcquireCoreAsync(string ns, string name, string key, LockRequest request, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        string? waiterId = null;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var revision = await _store.GetRevisionAsync(cancellationToken).ConfigureAwait(false);
            var record = await _store.GetAsync(ns, key, null, cancellationToken).ConfigureAwait(false);
            var state = LockState.From(record);
            var now = _time.GetUtcNow();
            state.Prune(now, keepWaiter: waiterId);
            var mine = waiterId is null ? null : state.Waiters.Find(w => w.Id == waiterId);

            if (waiterId is not null && mine is null)
            {
                // Someone pruned our entry because our wait ended by their clock: we are no longer queued.
                waiterId = null;
            }
            if (mine is { Victim: true })
            {
                state.Waiters.Remove(mine);
                await TryWriteAsync(ns, key, state, record, request.Owner, cancellationToken).ConfigureAwait(false);
                return new LockResult(LockStatus.Deadlock, null, state.HolderOwners(),
                    $"waiting for '{name}' closed a cycle in the wait-for graph; {request.Owner} was the youngest waiter and gives up");
            }
            if (state.Holders.Exists(h => h.Owner == request.Owner && (h.Mode == LockMode.Exclusive || request.Mode == LockMode.Exclusive)))
            {
                return new LockResult(LockStatus.Deadlock, null, state.HolderOwners(),
                    $"{request.Owner} already holds '{name}'; waiting for it again would wait forever (locks are not re-entrant)");
            }

            if (state.CanGrant(request.Mode, waiterId))
            {
                var token = state.Issued + 1;
                var leaseId = $"{request.Owner}:{token}:{Interlocked.Increment(ref _ids)}";
                var expires = now + request.Ttl;
                state.Issued = token;
                if (request.Mode == LockMode.Exclusive) state.Floor = token;
                state.Holders.Add(new LockState.Holder { Owner = request.Owner, Mode = request.Mode, Token = token, ExpiresAt = expires, LeaseId = leaseId });
                if (mine is not null) state.Waiters.Remove(mine);
                if (await TryWriteAsync(ns, key, state, record, request.Owner, cancellationToken).ConfigureAwait(false))
                    return new LockResult(LockStatus.Acquired, new Lease(this, _time, ns, name, request.Owner, request.Mode, token, leaseId, expires), [], null);
                continue;
            }

            if (now >= deadline)
            {
                if (mine is not null)
                {
                    state.Waiters.Remove(mine);
                    if (!await TryWriteAsync(ns, key, state, record, request.Owner, cancellationToken).ConfigureAwait(false)) continue;
                }
                return new LockResult(LockStatus.Timeout, null, state.HolderOwners(),
                    request.Wait == TimeSpan.Zero ? $"'{name}' is held by {string.Join(", ", state.HolderOwners())}" : $"'{name}' stayed busy for {request.Wait.TotalSeconds:0.###} s");
            }

            if (mine is null)
            {
                if (state.Waiters.Count >= MaxWaitersPerLock)
                    return new LockResult(LockStatus.TooManyWaiters, null, state.HolderOwners(),
                        $"'{name}' already has {state.Waiters.Count} waiters (the limit is {MaxWaitersPerLock}); try again later");
                var id = $"{request.Owner}:w{Interlocked.Increment(ref _ids)}";
                state.Waiters.Add(new LockState.Waiter { Owner = request.Owner, Mode = request.Mode, Since = now, Until = deadline, Id = id, Lock = name });
                if (!await TryWriteAsync(ns, key, state, record, request.Owner, cancellationToken).ConfigureAwait(false)) continue;
                waiterId = id;
                if (await DetectDeadlockAsync(ns, request.Owner, cancellationToken).ConfigureAwait(false) is { } victim && victim.Id == id)
                    continue; // the loop sees our Victim flag and reports the deadlock
                continue;
            }

            await WaitForChangeAsync(ns, key, revision, state.NextExpiry(deadline), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async ValueTask<MultiLockResult> AcquireAllAsync(string ns, IEnumerable<string> names, LockRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(names);
        // Canonical order: every caller takes locks in the same order, so these acquisitions can never form a cycle.
        var ordered = names.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var leases = new List<Lease>(ordered.Count);
        var deadline = _time.GetUtcNow() + request.Wait;
        foreach (var name in ordered)
        {
            var remaining = deadline - _time.GetUtcNow();
            var result = await AcquireAsync(ns, name, request with { Wait = remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero }, cancellationToken).ConfigureAwait(false);
            if (!result.IsAcquired)
            {
                foreach (var lease in leases) await ReleaseAsync(lease, cancellationToken).ConfigureAwait(false);
                return new MultiLockResult(result.Status, [], name, result.Message);
            }
            leases.Add(result.Lease!);
        }
        return new MultiLockResult(LockStatus.Acquired, leases, null, null);
    }

    /// <inheritdoc />
    public async ValueTask<bool> RenewAsync(Lease lease, TimeSpan? ttl = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var expires = await RenewAsync(lease.Namespace, lease.Name, lease.LeaseId, ttl ?? TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
        if (expires is { } e) lease.SetExpiry(e);
        else lease.MarkLost();
        return expires is not null;
    }

    /// <inheritdoc />
    public async ValueTask<DateTimeOffset?> RenewAsync(string ns, string name, string leaseId, TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        if (ttl <= TimeSpan.Zero || ttl > TimeSpan.FromDays(1)) throw new InvalidRequestException("Lease TTL must be between 0 and 1 day");
        var key = KeyFor(name);
        while (true)
        {
            var record = await _store.GetAsync(ns, key, null, cancellationToken).ConfigureAwait(false);
            var state = LockState.From(record);
            var now = _time.GetUtcNow();
            var holder = state.Holders.Find(h => h.LeaseId == leaseId);
            if (holder is null || holder.ExpiresAt <= now) return null;
            holder.ExpiresAt = now + ttl;
            state.Prune(now, keepWaiter: null);
            if (await TryWriteAsync(ns, key, state, record, holder.Owner, cancellationToken).ConfigureAwait(false)) return holder.ExpiresAt;
        }
    }

    /// <inheritdoc />
    public async ValueTask<bool> ReleaseAsync(Lease lease, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var released = await ReleaseAsync(lease.Namespace, lease.Name, lease.LeaseId, cancellationToken).ConfigureAwait(false);
        lease.MarkLost();
        return released;
    }

    /// <inheritdoc />
    public async ValueTask<bool> ReleaseAsync(string ns, string name, string leaseId, CancellationToken cancellationToken = default)
    {
        var key = KeyFor(name);
        while (true)
        {
            var record = await _store.GetAsync(ns, key, null, cancellationToken).ConfigureAwait(false);
            var state = LockState.From(record);
            var now = _time.GetUtcNow();
            var holder = state.Holders.Find(h => h.LeaseId == leaseId);
            if (holder is null) return false;
            state.Holders.Remove(holder);
            state.Prune(now, keepWaiter: null);
            if (await TryWriteAsync(ns, key, state, record, holder.Owner, cancellationToken).ConfigureAwait(false)) return true;
        }
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<LockInfo>> ListAsync(string ns, CancellationToken cancellationToken = default)
    {
        var now = _time.GetUtcNow();
        var result = new List<LockInfo>();
        foreach (var record in await ReadAllAsync(ns, cancellationToken).ConfigureAwait(false))
        {
            var state = LockState.From(record);
            state.Prune(now, keepWaiter: null);
            result.Add(new LockInfo(record.Key[KeyPrefix.Length..], state.Issued, state.Floor,
                [.. state.Holders.Select(h => new LockHolderInfo(h.Owner, h.Mode, h.Token, h.ExpiresAt))],
                [.. state.Waiters.Select(w => new LockWaiterInfo(w.Owner, w.Mode, w.Since, w.Until))]));
        }
        return result;
    }

    private async Task<List<ConcordRecord>> ReadAllAsync(string ns, CancellationToken cancellationToken)
    {
        var all = new List<ConcordRecord>();
        string? after = null;
        long? at = null;
        do
        {
            var page = await _store.ListAsync(ns, new ListRequest { Prefix = KeyPrefix, After = after, AtRevision = at }, cancellationToken).ConfigureAwait(false);
            all.AddRange(page.Records);
            after = page.NextAfter;
            at = page.Revision;
        }
        while (after is not null);
        return all;
    }

    /// <summary>
    /// Builds the wait-for graph of the namespace (waiter → holders and incompatible earlier waiters) and, if it has a
    /// cycle through <paramref name="owner"/>, flags the cycle's youngest waiter as the victim.
    /// </summary>
    private async Task<LockState.Waiter?> DetectDeadlockAsync(string ns, string owner, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var records = await ReadAllAsync(ns, cancellationToken).ConfigureAwait(false);
        var edges = new Dictionary<string, List<(string To, LockState.Waiter Via)>>(StringComparer.Ordinal);
        foreach (var record in records)
        {
            var state = LockState.From(record);
            state.Prune(now, keepWaiter: null);
            for (var i = 0; i < state.Waiters.Count; i++)
            {
                var w = state.Waiters[i];
                if (w.Victim) continue;
                var blockers = state.Holders.Where(h => h.Mode == LockMode.Exclusive || w.Mode == LockMode.Exclusive).Select(h => h.Owner)
                    .Concat(state.Waiters.Take(i).Where(x => !x.Victim && (x.Mode == LockMode.Exclusive || w.Mode == LockMode.Exclusive)).Select(x => x.Owner));
                if (!edges.TryGetValue(w.Owner, out var list)) edges[w.Owner] = list = [];
                foreach (var b in blockers)
                {
                    if (b != w.Owner) list.Add((b, w));
                }
            }
        }
        var cycle = FindCycle(owner, edges);
        if (cycle is null) return null;
        var victim = cycle.OrderByDescending(w => w.Since).ThenByDescending(w => w.Id, StringComparer.Ordinal).First();
        await MarkVictimAsync(ns, victim, cancellationToken).ConfigureAwait(false);
        return victim;
    }

    private static List<LockState.Waiter>? FindCycle(string start, Dictionary<string, List<(string To, LockState.Waiter Via)>> edges)
    {
        // Depth-first search for a path start → … → start; returns the waiter entries along it.
        var path = new List<LockState.Waiter>();
        var visited = new HashSet<string>(StringComparer.Ordinal);
        return Visit(start) ? path : null;

        bool Visit(string node)
        {
            if (!edges.TryGetValue(node, out var next)) return false;
            foreach (var (to, via) in next)
            {
                path.Add(via);
                if (to == start) return true;
                if (visited.Add(to) && Visit(to)) return true;
                path.RemoveAt(path.Count - 1);
            }
            return false;
        }
    }

    private async Task MarkVictimAsync(string ns, LockState.Waiter victim, CancellationToken cancellationToken)
    {
        var key = KeyFor(victim.Lock);
        while (true)
        {
            var record = await _store.GetAsync(ns, key, null, cancellationToken).ConfigureAwait(false);
            var state = LockState.From(record);
            var entry = state.Waiters.Find(w => w.Id == victim.Id);
            if (entry is null || entry.Victim) return;
            entry.Victim = true;
            if (await TryWriteAsync(ns, key, state, record, victim.Owner, cancellationToken).ConfigureAwait(false)) return;
        }
    }

    private async Task<bool> TryWriteAsync(string ns, string key, LockState state, ConcordRecord? read, string agent, CancellationToken cancellationToken)
    {
        var result = await _store.PutAsync(ns, key, state.ToJson(), new WriteOptions { Expect = Expect.Version(read?.Version ?? 0), Agent = agent }, cancellationToken).ConfigureAwait(false);
        return result.IsApplied;
    }

    private async Task WaitForChangeAsync(string ns, string key, long afterRevision, DateTimeOffset wakeAt, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var due = wakeAt - _time.GetUtcNow();
        if (due <= TimeSpan.Zero) return;
        var delay = Task.Delay(due, _time, cts.Token);
        var watch = WaitForWatchAsync(ns, key, afterRevision + 1, cts.Token);
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

    private async Task WaitForWatchAsync(string ns, string key, long fromRevision, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var _ in _store.WatchAsync(ns, new WatchRequest { Key = key, FromRevision = fromRevision }, cancellationToken).ConfigureAwait(false))
                return;
        }
        catch (RevisionCompactedException)
        {
            // Too far behind to replay: re-reading the record is just as good.
        }
    }

    /// <summary>The JSON document stored in a lock record.</summary>
    internal sealed class LockState
    {
        public long Issued { get; set; }
        public long Floor { get; set; }
        public List<Holder> Holders { get; set; } = [];
        public List<Waiter> Waiters { get; set; } = [];

        public sealed class Holder
        {
            public string Owner { get; set; } = "";
            public LockMode Mode { get; set; }
            public long Token { get; set; }
            public DateTimeOffset ExpiresAt { get; set; }
            public string LeaseId { get; set; } = "";
        }

        public sealed class Waiter
        {
            public string Owner { get; set; } = "";
            public LockMode Mode { get; set; }
            public DateTimeOffset Since { get; set; }
            public DateTimeOffset Until { get; set; }
            public string Id { get; set; } = "";
            public string Lock { get; set; } = "";
            public bool Victim { get; set; }
        }

        public static LockState From(ConcordRecord? record)
        {
            if (record is null) return new LockState();
            try
            {
                return record.Value.Deserialize<LockState>(JsonDefaults.Web) ?? new LockState();
            }
            catch (JsonException e)
            {
                throw new InvalidRequestException($"'{record.Key}' is not a lock record ({e.Message}); keys under {KeyPrefix} are reserved");
            }
        }

        public JsonElement ToJson() => JsonSerializer.SerializeToElement(this, JsonDefaults.Web);

        public void Prune(DateTimeOffset now, string? keepWaiter)
        {
            Holders.RemoveAll(h => h.ExpiresAt <= now);
            Waiters.RemoveAll(w => w.Until <= now && w.Id != keepWaiter);
        }

        public List<string> HolderOwners() => [.. Holders.Select(h => h.Owner)];

        /// <summary>Compatible with the holders, and FIFO-fair: nobody incompatible waits ahead of us.</summary>
        public bool CanGrant(LockMode mode, string? waiterId)
        {
            if (Holders.Exists(h => h.Mode == LockMode.Exclusive || mode == LockMode.Exclusive)) return false;
            foreach (var w in Waiters)
            {
                if (w.Id == waiterId) return true;
                if (w.Victim) continue;
                if (w.Mode == LockMode.Exclusive || mode == LockMode.Exclusive) return false;
            }
            return true;
        }

        /// <summary>The earliest moment the record's state changes by itself (a lease or wait ending), capped by <paramref name="deadline"/>.</summary>
        public DateTimeOffset NextExpiry(DateTimeOffset deadline)
        {
            var next = deadline;
            foreach (var h in Holders) if (h.ExpiresAt < next) next = h.ExpiresAt;
            foreach (var w in Waiters) if (w.Until < next) next = w.Until;
            return next;
        }
    }
}
