namespace Concord.Lab.Scheduling.Strategies;

/// <summary>
/// Probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi, Nagarakatte, ASPLOS 2010). Every entity (each
/// agent and the clock) gets a distinct random priority ≥ <c>d</c>; <c>d − 1</c> change points are drawn uniformly
/// from steps <c>1 … k</c>. At each step the runnable entity with the highest priority runs; at the <c>i</c>-th change
/// point the entity that just ran drops to priority <c>d − i</c>, below every initial priority.
/// </summary>
/// <remarks>
/// Finds a bug of depth <c>d</c> (one needing <c>d</c> ordering constraints) with probability at least
/// <c>1 / (n · k^(d−1))</c> per run, whatever the program, where a random walk's odds can be exponentially small.
/// </remarks>
public sealed class PctStrategy : ISchedulingStrategy
{
    private readonly int[] _priority;
    private readonly Dictionary<int, int> _changePoints = []; // step → i (1-based)

    /// <summary>Draws priorities for <paramref name="agents"/> agents and the clock, and <paramref name="depth"/> − 1 change points in 1 … <paramref name="steps"/>.</summary>
    public PctStrategy(int agents, int depth, int steps, Random random)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(agents, 0);
        ArgumentOutOfRangeException.ThrowIfLessThan(depth, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        ArgumentNullException.ThrowIfNull(random);
        Depth = depth;
        Steps = steps;
        // A random permutation of d … d + agents (the clock is entity number `agents`).
        _priority = new int[agents + 1];
        for (var i = 0; i < _priority.Length; i++) _priority[i] = depth + i;
        for (var i = _priority.Length - 1; i > 0; i--)
        {
            var j = random.Next(i + 1);
            (_priority[i], _priority[j]) = (_priority[j], _priority[i]);
        }

        // d − 1 distinct change points when k allows (sampling without replacement), else as many as fit.
        var points = Math.Min(depth - 1, steps);
        var chosen = new HashSet<int>();
        while (chosen.Count < points) chosen.Add(1 + random.Next(steps));
        var i2 = 1;
        foreach (var step in chosen.Order()) _changePoints[step] = i2++;
    }

    /// <inheritdoc />
    public string Name => "pct";

    /// <summary>The depth <c>d</c>.</summary>
    public int Depth { get; }

    /// <summary>The step estimate <c>k</c>.</summary>
    public int Steps { get; }

    /// <summary>The change points, in step order.</summary>
    public IReadOnlyList<int> ChangePoints => [.. _changePoints.Keys.Order()];

    /// <summary>The current priority of entity <paramref name="entity"/> (higher runs first).</summary>
    public int PriorityOf(int entity) => _priority[entity];

    /// <inheritdoc />
    public int Choose(SchedulingChoice choice)
    {
        var best = 0;
        for (var i = 1; i < choice.Candidates.Count; i++)
        {
            if (_priority[choice.Candidates[i]] > _priority[choice.Candidates[best]]) best = i;
        }

        if (_changePoints.TryGetValue(choice.Step, out var point))
        {
            _priority[choice.Candidates[best]] = Depth - point;
        }

        return best;
    }
}
