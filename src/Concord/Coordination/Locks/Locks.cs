using System.Text.Json.Serialization;

namespace Concord.Coordination.Locks;

/// <summary>Lock modes: one exclusive holder, or any number of shared holders.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<LockMode>))]
public enum LockMode
{
    /// <summary>A single holder; fences every write made under older tokens.</summary>
    Exclusive,

    /// <summary>Compatible with other shared holders.</summary>
    Shared,
}

/// <summary>How an acquisition ended. Expected outcomes are results, not exceptions.</summary>
public enum LockStatus
{
    /// <summary>The lease was granted.</summary>
    Acquired,

    /// <summary>The lock stayed unavailable for the whole wait (or was busy for a try).</summary>
    Timeout,

    /// <summary>Waiting would have closed a cycle in the wait-for graph; this (youngest) waiter was chosen to give up.</summary>
    Deadlock,

    /// <summary>The lock already had the maximum number of waiters (<see cref="StoreLockService.MaxWaitersPerLock"/>); this request was not queued.</summary>
    TooManyWaiters,
}

/// <summary>An acquisition request.</summary>
public sealed record LockRequest
{
    /// <summary>Who asks (the agent id). Required.</summary>
    public required string Owner { get; init; }

    /// <summary>Exclusive or shared. <value>Default: exclusive.</value></summary>
    public LockMode Mode { get; init; } = LockMode.Exclusive;

    /// <summary>Lease length; renew before it ends. <value>Default: 30 s.</value></summary>
    public TimeSpan Ttl { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long to wait in the FIFO queue of waiters; zero tries once. <value>Default: zero.</value></summary>
    public TimeSpan Wait { get; init; }

    internal void Validate()
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(Owner);
        if (Ttl <= TimeSpan.Zero || Ttl > TimeSpan.FromDays(1)) throw new InvalidRequestException("Lease TTL must be between 0 and 1 day");
        if (Wait < TimeSpan.Zero || Wait > TimeSpan.FromHours(1)) throw new InvalidRequestException("Lock wait must be between 0 and 1 hour");
    }
}

/// <summary>The outcome of an acquisition.</summary>
/// <param name="Status">Acquired, timeout or deadlock.</param>
/// <param name="Lease">The lease when acquired.</param>
/// <param name="Holders">Owners holding the lock when it could not be acquired.</param>
/// <param name="Message">Explanation when not acquired.</param>
public sealed record LockResult(LockStatus Status, Lease? Lease, IReadOnlyList<string> Holders, string? Message)
{
    /// <summary>True when the lease was granted.</summary>
    public bool IsAcquired => Status == LockStatus.Acquired;
}

/// <summary>The outcome of <see cref="ILockService.AcquireAllAsync"/>: every lease, or none.</summary>
/// <param name="Status">Acquired only if every lock was.</param>
/// <param name="Leases">Leases in canonical (ordinal) order of names when acquired; empty otherwise.</param>
/// <param name="FailedLock">The lock that could not be acquired.</param>
/// <param name="Message">Explanation when not acquired.</param>
public sealed record MultiLockResult(LockStatus Status, IReadOnlyList<Lease> Leases, string? FailedLock, string? Message)
{
    /// <summary>True when every lease was granted.</summary>
    public bool IsAcquired => Status == LockStatus.Acquired;
}

/// <summary>A lock as seen by <see cref="ILockService.ListAsync"/> (dashboards, diagnostics).</summary>
/// <param name="Name">Lock name.</param>
/// <param name="IssuedToken">Newest fencing token handed out.</param>
/// <param name="FenceFloor">Writes fenced with a token below this are refused.</param>
/// <param name="Holders">Live holders.</param>
/// <param name="Waiters">Live waiters in FIFO order.</param>
public sealed record LockInfo(string Name, long IssuedToken, long FenceFloor, IReadOnlyList<LockHolderInfo> Holders, IReadOnlyList<LockWaiterInfo> Waiters);

/// <summary>One holder of a lock.</summary>
public sealed record LockHolderInfo(string Owner, LockMode Mode, long Token, DateTimeOffset ExpiresAt);

/// <summary>One waiter of a lock.</summary>
public sealed record LockWaiterInfo(string Owner, LockMode Mode, DateTimeOffset Since, DateTimeOffset Until);

/// <summary>
/// Locks as leases with fencing tokens (DESIGN.md "Locks"). Tokens are monotonic per lock; the store refuses a write
/// fenced with a token older than the newest exclusive grant, so a holder paused past its lease cannot corrupt data.
/// </summary>
public interface ILockService
{
    /// <summary>Acquires a lease, waiting FIFO up to <see cref="LockRequest.Wait"/>.</summary>
    ValueTask<LockResult> AcquireAsync(string ns, string name, LockRequest request, CancellationToken cancellationToken = default);

    /// <summary>Acquires several locks in canonical (ordinal) order, so two callers can never deadlock on them; all or none.</summary>
    ValueTask<MultiLockResult> AcquireAllAsync(string ns, IEnumerable<string> names, LockRequest request, CancellationToken cancellationToken = default);

    /// <summary>Extends a lease. False when it was already lost (expired and taken, or released).</summary>
    ValueTask<bool> RenewAsync(Lease lease, TimeSpan? ttl = null, CancellationToken cancellationToken = default);

    /// <summary>Releases a lease. False when it was no longer held.</summary>
    ValueTask<bool> ReleaseAsync(Lease lease, CancellationToken cancellationToken = default);

    /// <summary>Extends the lease <paramref name="leaseId"/> of lock <paramref name="name"/>; null when it was already lost, else the new expiry.</summary>
    ValueTask<DateTimeOffset?> RenewAsync(string ns, string name, string leaseId, TimeSpan ttl, CancellationToken cancellationToken = default);

    /// <summary>Releases the lease <paramref name="leaseId"/> of lock <paramref name="name"/>; false when it was no longer held.</summary>
    ValueTask<bool> ReleaseAsync(string ns, string name, string leaseId, CancellationToken cancellationToken = default);

    /// <summary>Every lock of a namespace with holders and waiters.</summary>
    ValueTask<IReadOnlyList<LockInfo>> ListAsync(string ns, CancellationToken cancellationToken = default);
}

/// <summary>
/// A granted lease. <see cref="Lost"/> fires when the lease expires without renewal or is released.
/// Use <see cref="Fence"/> on writes made under the lock. Disposing releases it.
/// </summary>
/// <remarks>Thread-safe.</remarks>
public sealed class Lease : IAsyncDisposable
{
    private readonly ILockService _service;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _lost = new();
    private readonly Lock _gate = new();
    private ITimer? _expiry;
    private DateTimeOffset _expiresAt;

    internal Lease(ILockService service, TimeProvider time, string ns, string name, string owner, LockMode mode, long token, string leaseId, DateTimeOffset expiresAt)
    {
        _service = service;
        _time = time;
        Namespace = ns;
        Name = name;
        Owner = owner;
        Mode = mode;
        Token = token;
        LeaseId = leaseId;
        SetExpiry(expiresAt);
    }

    /// <summary>Namespace of the lock.</summary>
    public string Namespace { get; }

    /// <summary>Lock name.</summary>
    public string Name { get; }

    /// <summary>Holder.</summary>
    public string Owner { get; }

    /// <summary>Exclusive or shared.</summary>
    public LockMode Mode { get; }

    /// <summary>The fencing token (monotonic per lock).</summary>
    public long Token { get; }

    /// <summary>Unique id of this grant.</summary>
    public string LeaseId { get; }

    /// <summary>When the lease ends unless renewed.</summary>
    public DateTimeOffset ExpiresAt
    {
        get { lock (_gate) return _expiresAt; }
    }

    /// <summary>Fires when the lease is lost (expired or released). Pass it to the work done under the lock.</summary>
    public CancellationToken Lost => _lost.Token;

    /// <summary>True once the lease is lost.</summary>
    public bool IsLost => _lost.IsCancellationRequested;

    /// <summary>The fence to attach to writes made under this lease (<c>Expect.Fenced(lease.Fence)</c>).</summary>
    public Fence Fence => new(Name, Token);

    /// <summary>Extends the lease; false when it was already lost.</summary>
    public ValueTask<bool> RenewAsync(TimeSpan? ttl = null, CancellationToken cancellationToken = default) => _service.RenewAsync(this, ttl, cancellationToken);

    /// <summary>Releases the lease; false when it was no longer held.</summary>
    public ValueTask<bool> ReleaseAsync(CancellationToken cancellationToken = default) => _service.ReleaseAsync(this, cancellationToken);

    internal void SetExpiry(DateTimeOffset expiresAt)
    {
        lock (_gate)
        {
            if (_lost.IsCancellationRequested) return;
            _expiresAt = expiresAt;
            _expiry?.Dispose();
            var due = expiresAt - _time.GetUtcNow();
            if (due <= TimeSpan.Zero)
            {
                _lost.Cancel();
                return;
            }
            _expiry = _time.CreateTimer(static s => ((Lease)s!).Expire(), this, due, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>True when the lease ended by expiry rather than by release.</summary>
    internal bool ExpiredWhileHeld { get; private set; }

    internal void MarkLost()
    {
        lock (_gate)
        {
            _expiry?.Dispose();
            _expiry = null;
        }
        try
        {
            _lost.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private void Expire()
    {
        ExpiredWhileHeld = true;
        MarkLost();
    }

    /// <summary>Releases the lease if still held.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!IsLost)
        {
            try
            {
                await _service.ReleaseAsync(this).ConfigureAwait(false);
            }
            catch (ConcordException)
            {
                // Releasing is best-effort on dispose: an unreleased lease simply expires.
            }
        }
        MarkLost();
    }

    /// <inheritdoc />
    public override string ToString() => $"{Mode} lease on {Namespace}/{Name} for {Owner}, token {Token}";
}
