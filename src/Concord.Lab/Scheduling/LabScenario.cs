using Concord.Lab.Chaos;
using Concord.Lab.History;

namespace Concord.Lab.Scheduling;

/// <summary>The verdict on one scheduled run of a scenario.</summary>
/// <param name="Failed">True when the run violated the scenario's invariant, failed the history check, or did not complete.</param>
/// <param name="Kind">
/// A short, stable name of what went wrong (<c>lost-update</c>, <c>write-skew</c>, <c>double-apply</c>, <c>checker</c>,
/// <c>error</c>); shrinking only keeps candidates that fail the same way. Empty when the run passed.
/// </param>
/// <param name="Summary">One sentence.</param>
/// <param name="Details">More explanation (the checker's), when there is any.</param>
public sealed record LabVerdict(bool Failed, string Kind, string Summary, string? Details = null)
{
    /// <summary>A passing verdict.</summary>
    public static LabVerdict Pass(string summary) => new(false, "", summary);

    /// <summary>A failing verdict of kind <paramref name="kind"/>.</summary>
    public static LabVerdict Fail(string kind, string summary, string? details = null) => new(true, kind, summary, details);
}

/// <summary>What a scenario run sees: the stores, the namespace, the scheduler and its history.</summary>
/// <remarks>One per scheduled run.</remarks>
public sealed class LabRunContext
{
    internal LabRunContext(ControlledScheduler scheduler, IConcordStore store, IConcordStore backend, string ns)
    {
        Scheduler = scheduler;
        Store = store;
        Backend = backend;
        Namespace = ns;
    }

    /// <summary>The scheduler of the run.</summary>
    public ControlledScheduler Scheduler { get; }

    /// <summary>The store agents use: every call a scheduling point, with the scenario's faults injected.</summary>
    public IConcordStore Store { get; }

    /// <summary>The store itself (a fresh in-memory engine), for set-up and verification outside the schedule.</summary>
    public IConcordStore Backend { get; }

    /// <summary>The namespace (non-strict, so naive blind writes go through).</summary>
    public string Namespace { get; }

    /// <summary>The run's history recorder.</summary>
    public HistoryRecorder History => Scheduler.History;

    /// <summary>Agents that take part (shrinking may remove some), by index.</summary>
    public IReadOnlyList<int> ActiveAgents { get; internal set; } = [];
}

/// <summary>
/// A scenario the lab can run under the controlled scheduler: a fixed set of agents, a mode (naive or a safe
/// technique), the faults to inject, and a way to judge a run. <see cref="CreateRun"/> makes the per-run state.
/// </summary>
public abstract class LabScenario
{
    /// <summary>Scenario name (<c>account</c>, <c>counter</c>, …).</summary>
    public abstract string Name { get; }

    /// <summary>Mode (<c>naive</c>, <c>optimistic</c>, …).</summary>
    public abstract string Mode { get; }

    /// <summary>One sentence saying what the agents do.</summary>
    public abstract string Description { get; }

    /// <summary>True for modes that must pass on every schedule; false for the naive modes the lab exists to catch.</summary>
    public abstract bool ExpectedToPass { get; }

    /// <summary>What a failing schedule did, as a verb phrase: "18/200 schedules <c>lost an update</c>".</summary>
    public virtual string FailurePhrase => "failed";

    /// <summary>The agents, in order.</summary>
    public abstract IReadOnlyList<string> Agents { get; }

    /// <summary>Faults to inject. <value>Default: none.</value></summary>
    public virtual ChaosOptions Chaos => ChaosOptions.None;

    /// <summary>Restart policy of crashed agents. <value>Default: <see cref="RestartPolicy.Never"/>.</value></summary>
    public virtual RestartPolicy Restart => RestartPolicy.Never;

    /// <summary>The checker model of the history the agents record (<c>txn</c>, <c>counter</c>, …); null records nothing to check.</summary>
    public virtual string? HistoryModel => null;

    /// <summary>Creates the state of one run.</summary>
    public abstract LabScenarioRun CreateRun();

    /// <inheritdoc />
    public override string ToString() => $"{Name} ({Mode})";
}

/// <summary>One run of a <see cref="LabScenario"/>: set-up, agent bodies, verification.</summary>
public abstract class LabScenarioRun
{
    /// <summary>Prepares the store (outside the schedule, on <see cref="LabRunContext.Backend"/>).</summary>
    public virtual ValueTask SetupAsync(LabRunContext context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>The body of agent <paramref name="agent"/> (use <see cref="LabRunContext.Store"/> and the agent's clock).</summary>
    public abstract Task RunAgentAsync(LabAgent agent, LabRunContext context, CancellationToken cancellationToken);

    /// <summary>Judges the run against the scenario's invariant (the runner also checks the history when <see cref="LabScenario.HistoryModel"/> is set).</summary>
    public abstract ValueTask<LabVerdict> VerifyAsync(LabRunContext context, ScheduleResult result, CancellationToken cancellationToken);
}
