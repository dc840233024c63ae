namespace Concord.Lab.Scheduling.Strategies;

/// <summary>
/// Delay-bounded scheduling (Emmi, Qadeer, Rakamarić, POPL 2011): a deterministic, non-preemptive round-robin
/// scheduler (the agent that ran keeps running until it waits; then the next agent in order; the clock only when no
/// agent can run) perturbed by at most <c>d</c> delays at steps drawn uniformly from <c>1 … k</c>. A delay skips the
/// entity that would have run, in favour of the next one in round-robin order.
/// </summary>
/// <remarks>With <c>d = 0</c> there is exactly one schedule. Small <c>d</c> covers the bugs that need few preemptions, systematically.</remarks>
public sealed class DelayBoundedStrategy : ISchedulingStrategy
{
    private readonly Dictionary<int, int> _delays = []; // step → delays at that step

    /// <summary>Draws <paramref name="delays"/> delay points in 1 … <paramref name="steps"/> (with replacement: two delays on one step skip two entities).</summary>
    public DelayBoundedStrategy(int delays, int steps, Random random)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(delays);
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        ArgumentNullException.ThrowIfNull(random);
        Delays = delays;
        Steps = steps;
        for (var i = 0; i < delays; i++)
        {
            var step = 1 + random.Next(steps);
            _delays[step] = _delays.GetValueOrDefault(step) + 1;
        }
    }

    /// <inheritdoc />
    public string Name => "delay-bounded";

    /// <summary>The delay budget <c>d</c>.</summary>
    public int Delays { get; }

    /// <summary>The step estimate <c>k</c>.</summary>
    public int Steps { get; }

    /// <summary>The delay points, in step order (a step appears once per delay on it).</summary>
    public IReadOnlyList<int> DelayPoints => [.. _delays.OrderBy(p => p.Key).SelectMany(p => Enumerable.Repeat(p.Key, p.Value))];

    /// <inheritdoc />
    public int Choose(SchedulingChoice choice)
    {
        // Index 0 is the round-robin choice (the agent that ran last, else the next agent; the clock is last).
        var skip = _delays.GetValueOrDefault(choice.Step);
        return Math.Min(skip, choice.Candidates.Count - 1);
    }
}
