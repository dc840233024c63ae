using System.Runtime.ExceptionServices;
using Concord.Lab.Chaos;
using Concord.Lab.History;
using Concord.Lab.Scheduling.Strategies;
using Concord.Lab.Time;

namespace Concord.Lab.Scheduling;

/// <summary>The body of an agent: an async lambda run by the <see cref="ControlledScheduler"/>.</summary>
/// <param name="agent">The agent's handle: its clock, scheduling points, think calls, random draws.</param>
/// <param name="cancellationToken">Cancels the run.</param>
public delegate Task AgentBody(LabAgent agent, CancellationToken cancellationToken);

/// <summary>An agent of a scheduled run.</summary>
/// <param name="Name">Agent id (in traces and histories).</param>
/// <param name="Body">What it does.</param>
public sealed record AgentSpec(string Name, AgentBody Body)
{
    /// <summary>What happens when a crash fault kills it. <value>Default: <see cref="RestartPolicy.Never"/>.</value></summary>
    public RestartPolicy Restart { get; init; } = RestartPolicy.Never;
}

/// <summary>Settings of a <see cref="ControlledScheduler"/>.</summary>
public sealed record SchedulerOptions
{
    /// <summary>Faults to inject; store faults also need a <see cref="ChaosStore"/> in the store stack. <value>Default: <see cref="ChaosOptions.None"/>.</value></summary>
    public ChaosOptions Chaos { get; init; } = ChaosOptions.None;

    /// <summary>A run that takes more scheduling steps than this fails (a livelock or an endless loop). <value>Default: 100,000.</value></summary>
    public int MaxSteps { get; init; } = 100_000;

    /// <summary>Workload name written to the history's meta line. <value>Default: null.</value></summary>
    public string? Workload { get; init; }

    /// <summary>Checker model written to the history's meta line. <value>Default: null.</value></summary>
    public string? Model { get; init; }
}

/// <summary>How an agent ended.</summary>
public enum AgentStatus
{
    /// <summary>Its body returned.</summary>
    Done,

    /// <summary>Its body threw.</summary>
    Failed,

    /// <summary>It crashed (fault) and its restart policy did not restart it.</summary>
    Dead,

    /// <summary>The run ended with the agent waiting (the run failed: escape, stuck, step limit).</summary>
    Blocked,
}

/// <summary>One agent's end state.</summary>
/// <param name="Name">Agent id.</param>
/// <param name="Index">Index among the agents given to the run.</param>
/// <param name="Status">How it ended.</param>
/// <param name="Incarnations">How many times its body was started (1 + restarts).</param>
/// <param name="Error">What it threw, when <see cref="AgentStatus.Failed"/>.</param>
public sealed record AgentOutcome(string Name, int Index, AgentStatus Status, int Incarnations, Exception? Error);

/// <summary>The result of one scheduled run: the interleaving, the history, the choices that reproduce it.</summary>
/// <remarks>Immutable once returned.</remarks>
public sealed class ScheduleResult
{
    internal ScheduleResult(ScheduleSeed seed, IReadOnlyList<int> choices, IReadOnlyDictionary<int, IReadOnlyList<int>> agentChoices, IReadOnlyList<ScheduleStep> steps,
        OperationHistory history, IReadOnlyList<AgentOutcome> agents, int faults, TimeSpan elapsed, string? failure, bool escaped)
    {
        Seed = seed;
        Choices = choices;
        AgentChoices = agentChoices;
        Steps = steps;
        History = history;
        Agents = agents;
        Faults = faults;
        Elapsed = elapsed;
        Failure = failure;
        Escaped = escaped;
    }

    /// <summary>The seed the run was made from.</summary>
    public ScheduleSeed Seed { get; }

    /// <summary>The run's non-forced scheduling choices, in order (index into the round-robin candidate list).</summary>
    public IReadOnlyList<int> Choices { get; }

    /// <summary>Each agent's own decisions (think times, jitter, faults at its calls, skew), by agent index.</summary>
    public IReadOnlyDictionary<int, IReadOnlyList<int>> AgentChoices { get; }

    /// <summary>Number of recorded decisions, scheduling and per agent.</summary>
    public int DecisionCount => Choices.Count + AgentChoices.Values.Sum(c => c.Count);

    /// <summary>A <c>replay:</c> seed that reproduces this exact run.</summary>
    public ScheduleSeed ReplaySeed => ScheduleSeed.ForReplay(Choices, AgentChoices, Seed.Agents);

    /// <summary>The interleaving, one entry per scheduling decision.</summary>
    public IReadOnlyList<ScheduleStep> Steps { get; }

    /// <summary>The history the agents recorded (see <see cref="LabAgent.History"/>); pending operations of crashed agents have no completion.</summary>
    public OperationHistory History { get; }

    /// <summary>How each agent ended, in agent order.</summary>
    public IReadOnlyList<AgentOutcome> Agents { get; }

    /// <summary>Faults injected (store faults, crashes, pauses).</summary>
    public int Faults { get; }

    /// <summary>Virtual time the run took.</summary>
    public TimeSpan Elapsed { get; }

    /// <summary>Why the run itself failed (an agent threw, an await escaped the scheduler, agents got stuck, step limit); null when it completed.</summary>
    public string? Failure { get; }

    /// <summary>True when the failure is an escape from the scheduler: a bug in the test set-up rather than in the code under test.</summary>
    public bool Escaped { get; }

    /// <summary>The interleaving as a table (see <see cref="ScheduleTrace.Format"/>).</summary>
    public string Format() => ScheduleTrace.Format(Steps);
}

/// <summary>The scheduler detected work it does not control: an await that resumed on the thread pool, or an agent woken by something other than the scheduler.</summary>
public sealed class SchedulerEscapeException(string message) : InvalidOperationException(message);

/// <summary>
/// Runs agent bodies on a single-threaded deterministic executor under virtual time. Every store call (through
/// <see cref="ScheduledStore"/>), every <see cref="LabAgent.PointAsync"/> and <see cref="LabAgent.ThinkAsync"/> is a
/// scheduling point: the agent stops there, and a <see cref="ISchedulingStrategy"/> decides who goes next, or lets
/// virtual time jump to the next timer. A run is a pure function of its <see cref="ScheduleSeed"/>.
/// </summary>
/// <remarks>
/// <para>
/// How it stays deterministic: the run executes on one dedicated thread with no synchronization context. An agent
/// stopped at a point awaits a task the scheduler completes from that thread, and the agent's continuation (even one
/// awaited with <c>ConfigureAwait(false)</c>) runs inline until its next point; a timer of the agent's clock fires
/// from that thread too. So exactly one agent runs at a time and nothing reaches the thread pool. The store must
/// complete calls synchronously (the memory engine does).
/// </para>
/// <para>
/// Escapes fail loudly: a point or a timer reached from another thread, an agent woken while another was scheduled,
/// or an agent that stopped neither at a point nor on a timer of its clock ends the run with
/// <see cref="ScheduleResult.Escaped"/> and a message saying which agent and where. Agents must therefore wait only
/// through the store, their points, and <see cref="LabAgent.Time"/> (not <see cref="Task.Yield"/>, <see cref="Task.Run(Action)"/>,
/// locks, channels or watches).
/// </para>
/// <para>Single use: one instance runs once. Not thread-safe; all members are for the run's agents and the run's caller.</para>
/// </remarks>
public sealed class ControlledScheduler
{
    private static readonly AsyncLocal<Incarnation?> Running = new();

    private readonly SchedulerOptions _options;
    private readonly Random _strategyRandom;
    private readonly Random _chaosRandom;
    private readonly Random _drawRandom;
    private readonly List<int> _choices = [];
    private readonly List<ScheduleStep> _steps = [];
    private ISchedulingStrategy? _strategy;
    private AgentState[] _agents = [];
    private int _specCount;
    private AgentState? _current;
    private ScheduleStep? _clockStep;
    private AgentState? _woken;
    private int _threadId = -1;
    private string? _escape;
    private int _faults;
    private int _started;
    private CancellationToken _token;

    /// <summary>Creates a scheduler for one run of <paramref name="seed"/>.</summary>
    public ControlledScheduler(ScheduleSeed seed, SchedulerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(seed);
        Seed = seed;
        _options = options ?? new SchedulerOptions();
        _options.Chaos.Validate();
        if (_options.MaxSteps < 1) throw new ArgumentException("MaxSteps must be positive", nameof(options));
        _strategyRandom = new Random(SeedMix.Stream(seed.Seed, 1));
        _chaosRandom = new Random(SeedMix.Stream(seed.Seed, 2));
        _drawRandom = new Random(SeedMix.Stream(seed.Seed, 3));
        Clock = new VirtualTimeProvider();
        StoreClock = new StoreTimeProvider(Clock);
        History = new HistoryRecorder(Clock, new HistoryMeta
        {
            Seed = seed.Format(),
            Strategy = ScheduleSeed.NameOf(seed.Strategy),
            Workload = _options.Workload,
            Model = _options.Model,
        });
    }

    /// <summary>The seed of the run.</summary>
    public ScheduleSeed Seed { get; }

    /// <summary>The chaos settings.</summary>
    public ChaosOptions Chaos => _options.Chaos;

    /// <summary>Virtual time of the run. Agents should use their own <see cref="LabAgent.Time"/> (skewed, and whose timers the scheduler attributes).</summary>
    public VirtualTimeProvider Clock { get; }

    /// <summary>A clock for the store under test: reads virtual time, but its timers never fire (so a store's periodic housekeeping cannot keep a run alive).</summary>
    public TimeProvider StoreClock { get; }

    /// <summary>The run's history recorder (virtual timestamps; the meta line carries the seed).</summary>
    public HistoryRecorder History { get; }

    /// <summary>The steps so far.</summary>
    public IReadOnlyList<ScheduleStep> Steps => _steps;

    /// <summary>Faults injected so far.</summary>
    public int Faults => _faults;

    /// <summary>The agent whose code is running now, or null outside agent code.</summary>
    public LabAgent? CurrentAgent => Running.Value is { } inc && inc.Agent.Scheduler == this ? new LabAgent(this, inc.Agent, inc) : null;

    /// <summary>Until when (virtual elapsed time) the backend is down after a restart fault.</summary>
    internal TimeSpan StoreDownUntil { get; set; }

    /// <summary>Runs the agents to completion on a dedicated thread and returns the result (blocking the caller).</summary>
    /// <exception cref="InvalidOperationException">The scheduler already ran.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public ScheduleResult Run(IReadOnlyList<AgentSpec> agents, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(agents);
        if (Interlocked.Exchange(ref _started, 1) != 0) throw new InvalidOperationException("A ControlledScheduler runs once; create one per run");
        ScheduleResult? result = null;
        ExceptionDispatchInfo? error = null;
        // A dedicated thread: no synchronization context and the default task scheduler, so continuations run inline.
        var thread = new Thread(() =>
        {
            try
            {
                result = Loop(agents, cancellationToken);
            }
            catch (Exception e)
            {
                error = ExceptionDispatchInfo.Capture(e);
            }
        }, 16 * 1024 * 1024)
        {
            IsBackground = true,
            Name = "concord-lab-scheduler",
        };
        thread.Start();
        thread.Join();
        error?.Throw();
        return result!;
    }

    /// <summary>Runs the agents on a dedicated thread; completes when the run ends.</summary>
    public Task<ScheduleResult> RunAsync(IReadOnlyList<AgentSpec> agents, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(agents);
        var done = new TaskCompletionSource<ScheduleResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (Interlocked.Exchange(ref _started, 1) != 0) throw new InvalidOperationException("A ControlledScheduler runs once; create one per run");
        var thread = new Thread(() =>
        {
            try
            {
                done.TrySetResult(Loop(agents, cancellationToken));
            }
            catch (OperationCanceledException e)
            {
                done.TrySetCanceled(e.CancellationToken);
            }
            catch (Exception e)
            {
                done.TrySetException(e);
            }
        }, 16 * 1024 * 1024)
        {
            IsBackground = true,
            Name = "concord-lab-scheduler",
        };
        thread.Start();
        return done.Task;
    }

    // ------------------------------------------------------------------ the loop

    private ScheduleResult Loop(IReadOnlyList<AgentSpec> specs, CancellationToken cancellationToken)
    {
        _threadId = Environment.CurrentManagedThreadId;
        _token = cancellationToken;
        _specCount = specs.Count;
        var taking = new List<AgentState>();
        for (var i = 0; i < specs.Count; i++)
        {
            ArgumentNullException.ThrowIfNull(specs[i]);
            if (Seed.Agents is { } mask && !mask.Contains(i)) continue;
            taking.Add(new AgentState(this, specs[i], i, taking.Count));
        }

        _agents = [.. taking];
        _strategy = SchedulingStrategies.Create(Seed, _agents.Length, _strategyRandom);
        if (_options.Chaos.MaxClockSkew > TimeSpan.Zero)
        {
            var max = (int)_options.Chaos.MaxClockSkew.TotalMilliseconds;
            foreach (var agent in _agents) agent.Skew = TimeSpan.FromMilliseconds(Draw(-max, max, agent));
        }

        string? failure = null;
        var current = 0;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_escape is not null) break;
            if (_agents.All(a => a.IsTerminal)) break;
            var candidates = Candidates(current);
            if (candidates.Count == 0)
            {
                failure = Stuck();
                break;
            }

            if (_steps.Count >= _options.MaxSteps)
            {
                failure = $"the run exceeded {_options.MaxSteps} scheduling steps (a livelock, or an agent that never ends)";
                break;
            }

            var step = _steps.Count + 1;
            var index = Decide(candidates.Count, () => _strategy!.Choose(new SchedulingChoice(step, candidates, _agents.Length)), null);
            var entity = candidates[index];
            if (entity == _agents.Length)
            {
                if (AdvanceClock() is { } woken) current = woken.Entity;
            }
            else
            {
                RunAgent(_agents[entity]);
                current = entity;
            }
        }

        failure = _escape ?? failure;
        var outcomes = _agents.Select(a => new AgentOutcome(a.Name, a.Index, a.Final ?? AgentStatus.Blocked, a.Incarnations, a.Error)).ToList();
        if (failure is null && outcomes.FirstOrDefault(o => o.Status == AgentStatus.Failed) is { } failed)
        {
            failure = $"agent {failed.Name} threw {failed.Error!.GetType().Name}: {failed.Error.Message}";
        }

        var agentChoices = new SortedDictionary<int, IReadOnlyList<int>>();
        foreach (var agent in _agents) agentChoices[agent.Index] = [.. agent.Choices];
        return new ScheduleResult(Seed, [.. _choices], agentChoices, [.. _steps], History.ToHistory(), outcomes, _faults, Clock.Elapsed, failure, _escape is not null);
    }

    /// <summary>Runnable agents in round-robin order from <paramref name="current"/>, then the clock if a timer is armed.</summary>
    private List<int> Candidates(int current)
    {
        var list = new List<int>(_agents.Length + 1);
        var n = _agents.Length;
        for (var k = 0; k < n; k++)
        {
            var i = (current + k) % n;
            if (_agents[i].IsRunnable) list.Add(i);
        }

        if (Clock.ArmedTimers > 0) list.Add(n);
        return list;
    }

    private string Stuck()
    {
        var waiting = _agents.Where(a => !a.IsTerminal).Select(a => $"{a.Name} (last point: {a.PointLabel})");
        return $"agents are stuck: no agent can run and no timer is armed; still waiting: {string.Join(", ", waiting)}";
    }

    private void RunAgent(AgentState agent)
    {
        var step = AddStep(agent.Name, agent.PointLabel);
        switch (DecideAgentFault(agent))
        {
            case FaultKind.Crash:
                Crash(agent, step);
                return;
            case FaultKind.Pause:
                _faults++;
                var length = _options.Chaos.PauseLength;
                step.Fault = $"paused {ScheduleTrace.FormatTime(length)}";
                agent.Paused = true;
                CreateSchedulerTimer(agent, "pause over", length, () =>
                {
                    agent.Paused = false;
                    Resume(agent, step);
                });
                return;
            default:
                Resume(agent, step);
                return;
        }
    }

    private void Resume(AgentState agent, ScheduleStep step)
    {
        agent.CurrentStep = step;
        var previous = _current;
        _current = agent;
        try
        {
            if (agent.Gate is { } gate)
            {
                agent.Gate = null;
                gate.TrySetResult(step.Number); // runs the agent inline until its next point, timer or end
            }
            else
            {
                Start(agent);
            }
        }
        finally
        {
            _current = previous;
        }

        Settle(agent);
    }

    private void Start(AgentState agent)
    {
        agent.StartPending = false;
        var incarnation = new Incarnation(agent, agent.Incarnations++);
        agent.Live = incarnation;
        var handle = new LabAgent(this, agent, incarnation);
        Running.Value = incarnation;
        try
        {
            incarnation.Body = agent.Spec.Body(handle, _token) ?? Task.CompletedTask;
        }
        catch (Exception e)
        {
            incarnation.Body = Task.FromException(e);
        }
        finally
        {
            Running.Value = null;
        }
    }

    /// <summary>After an agent ran: it must have finished, stopped at a point, or be asleep on its clock. Anything else escaped.</summary>
    private void Settle(AgentState agent)
    {
        if (agent.IsTerminal || agent.Live is not { } live) return;
        if (live.Body is { IsCompleted: true } body)
        {
            agent.Final = body.IsCompletedSuccessfully ? AgentStatus.Done : AgentStatus.Failed;
            agent.Error = body.Exception?.InnerException ?? (body.IsCanceled ? new OperationCanceledException() : null);
            return;
        }

        if (agent.Gate is not null || agent.Paused || live.ArmedTimers.Count > 0) return;
        Escape($"agent {agent.Name} stopped after \"{agent.PointLabel}\" at neither a scheduling point nor a timer of its clock: "
            + "it awaits work the scheduler does not control (Task.Yield, Task.Run, real I/O, a lock, a channel, a watch, "
            + "or a timer of another clock). Wait only through the store, PointAsync/ThinkAsync and LabAgent.Time.");
    }

    private void Crash(AgentState agent, ScheduleStep step)
    {
        _faults++;
        var live = agent.Live!;
        live.Dead = true;
        foreach (var timer in live.ArmedTimers) timer.Kill();
        live.ArmedTimers.Clear();
        agent.Gate = null; // abandoned: the crashed incarnation never runs again
        agent.Live = null;
        var policy = agent.Spec.Restart;
        if (agent.Restarts >= policy.MaxRestarts)
        {
            step.Fault = "crash (not restarted)";
            agent.Final = AgentStatus.Dead;
            return;
        }

        agent.Restarts++;
        var label = $"restart #{agent.Restarts}";
        if (policy.Delay <= TimeSpan.Zero)
        {
            step.Fault = "crash (restarts at once)";
            agent.StartPending = true;
            agent.PointLabel = label;
            return;
        }

        step.Fault = $"crash (restarts in {ScheduleTrace.FormatTime(policy.Delay)})";
        CreateSchedulerTimer(agent, label, policy.Delay, () =>
        {
            agent.StartPending = true;
            agent.PointLabel = label;
        });
    }

    private AgentState? AdvanceClock()
    {
        var step = AddStep("clock", "time passes", clock: true);
        _clockStep = step;
        _woken = null;
        var previous = _current;
        _current = null;
        try
        {
            Clock.Advance();
        }
        finally
        {
            _current = previous;
            _clockStep = null;
        }

        step.Time = Clock.Elapsed;
        return _woken;
    }

    private ScheduleStep AddStep(string agent, string operation, bool clock = false)
    {
        var step = new ScheduleStep(_steps.Count + 1, Clock.Elapsed, agent, operation) { IsClock = clock };
        _steps.Add(step);
        return step;
    }

    private void MarkWake(AgentState agent, string label)
    {
        _woken = agent;
        if (_clockStep is { } step)
        {
            step.Agent = agent.Name;
            step.Operation = "wakes: " + label;
            step.Time = Clock.Elapsed;
        }
    }

    // ------------------------------------------------------------------ timers

    internal ITimer CreateAgentTimer(AgentState agent, TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        CheckThread($"agent {agent.Name} created a timer");
        var owner = Running.Value is { } running && running.Agent == agent ? running : agent.Live;
        if (owner is null)
        {
            // No live incarnation (between a crash and its restart): a timer nobody will wait for.
            owner = new Incarnation(agent, -1) { Dead = true };
        }

        var timer = new AgentTimer(this, owner, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    internal void OnAgentTimer(Incarnation owner, TimerCallback callback, object? state)
    {
        if (owner.Dead) return; // a crashed process's timers do not fire
        var agent = owner.Agent;
        MarkWake(agent, agent.SleepLabel ?? "timer");
        agent.SleepLabel = null;
        var previous = _current;
        _current = agent;
        try
        {
            callback(state);
        }
        finally
        {
            _current = previous;
        }

        if (agent.Live == owner) Settle(agent);
    }

    private void CreateSchedulerTimer(AgentState agent, string label, TimeSpan due, Action action)
    {
        ITimer? timer = null;
        timer = Clock.CreateTimer(_ =>
        {
            timer?.Dispose();
            MarkWake(agent, label);
            action();
        }, null, due, Timeout.InfiniteTimeSpan);
    }

    // ------------------------------------------------------------------ points

    /// <summary>Stops the running agent at a scheduling point labelled <paramref name="label"/>; completes with the step number when the scheduler lets it go.</summary>
    internal Task<int> EnterPointAsync(string label)
    {
        var incarnation = Running.Value;
        if (incarnation is null || incarnation.Agent.Scheduler != this)
        {
            throw new InvalidOperationException($"\"{label}\": scheduling points can only be reached by agents of this scheduler");
        }

        var agent = incarnation.Agent;
        CheckThread($"agent {agent.Name} reached \"{label}\"");
        if (incarnation.Dead) return new TaskCompletionSource<int>().Task; // a zombie of a crashed incarnation: never resumes
        if (_current != agent)
        {
            throw Escape($"agent {agent.Name} reached \"{label}\" while {(_current is null ? "no agent" : "agent " + _current.Name)} was scheduled: "
                + "it was woken by something other than the scheduler (a lock, a channel, another agent's signal)");
        }

        if (agent.Gate is not null)
        {
            throw Escape($"agent {agent.Name} reached \"{label}\" while \"{agent.PointLabel}\" is still pending: an agent makes one call at a time (do not Task.WhenAll store calls within one agent)");
        }

        var gate = new TaskCompletionSource<int>(); // synchronous continuations: the agent resumes inline
        agent.Gate = gate;
        agent.PointLabel = label;
        return gate.Task;
    }

    /// <summary>The agent running now (on the scheduler thread), or null when called outside agent code.</summary>
    internal AgentState? RunningAgent()
    {
        var incarnation = Running.Value;
        if (incarnation is null || incarnation.Agent.Scheduler != this) return null;
        CheckThread($"agent {incarnation.Agent.Name} called the store");
        return incarnation.Agent;
    }

    internal Incarnation? RunningIncarnation() => Running.Value is { } inc && inc.Agent.Scheduler == this ? inc : null;

    internal int ProcessOf(Incarnation incarnation) => incarnation.Agent.Index + (incarnation.Number * Math.Max(1, _specCount));

    internal void CheckThread(string what)
    {
        if (_threadId != -1 && Environment.CurrentManagedThreadId != _threadId)
        {
            throw Escape($"{what} on thread {Environment.CurrentManagedThreadId}, not the scheduler's: an await resumed on the thread pool "
                + "(the store did not complete synchronously, or the agent used Task.Run/Task.Yield/real I/O)");
        }
    }

    private SchedulerEscapeException Escape(string message)
    {
        Interlocked.CompareExchange(ref _escape, message, null);
        return new SchedulerEscapeException(message);
    }

    // ------------------------------------------------------------------ decisions

    /// <summary>
    /// Makes one decision among <paramref name="options"/>, in the scheduling stream (<paramref name="owner"/> null) or
    /// an agent's own stream: from the replayed choices, or from <paramref name="generate"/>. Forced decisions (one
    /// option) are not recorded, but still generated so stateful strategies see every step.
    /// </summary>
    private int Decide(int options, Func<int> generate, AgentState? owner)
    {
        var log = owner is null ? _choices : owner.Choices;
        if (Seed.Strategy == StrategyKind.Replay)
        {
            if (options <= 1) return 0;
            var replay = owner is null ? Seed.Choices : Seed.AgentChoices.GetValueOrDefault(owner.Index) ?? [];
            var i = log.Count;
            var replayed = i < replay.Count ? Math.Clamp(replay[i], 0, options - 1) : 0;
            log.Add(replayed);
            return replayed;
        }

        var value = generate();
        if (value < 0 || value >= options) throw new InvalidOperationException($"The strategy chose {value} of {options} options");
        if (options > 1) log.Add(value);
        return value;
    }

    /// <summary>A random integer in [<paramref name="min"/>, <paramref name="max"/>] recorded in <paramref name="owner"/>'s stream (think times, jitter, skew).</summary>
    internal int Draw(int min, int max, AgentState owner)
    {
        if (max < min) throw new ArgumentOutOfRangeException(nameof(max), "max < min");
        var options = (int)Math.Min((long)max - min + 1, int.MaxValue);
        return min + Decide(options, () => _drawRandom.Next(options), owner);
    }

    private FaultKind DecideAgentFault(AgentState agent)
    {
        var chaos = _options.Chaos;
        if (!chaos.HasAgentFaults || _faults >= chaos.MaxFaults || agent.Gate is null) return FaultKind.None;
        var crash = chaos.Crash > 0 && Allowed(agent.Name, agent.PointLabel, FaultKind.Crash);
        var pause = chaos.Pause > 0 && Allowed(agent.Name, agent.PointLabel, FaultKind.Pause);
        if (!crash && !pause) return FaultKind.None;
        var decided = Decide(3, () =>
        {
            var u = _chaosRandom.NextDouble();
            return u < chaos.Crash ? 1 : u < chaos.Crash + chaos.Pause ? 2 : 0;
        }, agent);
        return decided switch
        {
            1 when crash => FaultKind.Crash,
            2 when pause => FaultKind.Pause,
            _ => FaultKind.None,
        };
    }

    private static readonly FaultKind[] StoreFaults =
        [FaultKind.Latency, FaultKind.TransientFailure, FaultKind.UnknownOutcome, FaultKind.DuplicateDelivery, FaultKind.BackendRestart];

    /// <summary>Decides the store fault for a call of the running agent (<see cref="FaultKind.None"/> mostly).</summary>
    internal FaultKind DecideStoreFault(AgentState agent, string operation, bool mutation)
    {
        var chaos = _options.Chaos;
        if (!chaos.HasStoreFaults || _faults >= chaos.MaxFaults) return FaultKind.None;
        var weights = new double[StoreFaults.Length];
        var any = false;
        for (var i = 0; i < StoreFaults.Length; i++)
        {
            var kind = StoreFaults[i];
            var p = kind switch
            {
                FaultKind.Latency => chaos.Latency,
                FaultKind.TransientFailure => chaos.TransientFailure,
                FaultKind.UnknownOutcome => mutation ? chaos.UnknownOutcome : 0,
                FaultKind.DuplicateDelivery => mutation ? chaos.DuplicateDelivery : 0,
                _ => chaos.BackendRestart,
            };
            if (p > 0 && !Allowed(agent.Name, operation, kind)) p = 0;
            weights[i] = p;
            any |= p > 0;
        }

        if (!any) return FaultKind.None;
        var decided = Decide(StoreFaults.Length + 1, () =>
        {
            var u = _chaosRandom.NextDouble();
            for (var i = 0; i < weights.Length; i++)
            {
                if (u < weights[i]) return i + 1;
                u -= weights[i];
            }

            return 0;
        }, agent);
        return decided > 0 && weights[decided - 1] > 0 ? StoreFaults[decided - 1] : FaultKind.None;
    }

    private bool Allowed(string agent, string operation, FaultKind kind) =>
        _options.Chaos.Target is not { } target || target(new FaultSite(agent, operation, kind));

    /// <summary>Counts an injected fault and notes it on the agent's current step.</summary>
    internal void RecordFault(AgentState agent, string description)
    {
        _faults++;
        if (agent.CurrentStep is { } step) step.Fault = step.Fault is null ? description : step.Fault + "; " + description;
    }

    /// <summary>Sets (or extends) the result shown for <paramref name="step"/>.</summary>
    internal static void Annotate(ScheduleStep step, string result) =>
        step.Result = step.Result is null ? result : step.Result + "; " + result;

    internal ScheduleStep? StepOf(int number) => number >= 1 && number <= _steps.Count ? _steps[number - 1] : null;
}

/// <summary>Virtual time for the store under test: reads the scheduler's clock; timers are inert.</summary>
internal sealed class StoreTimeProvider(VirtualTimeProvider clock) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => clock.GetUtcNow();

    public override long GetTimestamp() => clock.GetTimestamp();

    public override long TimestampFrequency => clock.TimestampFrequency;

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) => new InertTimer();

    private sealed class InertTimer : ITimer
    {
        public bool Change(TimeSpan dueTime, TimeSpan period) => true;

        public void Dispose()
        {
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>Derives independent, stable random streams from one seed (SplitMix64 finalizer).</summary>
internal static class SeedMix
{
    public static int Stream(long seed, int stream)
    {
        var z = unchecked((ulong)seed + ((ulong)(uint)stream * 0x9E3779B97F4A7C15UL) + 0x9E3779B97F4A7C15UL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        z ^= z >> 31;
        return (int)(z & int.MaxValue);
    }
}
