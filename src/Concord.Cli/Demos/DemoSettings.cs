using Concord.Lab.Scenarios;

namespace Concord.Cli.Demos;

/// <summary>The demo's arguments, validated.</summary>
internal sealed record DemoSettings
{
    public const int DefaultSeed = 42;
    public const int DefaultCounterAgents = 8;
    public const int DefaultIncrements = 100;
    public const int MaxCounterAgents = 64;
    public const int MaxIncrements = 10_000;

    public static IReadOnlyList<string> ScenarioNames { get; } = ["account", "counter", .. AgentScenarios.Names];

    public static IReadOnlyList<string> ModeNames { get; } = ["naive", "optimistic", "patch", "all"];

    // Named in DESIGN.md's CLI, implemented by later scenarios.
    private static readonly string[] PlannedModes = ["lock", "queue", "crdt", "serializable"];

    /// <summary>True for the scenarios run by the agent runtime (research, cache, triage, budget).</summary>
    public bool IsAgentScenario => AgentScenarios.Names.Contains(Scenario);

    public required string Scenario { get; init; }

    /// <summary>The modes to run, in presentation order.</summary>
    public required IReadOnlyList<ConcurrencyMode> Modes { get; init; }

    public required int Agents { get; init; }

    public required int Increments { get; init; }

    public required int Seed { get; init; }

    public required bool Json { get; init; }

    /// <summary>Embedded engine directory chosen by the user, or null for a fresh temp directory (ignored with <see cref="Memory"/>).</summary>
    public required string? DataDirectory { get; init; }

    public required bool Memory { get; init; }

    /// <summary>
    /// Set when the agents run against a Concord server over HTTP (<c>--serve</c>): the server's base address.
    /// </summary>
    public string? ServedAt { get; init; }

    /// <summary>Real seconds per virtual second of think time (<c>--pace</c>); 0 runs as fast as possible.</summary>
    public double Pace { get; init; }

    public string EngineName => ServedAt is not null ? "server" : Memory ? "memory" : "embedded";

    /// <summary>The command line that reproduces this run (defaults omitted, the seed always shown).</summary>
    public string ReplayCommand
    {
        get
        {
            var parts = new List<string> { "concord demo", Scenario };
            if (Modes.Count == 1) parts.Add("--mode " + Modes[0].ToString().ToLowerInvariant());
            if (Scenario == "counter" && Agents != DefaultCounterAgents) parts.Add($"--agents {Agents}");
            if (Scenario == "counter" && Increments != DefaultIncrements) parts.Add($"--increments {Increments}");
            parts.Add($"--seed {Seed}");
            if (Memory) parts.Add("--memory");
            return string.Join(' ', parts);
        }
    }

    /// <summary>Validates raw arguments; null with <paramref name="problem"/> set when they are bad (exit code 2).</summary>
    public static DemoSettings? TryCreate(string? scenario, string? mode, int? agents, int? increments, int seed, bool json,
        string? dataDirectory, bool memory, out string problem)
    {
        problem = "";
        scenario = (scenario ?? "account").Trim().ToLowerInvariant();
        mode = (mode ?? "all").Trim().ToLowerInvariant();
        if (!ScenarioNames.Contains(scenario))
        {
            problem = $"unknown scenario '{scenario}'. Valid scenarios: {string.Join(", ", ScenarioNames)}.";
            return null;
        }
        if (AgentScenarios.Names.Contains(scenario)) return TryCreateAgentScenario(scenario, mode, agents, increments, seed, json, dataDirectory, memory, out problem);
        ConcurrencyMode[]? modes = mode switch
        {
            "all" => [ConcurrencyMode.Naive, ConcurrencyMode.Optimistic, ConcurrencyMode.Patch],
            "naive" => [ConcurrencyMode.Naive],
            "optimistic" or "cas" => [ConcurrencyMode.Optimistic],
            "patch" or "atomic" => [ConcurrencyMode.Patch],
            _ => null,
        };
        if (modes is null)
        {
            problem = PlannedModes.Contains(mode)
                ? $"mode '{mode}' is not available in the demo yet. Valid modes: {string.Join(", ", ModeNames)}."
                : $"unknown mode '{mode}'. Valid modes: {string.Join(", ", ModeNames)}.";
            return null;
        }
        if (scenario == "account")
        {
            if (agents is { } n && n != AccountScenario.Updates.Count)
            {
                problem = $"the account scenario has exactly {AccountScenario.Updates.Count} agents (status, fees, compliance); --agents applies to the counter scenario.";
                return null;
            }
            if (increments is not null)
            {
                problem = "--increments applies to the counter scenario only.";
                return null;
            }
        }
        var agentCount = agents ?? (scenario == "account" ? AccountScenario.Updates.Count : DefaultCounterAgents);
        if (agentCount is < 1 or > MaxCounterAgents)
        {
            problem = $"--agents must be between 1 and {MaxCounterAgents}.";
            return null;
        }
        var incrementCount = increments ?? DefaultIncrements;
        if (incrementCount is < 1 or > MaxIncrements)
        {
            problem = $"--increments must be between 1 and {MaxIncrements}.";
            return null;
        }
        if (memory && dataDirectory is not null)
        {
            problem = "--memory and --data exclude each other: the in-memory engine has no data directory.";
            return null;
        }
        return new DemoSettings
        {
            Scenario = scenario,
            Modes = modes,
            Agents = agentCount,
            Increments = incrementCount,
            Seed = seed,
            Json = json,
            DataDirectory = dataDirectory,
            Memory = memory,
        };
    }

    private static DemoSettings? TryCreateAgentScenario(string scenario, string mode, int? agents, int? increments, int seed, bool json,
        string? dataDirectory, bool memory, out string problem)
    {
        problem = "";
        var supported = AgentScenarios.Create(scenario, seed).Modes;
        var names = supported.Select(m => m.ToString().ToLowerInvariant()).ToList();
        IReadOnlyList<ConcurrencyMode>? modes = mode switch
        {
            "all" => supported,
            "cas" => Pick(ConcurrencyMode.Optimistic),
            "atomic" => Pick(ConcurrencyMode.Patch),
            "txn" or "transaction" => Pick(ConcurrencyMode.Serializable),
            _ => Enum.TryParse<ConcurrencyMode>(mode, ignoreCase: true, out var parsed) && !int.TryParse(mode, out _) ? Pick(parsed) : null,
        };
        if (modes is null)
        {
            problem = $"mode '{mode}' is not available for the {scenario} scenario. Valid modes: {string.Join(", ", names)}, all.";
            return null;
        }
        if (agents is not null || increments is not null)
        {
            problem = $"--agents and --increments apply to the counter scenario only; the {scenario} scenario has a fixed cast of agents.";
            return null;
        }
        if (memory && dataDirectory is not null)
        {
            problem = "--memory and --data exclude each other: the in-memory engine has no data directory.";
            return null;
        }
        return new DemoSettings
        {
            Scenario = scenario,
            Modes = modes,
            Agents = 0,
            Increments = 0,
            Seed = seed,
            Json = json,
            DataDirectory = dataDirectory,
            Memory = memory,
        };

        IReadOnlyList<ConcurrencyMode>? Pick(ConcurrencyMode m) => supported.Contains(m) ? [m] : null;
    }
}
