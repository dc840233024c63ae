using Concord.Lab.History;

namespace Concord.Lab.Scheduling;

/// <summary>
/// An agent's handle on the scheduled run: its clock, its scheduling points and "LLM calls", recorded random draws,
/// and the run's history. Passed to each <see cref="AgentBody"/>; one per incarnation (a restart gets a new one).
/// </summary>
/// <remarks>Use only from the agent's own code, on the scheduler thread.</remarks>
public sealed class LabAgent
{
    private readonly ControlledScheduler _scheduler;
    private readonly AgentState _state;
    private readonly Incarnation _incarnation;

    internal LabAgent(ControlledScheduler scheduler, AgentState state, Incarnation incarnation)
    {
        _scheduler = scheduler;
        _state = state;
        _incarnation = incarnation;
        Randomizer = new DecisionRandomizer(scheduler, state);
    }

    /// <summary>Agent id.</summary>
    public string Name => _state.Name;

    /// <summary>Index of the agent among the run's agent specs.</summary>
    public int Index => _state.Index;

    /// <summary>0 for the first start, +1 per restart after a crash.</summary>
    public int Incarnation => _incarnation.Number;

    /// <summary>The history process id of this incarnation: a restarted agent is a new process, as in Jepsen (its crashed operation stays pending forever).</summary>
    public int Process => _scheduler.ProcessOf(_incarnation);

    /// <summary>The agent's clock: virtual time with the agent's skew on wall-clock readings. Every wait must go through it.</summary>
    public TimeProvider Time => _state.Clock;

    /// <summary>The offset of <see cref="Time"/>'s wall clock from true virtual time (chaos clock skew; zero by default).</summary>
    public TimeSpan ClockSkew => _state.Skew;

    /// <summary>The scheduler running the agent.</summary>
    public ControlledScheduler Scheduler => _scheduler;

    /// <summary>The run's history recorder; record with <see cref="Process"/> as the process id.</summary>
    public HistoryRecorder History => _scheduler.History;

    /// <summary>Backoff jitter whose every draw is a recorded decision of the schedule (so retries replay exactly).</summary>
    public IRandomizer Randomizer { get; }

    /// <summary>Stops at a scheduling point (a simulated tool call, a message): other agents may run before this one continues.</summary>
    public Task PointAsync(string label)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(label);
        return _scheduler.EnterPointAsync(label);
    }

    /// <summary>
    /// A simulated LLM call: a scheduling point labelled <c>LLM: <paramref name="what"/></c>, then a think time drawn
    /// (as a recorded decision) from [<paramref name="min"/>, <paramref name="max"/>] of virtual time, during which other agents run.
    /// </summary>
    /// <returns>The think time.</returns>
    public async Task<TimeSpan> ThinkAsync(string what, TimeSpan min, TimeSpan max, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(what);
        var step = await _scheduler.EnterPointAsync("LLM: " + what).ConfigureAwait(false);
        var ms = Draw((int)min.TotalMilliseconds, (int)max.TotalMilliseconds);
        if (_scheduler.StepOf(step) is { } s) ControlledScheduler.Annotate(s, $"thinks {ms} ms");
        var think = TimeSpan.FromMilliseconds(ms);
        await SleepAsync(think, "answer to " + what, cancellationToken).ConfigureAwait(false);
        return think;
    }

    /// <summary>Waits <paramref name="delay"/> of virtual time on <see cref="Time"/>; <paramref name="label"/> names the wake-up in the trace.</summary>
    public Task SleepAsync(TimeSpan delay, string? label = null, CancellationToken cancellationToken = default)
    {
        _state.SleepLabel = label;
        return Task.Delay(delay, Time, cancellationToken);
    }

    /// <summary>A random integer in [<paramref name="min"/>, <paramref name="max"/>], recorded as a decision of the schedule (shrinking pushes it towards <paramref name="min"/>).</summary>
    public int Draw(int min, int max) => _scheduler.Draw(min, max, _state);

    /// <summary>A session of this agent on <paramref name="store"/> (pass the scheduled store), with the agent's clock and recorded jitter.</summary>
    public ConcordSession Session(IConcordStore store, string ns, RetryOptions? retry = null) =>
        new(store, ns, Name, new SessionOptions
        {
            TimeProvider = Time,
            Randomizer = Randomizer,
            Retry = retry ?? RetryOptions.Default,
        });

    /// <inheritdoc />
    public override string ToString() => Incarnation == 0 ? Name : $"{Name}#{Incarnation}";

    /// <summary>Jitter from recorded decisions: 1,000 steps in [0, 1).</summary>
    private sealed class DecisionRandomizer(ControlledScheduler scheduler, AgentState owner) : IRandomizer
    {
        public double NextDouble() => scheduler.Draw(0, 999, owner) / 1000.0;
    }
}
