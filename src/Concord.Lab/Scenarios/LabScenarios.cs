using Concord.Lab.Scheduling;

namespace Concord.Lab.Scenarios;

/// <summary>A scenario <c>concord lab run</c> knows: its name, modes (the first is the default) and what it shows.</summary>
/// <param name="Name">Scenario name.</param>
/// <param name="Modes">Modes; the first is the default and the naive one.</param>
/// <param name="SafeModes">The modes that must pass on every schedule.</param>
/// <param name="Summary">One line for <c>--help</c>.</param>
public sealed record LabScenarioInfo(string Name, IReadOnlyList<string> Modes, IReadOnlyList<string> SafeModes, string Summary);

/// <summary>The scenarios of <c>concord lab run</c>.</summary>
public static class LabScenarios
{
    /// <summary>Every scenario, in help order.</summary>
    public static IReadOnlyList<LabScenarioInfo> All { get; } =
    [
        new("account", ["naive", "optimistic", "patch"], ["optimistic", "patch"],
            "three agents update one account record at once (lost update)"),
        new("counter", ["naive", "optimistic", "patch"], ["optimistic", "patch"],
            "three agents increment one counter twice each (lost increments)"),
        new("budget", ["naive", "serializable"], ["serializable"],
            "two agents check a shared budget, then spend (write skew)"),
        new("retry", ["naive", "idempotent"], ["idempotent"],
            "agents increment through a flaky store and retry (double application without idempotency keys)"),
    ];

    /// <summary>Creates scenario <paramref name="name"/> in <paramref name="mode"/> (null: the scenario's first mode).</summary>
    /// <returns>False with a one-sentence <paramref name="error"/> when the name or mode is unknown.</returns>
    public static bool TryCreate(string? name, string? mode, out LabScenario scenario, out string error)
    {
        scenario = null!;
        var info = All.FirstOrDefault(s => string.Equals(s.Name, name?.Trim(), StringComparison.OrdinalIgnoreCase));
        if (info is null)
        {
            error = $"unknown scenario \"{name}\"; expected one of {string.Join(", ", All.Select(s => s.Name))}";
            return false;
        }

        var chosen = (mode ?? info.Modes[0]).Trim().ToLowerInvariant();
        if (!info.Modes.Contains(chosen))
        {
            error = $"scenario {info.Name} has no mode \"{mode}\"; expected one of {string.Join(", ", info.Modes)}";
            return false;
        }

        scenario = (info.Name, chosen) switch
        {
            ("account", _) => new AccountLabScenario(Enum.Parse<ConcurrencyMode>(chosen, ignoreCase: true)),
            ("counter", _) => new CounterLabScenario(Enum.Parse<ConcurrencyMode>(chosen, ignoreCase: true)),
            ("budget", _) => new BudgetLabScenario(serializable: chosen == "serializable"),
            _ => new RetryCounterScenario(idempotent: chosen == "idempotent"),
        };
        error = "";
        return true;
    }
}
