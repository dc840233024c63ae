namespace Concord.Lab.Scheduling;

/// <summary>The scheduler's bookkeeping for one agent. Touched only on the scheduler thread.</summary>
internal sealed class AgentState
{
    public AgentState(ControlledScheduler scheduler, AgentSpec spec, int index, int entity)
    {
        Scheduler = scheduler;
        Spec = spec;
        Index = index;
        Entity = entity;
        Clock = new AgentClock(scheduler, this);
    }

    public ControlledScheduler Scheduler { get; }

    public AgentSpec Spec { get; }

    public string Name => Spec.Name;

    /// <summary>Index among the specs given to the run (stable when shrinking removes other agents).</summary>
    public int Index { get; }

    /// <summary>Position among the agents taking part: the entity id strategies see.</summary>
    public int Entity { get; }

    public AgentClock Clock { get; }

    public TimeSpan Skew { get; set; }

    /// <summary>The running incarnation; null before the first start and between a crash and the restart.</summary>
    public Incarnation? Live { get; set; }

    public int Incarnations { get; set; }

    public int Restarts { get; set; }

    /// <summary>The pending scheduling point: completing it resumes the agent inline.</summary>
    public TaskCompletionSource<int>? Gate { get; set; }

    /// <summary>At the start (or restart) point: the next resume invokes the body.</summary>
    public bool StartPending { get; set; } = true;

    /// <summary>Chosen, but held by a pause fault until a timer releases it.</summary>
    public bool Paused { get; set; }

    public string PointLabel { get; set; } = "start";

    /// <summary>What the agent's current timer means, for the trace (<c>LLM answered</c>, <c>latency over</c>).</summary>
    public string? SleepLabel { get; set; }

    /// <summary>The step whose operation the agent is executing (results are attached to it).</summary>
    public ScheduleStep? CurrentStep { get; set; }

    /// <summary>The agent's own recorded decisions (draws, faults, skew), apart from the scheduling choices.</summary>
    public List<int> Choices { get; } = [];

    public AgentStatus? Final { get; set; }

    public Exception? Error { get; set; }

    public bool IsTerminal => Final is not null;

    public bool IsRunnable => Final is null && !Paused && (Gate is not null || StartPending);
}

/// <summary>One life of an agent: the body invocation between a start and a crash (or the end).</summary>
internal sealed class Incarnation(AgentState agent, int number)
{
    public AgentState Agent { get; } = agent;

    public int Number { get; } = number;

    public Task? Body { get; set; }

    /// <summary>Crashed: never resumed again; its timers are disarmed.</summary>
    public bool Dead { get; set; }

    /// <summary>Timers of this incarnation that are armed; a crash disposes them (a dead process's timers do not fire).</summary>
    public HashSet<AgentTimer> ArmedTimers { get; } = [];
}

/// <summary>
/// An agent's view of virtual time: the shared clock plus the agent's skew on wall-clock readings (durations and
/// timers are not skewed). Timers it creates are owned by the running incarnation, so the scheduler knows whom a
/// timer wakes and whether an agent that stopped running is asleep or escaped.
/// </summary>
internal sealed class AgentClock(ControlledScheduler scheduler, AgentState agent) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => scheduler.Clock.GetUtcNow() + agent.Skew;

    public override long GetTimestamp() => scheduler.Clock.GetTimestamp();

    public override long TimestampFrequency => scheduler.Clock.TimestampFrequency;

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(callback);
        return scheduler.CreateAgentTimer(agent, callback, state, dueTime, period);
    }
}

/// <summary>A virtual timer owned by an agent incarnation.</summary>
internal sealed class AgentTimer : ITimer
{
    private readonly ControlledScheduler _scheduler;
    private readonly TimerCallback _callback;
    private readonly object? _state;
    private readonly ITimer _inner;
    private bool _periodic;
    private bool _disposed;

    public AgentTimer(ControlledScheduler scheduler, Incarnation owner, TimerCallback callback, object? state)
    {
        _scheduler = scheduler;
        Owner = owner;
        _callback = callback;
        _state = state;
        _inner = scheduler.Clock.CreateTimer(static s => ((AgentTimer)s!).Fire(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    public Incarnation Owner { get; }

    public bool Change(TimeSpan dueTime, TimeSpan period)
    {
        _scheduler.CheckThread("changed a timer");
        if (_disposed) return false;
        _periodic = period != Timeout.InfiniteTimeSpan && period > TimeSpan.Zero;
        if (dueTime == Timeout.InfiniteTimeSpan || Owner.Dead) Owner.ArmedTimers.Remove(this);
        else Owner.ArmedTimers.Add(this);
        return _inner.Change(Owner.Dead ? Timeout.InfiniteTimeSpan : dueTime, period);
    }

    public void Dispose()
    {
        _disposed = true;
        Owner.ArmedTimers.Remove(this);
        _inner.Dispose();
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>Disarms without running the callback (the owner crashed).</summary>
    public void Kill()
    {
        _disposed = true;
        _inner.Dispose();
    }

    private void Fire()
    {
        if (!_periodic) Owner.ArmedTimers.Remove(this);
        _scheduler.OnAgentTimer(Owner, _callback, _state);
    }
}
