using System.Globalization;
using System.Text;

namespace Concord.Lab.Scheduling;

/// <summary>The scheduling strategies a <see cref="ScheduleSeed"/> can name.</summary>
public enum StrategyKind
{
    /// <summary>Uniformly random choice among the runnable agents (and the clock) at every step.</summary>
    Random,

    /// <summary>Probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010): random priorities, <c>d − 1</c> priority change points over <c>k</c> steps.</summary>
    Pct,

    /// <summary>Delay-bounded scheduling (Emmi, Qadeer, Rakamarić, POPL 2011): deterministic round-robin with at most <c>d</c> random delays over <c>k</c> steps.</summary>
    DelayBounded,

    /// <summary>Replays a recorded choice sequence exactly (how shrunk schedules are written down).</summary>
    Replay,
}

/// <summary>
/// A seed string: one line that names a strategy, its parameters and its seed, from which a scheduled run is a pure
/// function. Forms: <c>random:seed=42</c>, <c>pct:d=3:k=40:seed=42</c>, <c>delay-bounded:d=2:k=40:seed=42</c>, and
/// <c>replay:agents=0,2:c=0.1:a2=0.0.3</c> (recorded decisions: <c>c</c> the scheduling choices, <c>aN</c> agent N's own
/// draws and faults; decisions past the end of a list are 0, the default).
/// </summary>
/// <remarks>
/// <see cref="Format"/> and <see cref="Parse"/> are inverses: parameters are written in a fixed order, and parsing
/// accepts them in any order. Immutable and thread-safe.
/// </remarks>
public sealed record ScheduleSeed
{
    /// <summary>Default PCT depth (bugs of depth ≤ 3 are found with probability ≥ 1/(n·k²) per run).</summary>
    public const int DefaultPctDepth = 3;

    /// <summary>Default number of delays for delay-bounded scheduling.</summary>
    public const int DefaultDelays = 2;

    /// <summary>The strategy.</summary>
    public required StrategyKind Strategy { get; init; }

    /// <summary>The seed of every random choice (strategy, chaos, think times); unused by <see cref="StrategyKind.Replay"/>.</summary>
    public long Seed { get; init; }

    /// <summary>PCT depth <c>d</c> (≥ 1: <c>d − 1</c> change points), or the delay budget of delay-bounded scheduling (≥ 0).</summary>
    /// <value>Defaults to <see cref="DefaultPctDepth"/> for PCT and <see cref="DefaultDelays"/> for delay-bounded when parsed without <c>d=</c>.</value>
    public int Depth { get; init; }

    /// <summary>Estimated number of steps of a run, over which change points or delays are spread; null until estimated.</summary>
    public int? Steps { get; init; }

    /// <summary>For <see cref="StrategyKind.Replay"/>: the recorded scheduling choices (index into the round-robin candidate list).</summary>
    public IReadOnlyList<int> Choices { get; init; } = [];

    /// <summary>
    /// For <see cref="StrategyKind.Replay"/>: each agent's recorded decisions (think times, jitter, faults at its calls,
    /// its clock skew), by agent index. Kept apart from <see cref="Choices"/> so that removing one agent does not shift
    /// another's faults.
    /// </summary>
    public IReadOnlyDictionary<int, IReadOnlyList<int>> AgentChoices { get; init; } = new SortedDictionary<int, IReadOnlyList<int>>();

    /// <summary>Indices of the agents that take part (null = all). Shrinking removes agents this way.</summary>
    public IReadOnlyList<int>? Agents { get; init; }

    /// <summary>The wire name of a strategy: <c>random</c>, <c>pct</c>, <c>delay-bounded</c> or <c>replay</c>.</summary>
    public static string NameOf(StrategyKind strategy) => strategy switch
    {
        StrategyKind.Random => "random",
        StrategyKind.Pct => "pct",
        StrategyKind.DelayBounded => "delay-bounded",
        StrategyKind.Replay => "replay",
        _ => throw new ArgumentOutOfRangeException(nameof(strategy), strategy, "unknown strategy"),
    };

    /// <summary>Parses a strategy name (case-insensitive; <c>delay</c> and <c>db</c> abbreviate <c>delay-bounded</c>).</summary>
    public static bool TryParseStrategy(string? name, out StrategyKind strategy)
    {
        switch (name?.Trim().ToLowerInvariant())
        {
            case "random": strategy = StrategyKind.Random; return true;
            case "pct": strategy = StrategyKind.Pct; return true;
            case "delay-bounded" or "delay" or "db" or "delaybounded": strategy = StrategyKind.DelayBounded; return true;
            case "replay": strategy = StrategyKind.Replay; return true;
            default: strategy = default; return false;
        }
    }

    /// <summary>A seed for <paramref name="strategy"/> with default parameters.</summary>
    public static ScheduleSeed For(StrategyKind strategy, long seed) => new()
    {
        Strategy = strategy,
        Seed = seed,
        Depth = strategy switch
        {
            StrategyKind.Pct => DefaultPctDepth,
            StrategyKind.DelayBounded => DefaultDelays,
            _ => 0,
        },
    };

    /// <summary>A replay of scheduling <paramref name="choices"/> and per-agent <paramref name="agentChoices"/> (trailing zeros are dropped: they are the default anyway).</summary>
    public static ScheduleSeed ForReplay(IEnumerable<int> choices, IReadOnlyDictionary<int, IReadOnlyList<int>>? agentChoices = null, IReadOnlyList<int>? agents = null)
    {
        ArgumentNullException.ThrowIfNull(choices);
        var streams = new SortedDictionary<int, IReadOnlyList<int>>();
        foreach (var (agent, list) in agentChoices ?? new Dictionary<int, IReadOnlyList<int>>())
        {
            var trimmed = Trim(list);
            if (trimmed.Count > 0) streams[agent] = trimmed;
        }

        return new ScheduleSeed { Strategy = StrategyKind.Replay, Choices = Trim(choices), AgentChoices = streams, Agents = agents };
    }

    private static List<int> Trim(IEnumerable<int> choices)
    {
        var list = choices.ToList();
        var end = list.Count;
        while (end > 0 && list[end - 1] == 0) end--;
        return list.GetRange(0, end);
    }

    /// <summary>The same strategy and parameters with seed <see cref="Seed"/> + <paramref name="offset"/>: schedule number <paramref name="offset"/> of a series.</summary>
    public ScheduleSeed Offset(long offset) => this with { Seed = unchecked(Seed + offset) };

    /// <summary>Parses a seed string; throws <see cref="FormatException"/> with the reason when it is malformed.</summary>
    public static ScheduleSeed Parse(string text) =>
        TryParse(text, out var seed, out var error) ? seed : throw new FormatException(error);

    /// <summary>Parses a seed string.</summary>
    /// <param name="text">The seed string.</param>
    /// <param name="seed">The parsed seed.</param>
    /// <param name="error">Why it is malformed, in one sentence.</param>
    public static bool TryParse(string? text, out ScheduleSeed seed, out string error)
    {
        seed = null!;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "the seed string is empty";
            return false;
        }

        var parts = text.Trim().Split(':');
        if (!TryParseStrategy(parts[0], out var strategy))
        {
            error = $"unknown strategy \"{parts[0]}\" in seed \"{text}\"; expected random, pct, delay-bounded or replay";
            return false;
        }

        var result = For(strategy, 0);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var hasSeed = false;
        for (var i = 1; i < parts.Length; i++)
        {
            var part = parts[i];
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                error = $"\"{part}\" in seed \"{text}\" is not name=value";
                return false;
            }

            var name = part[..eq].Trim().ToLowerInvariant();
            var value = part[(eq + 1)..].Trim();
            if (!seen.Add(name))
            {
                error = $"parameter {name} appears twice in seed \"{text}\"";
                return false;
            }

            switch (name)
            {
                case "seed" when strategy != StrategyKind.Replay:
                    if (!long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) || s < 0)
                    {
                        error = $"seed must be a non-negative integer, not \"{value}\"";
                        return false;
                    }

                    result = result with { Seed = s };
                    hasSeed = true;
                    break;
                case "d" when strategy is StrategyKind.Pct or StrategyKind.DelayBounded:
                    var min = strategy == StrategyKind.Pct ? 1 : 0;
                    if (!int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var d) || d < min || d > 1000)
                    {
                        error = strategy == StrategyKind.Pct
                            ? $"d (PCT depth) must be an integer from 1 to 1000, not \"{value}\""
                            : $"d (delays) must be an integer from 0 to 1000, not \"{value}\"";
                        return false;
                    }

                    result = result with { Depth = d };
                    break;
                case "k" when strategy is StrategyKind.Pct or StrategyKind.DelayBounded:
                    if (!int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var k) || k < 1)
                    {
                        error = $"k (estimated steps) must be a positive integer, not \"{value}\"";
                        return false;
                    }

                    result = result with { Steps = k };
                    break;
                case "agents":
                    var agents = new List<int>();
                    foreach (var a in value.Split(',', StringSplitOptions.RemoveEmptyEntries))
                    {
                        if (!int.TryParse(a, NumberStyles.Integer, CultureInfo.InvariantCulture, out var index) || index < 0 || index > 10_000)
                        {
                            error = $"agents must be a comma-separated list of agent indices, not \"{value}\"";
                            return false;
                        }

                        agents.Add(index);
                    }

                    if (agents.Count == 0 || agents.Distinct().Count() != agents.Count)
                    {
                        error = $"agents must list distinct agent indices, not \"{value}\"";
                        return false;
                    }

                    result = result with { Agents = agents.Order().ToList() };
                    break;
                case "c" when strategy == StrategyKind.Replay:
                    if (!TryParseChoices(value, out var choices))
                    {
                        error = $"c (choices) must be non-negative integers separated by dots, not \"{value}\"";
                        return false;
                    }

                    result = result with { Choices = choices };
                    break;
                case ['a', .. var digits] when strategy == StrategyKind.Replay && int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var agentIndex):
                    if (!TryParseChoices(value, out var agentChoices))
                    {
                        error = $"{name} (agent {agentIndex}'s decisions) must be non-negative integers separated by dots, not \"{value}\"";
                        return false;
                    }

                    var streams = new SortedDictionary<int, IReadOnlyList<int>>(result.AgentChoices.ToDictionary()) { [agentIndex] = agentChoices };
                    result = result with { AgentChoices = streams };
                    break;
                default:
                    error = $"parameter \"{name}\" is not understood by strategy {NameOf(strategy)} (seed \"{text}\")";
                    return false;
            }
        }

        if (!hasSeed && strategy != StrategyKind.Replay)
        {
            error = $"seed \"{text}\" has no seed=N";
            return false;
        }

        seed = result;
        error = "";
        return true;
    }

    private static bool TryParseChoices(string value, out List<int> choices)
    {
        choices = [];
        foreach (var c in value.Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!int.TryParse(c, NumberStyles.Integer, CultureInfo.InvariantCulture, out var choice) || choice < 0) return false;
            choices.Add(choice);
        }

        return true;
    }

    /// <summary>The canonical seed string.</summary>
    public string Format()
    {
        var text = new StringBuilder(NameOf(Strategy));
        if (Strategy is StrategyKind.Pct or StrategyKind.DelayBounded)
        {
            text.Append(CultureInfo.InvariantCulture, $":d={Depth}");
            if (Steps is { } k) text.Append(CultureInfo.InvariantCulture, $":k={k}");
        }

        if (Agents is { } agents) text.Append(":agents=").Append(string.Join(',', agents));
        if (Strategy == StrategyKind.Replay)
        {
            text.Append(":c=").Append(string.Join('.', Choices));
            foreach (var (agent, choices) in AgentChoices.OrderBy(p => p.Key))
            {
                text.Append(CultureInfo.InvariantCulture, $":a{agent}=").Append(string.Join('.', choices));
            }
        }
        else
        {
            text.Append(CultureInfo.InvariantCulture, $":seed={Seed}");
        }

        return text.ToString();
    }

    /// <inheritdoc />
    public override string ToString() => Format();

    /// <summary>Value equality, with choice and agent lists compared element by element.</summary>
    public bool Equals(ScheduleSeed? other) => other is not null && Format() == other.Format();

    /// <inheritdoc />
    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(Format());
}
