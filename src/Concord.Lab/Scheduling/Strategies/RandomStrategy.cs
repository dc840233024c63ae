namespace Concord.Lab.Scheduling.Strategies;

/// <summary>Random walk: every runnable entity (the clock included) is equally likely at every step.</summary>
/// <remarks>Good at shallow bugs with many ways to hit them; poor when a bug needs one agent to run many steps uninterrupted.</remarks>
public sealed class RandomStrategy(Random random) : ISchedulingStrategy
{
    /// <inheritdoc />
    public string Name => "random";

    /// <inheritdoc />
    public int Choose(SchedulingChoice choice) => random.Next(choice.Candidates.Count);
}
