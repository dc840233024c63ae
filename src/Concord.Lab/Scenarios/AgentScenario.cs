using System.Text.Json;
using Concord.Agents;
using Concord.Lab.Time;

namespace Concord.Lab.Scenarios;

/// <summary>
/// A seed scenario run by the agent runtime in virtual time: concurrent agents on shared state in one
/// <see cref="ConcurrencyMode"/>, then a downstream agent whose output shows whether the state was harmed.
/// </summary>
public interface IAgentScenario
{
    /// <summary>Short name (<c>concord demo NAME</c>).</summary>
    string Name { get; }

    /// <summary>Title.</summary>
    string Title { get; }

    /// <summary>What happens, in a few sentences.</summary>
    string Story { get; }

    /// <summary>The seed.</summary>
    int Seed { get; }

    /// <summary>The modes the scenario supports, naive first.</summary>
    IReadOnlyList<ConcurrencyMode> Modes { get; }

    /// <summary>True when <paramref name="mode"/> is expected to keep the state intact (naive ones are not).</summary>
    bool IsSafe(ConcurrencyMode mode);

    /// <summary>
    /// Runs the agents in <paramref name="mode"/> in namespace <paramref name="ns"/> (cleared first). Naive modes write
    /// blindly: give them a non-strict namespace.
    /// </summary>
    Task<ScenarioRun> RunAsync(IConcordStore store, string ns, ConcurrencyMode mode, CancellationToken cancellationToken = default);
}

/// <summary>What one agent did, in one line.</summary>
/// <param name="Agent">Agent id.</param>
/// <param name="Did">What it did, with versions and virtual times.</param>
/// <param name="Ok">False when its work was lost, refused or harmful.</param>
public sealed record ScenarioAgentLine(string Agent, string Did, bool Ok);

/// <summary>The downstream agent's reading of the final state.</summary>
/// <param name="Agent">Its id.</param>
/// <param name="Saw">What it read.</param>
/// <param name="Output">What it concluded or did.</param>
/// <param name="Expected">What it would conclude had no work been lost.</param>
/// <param name="Correct">True when <paramref name="Output"/> matches <paramref name="Expected"/>.</param>
public sealed record DownstreamVerdict(string Agent, string Saw, string Output, string Expected, bool Correct);

/// <summary>The outcome of one run of an <see cref="IAgentScenario"/>.</summary>
public sealed record ScenarioRun
{
    /// <summary>Scenario name.</summary>
    public required string Scenario { get; init; }

    /// <summary>Mode.</summary>
    public required ConcurrencyMode Mode { get; init; }

    /// <summary>Namespace used.</summary>
    public required string Namespace { get; init; }

    /// <summary>Per-agent lines, in agent order.</summary>
    public required IReadOnlyList<ScenarioAgentLine> Agents { get; init; }

    /// <summary>What was lost or broken, one sentence each (empty when nothing was).</summary>
    public required IReadOnlyList<string> Lost { get; init; }

    /// <summary>Why it was lost, or what prevented it.</summary>
    public required string Explanation { get; init; }

    /// <summary>The downstream agent's verdict.</summary>
    public required DownstreamVerdict Downstream { get; init; }

    /// <summary>Conflicts detected (and handled) during the run.</summary>
    public required int Conflicts { get; init; }

    /// <summary>The shared state at the end.</summary>
    public required JsonElement Final { get; init; }

    /// <summary>Virtual time the run took, in milliseconds.</summary>
    public required long VirtualMs { get; init; }

    /// <summary>True when something was lost or the downstream agent was misled.</summary>
    public bool Harmed => Lost.Count > 0 || !Downstream.Correct;
}

/// <summary>The agent scenarios by name.</summary>
public static class AgentScenarios
{
    /// <summary>Names, in presentation order.</summary>
    public static IReadOnlyList<string> Names { get; } = ["research", "cache", "triage", "budget"];

    /// <summary>Creates scenario <paramref name="name"/> with <paramref name="seed"/>.</summary>
    /// <exception cref="ArgumentException">Unknown name.</exception>
    public static IAgentScenario Create(string name, int seed) => name switch
    {
        "research" => new ResearchMemoryScenario(seed),
        "cache" => new ToolCacheScenario(seed),
        "triage" => new TicketTriageScenario(seed),
        "budget" => new BudgetScenario(seed),
        _ => throw new ArgumentException($"Unknown agent scenario '{name}'. Known: {string.Join(", ", Names)}", nameof(name)),
    };
}

/// <summary>Plumbing shared by the agent scenarios.</summary>
internal static class ScenarioKit
{
    /// <summary>A runtime on a fresh virtual clock that stops once every agent is done.</summary>
    public static (AgentRuntime Runtime, VirtualTimeProvider Time) NewRuntime(IConcordStore store, string ns, int seed)
    {
        var time = new VirtualTimeProvider();
        var runtime = new AgentRuntime(store, ns, new AgentRuntimeOptions { TimeProvider = time, Seed = seed, StopWhenIdle = true });
        return (runtime, time);
    }

    /// <summary>Deletes every key of <paramref name="ns"/> (queues and streams included) so a run on reused data starts clean.</summary>
    public static async Task ClearAsync(IConcordStore store, string ns, CancellationToken cancellationToken)
    {
        string? after = null;
        while (true)
        {
            var page = await store.ListAsync(ns, new ListRequest { Prefix = "", After = after, Limit = 1000 }, cancellationToken).ConfigureAwait(false);
            foreach (var record in page.Records)
                await store.DeleteAsync(ns, record.Key, new WriteOptions { Expect = Expect.Version(record.Version) }, cancellationToken).ConfigureAwait(false);
            if (page.NextAfter is null) return;
            after = page.NextAfter;
        }
    }

    public static string Seconds(TimeSpan t) => (t.TotalMilliseconds / 1000).ToString("0.00", System.Globalization.CultureInfo.InvariantCulture) + " s";

    public static string Seconds(DateTimeOffset at) => Seconds(at - VirtualTimeProvider.DefaultEpoch);

    public static JsonElement Json<T>(T value) => JsonSerializer.SerializeToElement(value, JsonDefaults.Web);
}
