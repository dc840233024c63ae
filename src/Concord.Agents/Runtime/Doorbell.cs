namespace Concord.Agents.Runtime;

/// <summary>
/// How an idle flow waits for work: a timer of the injected clock that fires at the wait's timeout, or at once when the
/// bell is rung. Waking through a timer (rather than completing a task directly) is what makes handoffs deterministic
/// under a virtual clock: the ring only re-arms the timer for "now", and the clock's driver fires it when every agent is
/// waiting, never while the producer is still running.
/// </summary>
/// <remarks>
/// Thread-safe. At most one armed timer while waiting and none otherwise. A ring while nobody waits is remembered, so
/// the next wait returns at once (no lost wake-up between "found nothing" and "wait").
/// </remarks>
internal sealed class Doorbell
{
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private ITimer? _timer;
    private bool _rung;

    public Doorbell(TimeProvider time) => _time = time;

    /// <summary>Wakes the waiter now (through its timer), or makes the next wait return at once.</summary>
    public void Ring()
    {
        lock (_gate)
        {
            if (_timer is null) _rung = true;
            // Lock order: this gate, then the clock's own lock. The clock runs timer callbacks outside its lock, and
            // the callback below takes no lock, so this cannot deadlock.
            else _timer.Change(TimeSpan.Zero, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>True (and the ring consumed) when a ring is pending.</summary>
    public bool TakeRing()
    {
        lock (_gate)
        {
            var rung = _rung;
            _rung = false;
            return rung;
        }
    }

    /// <summary>Waits until rung or until <paramref name="timeout"/> passes on the clock.</summary>
    public Task WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (timeout < TimeSpan.Zero) timeout = TimeSpan.Zero;
        TaskCompletionSource fired;
        lock (_gate)
        {
            if (_rung)
            {
                _rung = false;
                return Task.CompletedTask;
            }
            if (_timer is not null) throw new InvalidOperationException("A doorbell has one waiter at a time");
            fired = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _timer = _time.CreateTimer(static s => ((TaskCompletionSource)s!).TrySetResult(), fired, timeout, Timeout.InfiniteTimeSpan);
        }
        return WaitCoreAsync(fired.Task, cancellationToken);
    }

    private async Task WaitCoreAsync(Task fired, CancellationToken cancellationToken)
    {
        try
        {
            await fired.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            lock (_gate)
            {
                _timer?.Dispose();
                _timer = null;
            }
        }
    }
}
