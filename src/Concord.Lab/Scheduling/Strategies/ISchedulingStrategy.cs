namespace Concord.Lab.Scheduling.Strategies;

/// <summary>
/// One scheduling decision: which of <see cref="Candidates"/> runs next. Candidates are entity ids: agents are
/// <c>0 … Agents − 1</c>, the clock (let virtual time jump to the next timer) is <see cref="Clock"/>.
/// </summary>
/// <param name="Step">The 1-based number of this decision in the run.</param>
/// <param name="Candidates">
/// The runnable entities in round-robin order starting with the one that ran last (so index 0 means "keep going",
/// then the next agents in order); the clock, when a timer is armed, is always last.
/// </param>
/// <param name="Agents">Number of agents in the run.</param>
public readonly record struct SchedulingChoice(int Step, IReadOnlyList<int> Candidates, int Agents)
{
    /// <summary>The entity id of the clock.</summary>
    public int Clock => Agents;
}

/// <summary>
/// A scheduling strategy: picks the next entity at every scheduling point. Implementations must be deterministic
/// functions of their seed and the choices they were shown, so that a run reproduces from its seed string.
/// </summary>
/// <remarks>Not thread-safe: one strategy instance serves one run.</remarks>
public interface ISchedulingStrategy
{
    /// <summary>Short name for reports (<c>random</c>, <c>pct</c>, …).</summary>
    string Name { get; }

    /// <summary>Returns the index into <see cref="SchedulingChoice.Candidates"/> of the entity that runs next.</summary>
    int Choose(SchedulingChoice choice);
}

/// <summary>Builds the strategy a <see cref="ScheduleSeed"/> names.</summary>
public static class SchedulingStrategies
{
    /// <summary>Steps assumed by PCT and delay-bounded scheduling when the seed does not say (<c>k=</c>).</summary>
    public const int DefaultSteps = 50;

    /// <summary>
    /// The strategy of <paramref name="seed"/> for a run with <paramref name="agents"/> agents, drawing from
    /// <paramref name="random"/>; null for <see cref="StrategyKind.Replay"/> (the scheduler replays recorded choices itself).
    /// </summary>
    public static ISchedulingStrategy? Create(ScheduleSeed seed, int agents, Random random)
    {
        ArgumentNullException.ThrowIfNull(seed);
        ArgumentNullException.ThrowIfNull(random);
        return seed.Strategy switch
        {
            StrategyKind.Random => new RandomStrategy(random),
            StrategyKind.Pct => new PctStrategy(agents, seed.Depth, seed.Steps ?? DefaultSteps, random),
            StrategyKind.DelayBounded => new DelayBoundedStrategy(seed.Depth, seed.Steps ?? DefaultSteps, random),
            StrategyKind.Replay => null,
            _ => throw new ArgumentOutOfRangeException(nameof(seed), seed.Strategy, "unknown strategy"),
        };
    }
}
