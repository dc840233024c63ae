using Concord.Internal;

namespace Concord.Lab.Time;

/// <summary>
/// A deterministic virtual clock: time stands still until every agent is waiting on one of its timers, then jumps
/// to the earliest due timer and fires it. Multi-second "LLM think times" cost nothing, and a run is a pure
/// function of its inputs (the seed).
/// </summary>
/// <remarks>
/// <para>
/// <see cref="RunAsync"/> is the driver. It starts the agents one at a time and, whenever the system is
/// <em>quiescent</em> (every unfinished agent waits on an armed timer), fires the single earliest timer (ties
/// in arming order). Only the agent woken by that timer runs until its next wait, so agents never overlap in
/// real time: their interleaving is decided by virtual due times alone, not by the thread pool. Real
/// asynchronous work an agent awaits (a durable write waiting for fsync) is simply waited for; virtual time
/// does not advance meanwhile.
/// </para>
/// <para>
/// Contract for agents: wait only through this provider's timers (<c>Task.Delay(delay, provider)</c>, the retry
/// backoff of a session built with it) or on real work that completes on its own; at most one armed timer per
/// waiting agent, and no timers of anyone else (give the store under test its own clock). Waiting for another
/// agent by any other means (a lock, a channel) would never look quiescent.
/// </para>
/// <para>
/// <see cref="Task.Delay(TimeSpan, TimeProvider)"/> has millisecond resolution and completes synchronously for
/// delays under 1 ms; use whole milliseconds for meaningful delays.
/// </para>
/// <para>Thread-safe. Timer callbacks run on the thread that calls <see cref="RunAsync"/> or <see cref="Advance"/>, outside any lock.</para>
/// </remarks>
public sealed class VirtualTimeProvider : TimeProvider
{
    /// <summary>The wall-clock instant virtual time starts at: 2025-01-01T00:00:00Z.</summary>
    public static readonly DateTimeOffset DefaultEpoch = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private readonly Lock _gate = new();
    private readonly PriorityQueue<(VirtualTimer Timer, long Generation), (long Due, long Sequence)> _queue = new();
    private readonly DateTimeOffset _epoch;
    private long _now; // elapsed ticks since the epoch
    private long _sequence;
    private int _armed;
    private Action? _changed;

    /// <summary>Creates a clock that reads <paramref name="epoch"/> (default <see cref="DefaultEpoch"/>) at elapsed zero.</summary>
    public VirtualTimeProvider(DateTimeOffset? epoch = null) => _epoch = epoch ?? DefaultEpoch;

    /// <summary>
    /// Real-time pacing of <see cref="RunAsync"/>: before it fires a timer, the driver waits this many real seconds per
    /// virtual second the clock is about to jump (1.0 = think times take as long as they say; 0.5 = twice as fast).
    /// Only the wall-clock spacing changes, never the order in which timers fire, so a paced run does exactly what an
    /// unpaced one does — slowly enough for a person to watch it (<c>concord demo --serve</c>).
    /// <value>Default: 0 (as fast as possible).</value>
    /// </summary>
    public double Pace
    {
        get;
        init
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            field = value;
        }
    }

    /// <summary>The real clock that <see cref="Pace"/> waits on. <value>Default: <see cref="TimeProvider.System"/>.</value></summary>
    public TimeProvider PaceClock { get; init; } = TimeProvider.System;

    /// <summary>Virtual time elapsed since the clock was created.</summary>
    public TimeSpan Elapsed
    {
        get
        {
            lock (_gate) return new TimeSpan(_now);
        }
    }

    /// <summary>Timers currently armed (created or changed with a finite due time, not yet fired or disposed).</summary>
    public int ArmedTimers
    {
        get
        {
            lock (_gate) return _armed;
        }
    }

    /// <inheritdoc />
    public override DateTimeOffset GetUtcNow() => _epoch + Elapsed;

    /// <inheritdoc />
    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    /// <inheritdoc />
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    /// <inheritdoc />
    public override long GetTimestamp()
    {
        lock (_gate) return _now;
    }

    /// <inheritdoc />
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(callback);
        var timer = new VirtualTimer(this, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    /// <summary>
    /// Fires the earliest armed timer if it is due within <paramref name="limit"/> of now (any, when null):
    /// advances the clock to its due time and runs its callback on the calling thread.
    /// </summary>
    /// <returns>False when no armed timer is due within the limit (the clock then moves by the limit, if given).</returns>
    public bool Advance(TimeSpan? limit = null)
    {
        VirtualTimer timer;
        lock (_gate)
        {
            var horizon = limit is { } l ? _now + l.Ticks : long.MaxValue;
            while (true)
            {
                if (!_queue.TryPeek(out var entry, out var when) || when.Due > horizon)
                {
                    if (limit is not null) _now = horizon;
                    return false;
                }
                _queue.Dequeue();
                if (entry.Timer.Generation != entry.Generation) continue; // changed or disposed since it was queued
                timer = entry.Timer;
                _now = Math.Max(_now, when.Due);
                if (timer.Period > 0)
                    Enqueue(timer, _now + timer.Period);
                else
                    Disarm(timer);
                break;
            }
        }
        timer.Callback(timer.State);
        return true;
    }

    /// <summary>
    /// Runs <paramref name="agents"/> in virtual time until all of them finish (see the remarks of the type).
    /// Agents are started in list order, each once the previous one is waiting or done.
    /// </summary>
    /// <returns>The virtual time elapsed during the run.</returns>
    /// <exception cref="InvalidOperationException">Another run is in progress on this clock.</exception>
    /// <remarks>When agents fail, the others still run to completion; then the first failure is rethrown.</remarks>
    public async Task<TimeSpan> RunAsync(IReadOnlyList<Func<CancellationToken, Task>> agents, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(agents);
        var start = Elapsed;
        var signal = new AsyncPulse();
        lock (_gate)
        {
            if (_changed is not null) throw new InvalidOperationException("Another run is in progress on this clock");
            _changed = signal.Pulse;
        }
        var tasks = new List<Task>(agents.Count);
        try
        {
            foreach (var agent in agents)
            {
                ArgumentNullException.ThrowIfNull(agent);
                // Task.Run so an agent that never awaits cannot run on (and block) the driver's thread.
                var task = Task.Run(() => agent(cancellationToken), cancellationToken);
                _ = task.ContinueWith(static (_, s) => ((AsyncPulse)s!).Pulse(), signal, CancellationToken.None,
                    TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                tasks.Add(task);
                await WaitQuiescentAsync(tasks, signal, cancellationToken).ConfigureAwait(false);
            }
            while (tasks.Exists(static t => !t.IsCompleted))
            {
                if (Pace > 0 && UntilNextTimer() is { } gap && gap > TimeSpan.Zero)
                    await Task.Delay(gap * Pace, PaceClock, cancellationToken).ConfigureAwait(false);
                Advance();
                await WaitQuiescentAsync(tasks, signal, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            lock (_gate) _changed = null;
        }
        await Task.WhenAll(tasks).ConfigureAwait(false);
        return Elapsed - start;
    }

    /// <summary>Virtual time until the earliest armed timer is due, or null when none is armed.</summary>
    private TimeSpan? UntilNextTimer()
    {
        lock (_gate)
        {
            while (_queue.TryPeek(out var entry, out var when))
            {
                if (entry.Timer.Generation == entry.Generation) return new TimeSpan(Math.Max(0, when.Due - _now));
                _queue.Dequeue(); // changed or disposed since it was queued
            }
            return null;
        }
    }

    /// <summary>Waits until every unfinished agent waits on an armed timer.</summary>
    private async Task WaitQuiescentAsync(List<Task> tasks, AsyncPulse signal, CancellationToken cancellationToken)
    {
        while (true)
        {
            // Take the wake-up task before checking, so a change between the check and the await is not missed.
            var changed = signal.Next;
            var live = 0;
            foreach (var t in tasks)
            {
                if (!t.IsCompleted) live++;
            }
            // ≥ rather than ==: a stray extra timer must not hang the run (see the contract in the remarks).
            if (live == 0 || ArmedTimers >= live) return;
            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private bool Change(VirtualTimer timer, TimeSpan dueTime, TimeSpan period)
    {
        if (dueTime < TimeSpan.Zero && dueTime != Timeout.InfiniteTimeSpan) throw new ArgumentOutOfRangeException(nameof(dueTime));
        if (period < TimeSpan.Zero && period != Timeout.InfiniteTimeSpan) throw new ArgumentOutOfRangeException(nameof(period));
        Action? changed;
        lock (_gate)
        {
            if (timer.Disposed) return false;
            Disarm(timer);
            timer.Period = period == Timeout.InfiniteTimeSpan ? 0 : period.Ticks;
            if (dueTime == Timeout.InfiniteTimeSpan) return true;
            Enqueue(timer, _now + dueTime.Ticks);
            changed = _changed;
        }
        changed?.Invoke();
        return true;
    }

    private void Dispose(VirtualTimer timer)
    {
        lock (_gate)
        {
            Disarm(timer);
            timer.Disposed = true;
        }
    }

    // Caller holds _gate.
    private void Enqueue(VirtualTimer timer, long due)
    {
        if (!timer.Armed) _armed++;
        timer.Armed = true;
        timer.Generation++;
        _queue.Enqueue((timer, timer.Generation), (due, _sequence++));
    }

    // Caller holds _gate. The queue entry stays and is skipped by generation when dequeued.
    private void Disarm(VirtualTimer timer)
    {
        if (timer.Armed) _armed--;
        timer.Armed = false;
        timer.Generation++;
    }

    private sealed class VirtualTimer(VirtualTimeProvider owner, TimerCallback callback, object? state) : ITimer
    {
        // Guarded by owner._gate.
        public long Generation;
        public long Period;
        public bool Armed;
        public bool Disposed;

        public TimerCallback Callback { get; } = callback;

        public object? State { get; } = state;

        public bool Change(TimeSpan dueTime, TimeSpan period) => owner.Change(this, dueTime, period);

        public void Dispose() => owner.Dispose(this);

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
