using System.CommandLine;
using System.Globalization;
using Concord.Lab.History;
using Concord.Lab.Scenarios;
using Concord.Lab.Scheduling;

namespace Concord.Cli.Commands;

/// <summary><c>concord lab run</c>: runs a scenario under the controlled scheduler for many schedules.</summary>
internal static class LabCommand
{
    /// <summary>No schedule failed.</summary>
    public const int ExitPassed = 0;

    /// <summary>Some schedule failed; the shrunk interleaving and the seeds to replay it are printed.</summary>
    public const int ExitFailed = 1;

    /// <summary>Bad arguments.</summary>
    public const int ExitBadInput = 2;

    private static string RunHelp => $"""
        Run a scenario under the controlled scheduler: its agents on a deterministic executor in virtual time, every
        store call, LLM call and timer a scheduling point, for N schedules of a strategy. Reports the share of schedules
        that failed (the scenario's invariant, or the history checker), and shrinks the first failure to a minimal
        interleaving, printed as a table with the seed that replays it.

        Scenarios (the first mode is the default; the others must pass on every schedule):
        {string.Join("\n", LabScenarios.All.Select(s => $"  {s.Name,-8} {string.Join("|", s.Modes),-27} {s.Summary}"))}

        Strategies:
          random         every runnable agent (and the clock) equally likely at each step
          pct            probabilistic concurrency testing: random priorities, d-1 priority change points (--depth, default 3)
          delay-bounded  round-robin with at most d random delays (--depth, default 2)

        --seed takes a number (the first schedule's seed; schedule i adds i) or a whole seed string printed by an
        earlier run (pct:d=3:k=14:seed=7, replay:agents=0,1:c=0.1.0.2), which replays that run exactly.
        Exit codes: 0 no schedule failed, 1 some schedule failed, 2 bad arguments.
        """;

    public static Command Create()
    {
        var scenario = new Argument<string?>("scenario")
        {
            Description = string.Join(", ", LabScenarios.All.Select(s => s.Name)),
            Arity = ArgumentArity.ZeroOrOne,
        };
        var mode = new Option<string?>("--mode", "-m") { Description = "Scenario mode (default: the scenario's naive mode)", HelpName = "MODE" };
        var schedules = new Option<string?>("--schedules", "-n") { Description = "Schedules to run (default 100)", HelpName = "N" };
        var strategy = new Option<string?>("--strategy") { Description = "random | pct | delay-bounded (default random)", HelpName = "STRATEGY" };
        var seed = new Option<string?>("--seed", "-s") { Description = "First seed (default 1), or a seed string to replay", HelpName = "S" };
        var depth = new Option<string?>("--depth", "-d") { Description = "PCT depth d, or the delay budget of delay-bounded", HelpName = "D" };
        var json = new Option<bool>("--json") { Description = "Print one JSON document instead of text" };
        var noShrink = new Option<bool>("--no-shrink") { Description = "Do not shrink the first failure" };
        var history = new Option<string?>("--history") { Description = "Write the shrunk failing run's history (JSONL, for concord check) to FILE", HelpName = "FILE" };

        var run = new Command("run", RunHelp) { scenario, mode, schedules, strategy, seed, depth, json, noShrink, history };
        run.SetAction(async (parseResult, cancellationToken) =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var error = parseResult.InvocationConfiguration.Error;
            var request = Parse(parseResult.GetValue(scenario), parseResult.GetValue(mode), parseResult.GetValue(schedules), parseResult.GetValue(strategy),
                parseResult.GetValue(seed), parseResult.GetValue(depth), out var problem);
            if (request is null)
            {
                await error.WriteLineAsync($"concord lab run: {problem}").ConfigureAwait(false);
                return ExitBadInput;
            }

            var report = await LabRunner.RunAsync(request.Value.Scenario, new LabRunOptions
            {
                Schedules = request.Value.Schedules,
                Seed = request.Value.Seed,
                Shrink = !parseResult.GetValue(noShrink),
            }, cancellationToken).ConfigureAwait(false);
            var s = request.Value.Scenario;
            await output.WriteLineAsync(parseResult.GetValue(json)
                ? LabReportWriter.FormatJson(report, s.Description)
                : LabReportWriter.FormatText(report, s.Description, $"concord lab run {s.Name} --mode {s.Mode}").TrimEnd()).ConfigureAwait(false);
            if (parseResult.GetValue(history) is { } path)
            {
                if (report.FirstFailure is { } failure)
                {
                    HistoryWriter.WriteFile(failure.Shrunk.Result.History, path);
                    await error.WriteLineAsync($"history of the shrunk failure written to {path} (check it: concord check {path})").ConfigureAwait(false);
                }
                else
                {
                    await error.WriteLineAsync($"no schedule failed: no history written to {path}").ConfigureAwait(false);
                }
            }

            return report.Failed > 0 ? ExitFailed : ExitPassed;
        });

        return new Command("lab", "The race-finding lab: run scenarios under the controlled scheduler.") { run };
    }

    /// <summary>Validates the arguments; null with a reason when they are bad.</summary>
    internal static (LabScenario Scenario, int Schedules, ScheduleSeed Seed)? Parse(string? name, string? mode, string? schedules, string? strategy, string? seed, string? depth, out string problem)
    {
        if (name is null)
        {
            problem = $"missing the scenario (concord lab run SCENARIO); one of {string.Join(", ", LabScenarios.All.Select(s => s.Name))}";
            return null;
        }

        if (!LabScenarios.TryCreate(name, mode, out var scenario, out problem)) return null;
        var count = 100;
        if (schedules is not null && (!int.TryParse(schedules, NumberStyles.Integer, CultureInfo.InvariantCulture, out count) || count is < 1 or > 1_000_000))
        {
            problem = $"--schedules must be an integer from 1 to 1000000, not \"{schedules}\"";
            return null;
        }

        StrategyKind? kind = null;
        if (strategy is not null)
        {
            if (!ScheduleSeed.TryParseStrategy(strategy, out var k) || k == StrategyKind.Replay)
            {
                problem = $"--strategy must be random, pct or delay-bounded, not \"{strategy}\"";
                return null;
            }

            kind = k;
        }

        ScheduleSeed parsed;
        if (seed is not null && seed.Contains(':', StringComparison.Ordinal))
        {
            if (!ScheduleSeed.TryParse(seed, out parsed, out var seedError))
            {
                problem = $"--seed: {seedError}";
                return null;
            }

            if (kind is { } k && k != parsed.Strategy)
            {
                problem = $"--strategy {strategy} contradicts --seed {seed}; give one of them";
                return null;
            }
        }
        else
        {
            long number = 1;
            if (seed is not null && (!long.TryParse(seed, NumberStyles.Integer, CultureInfo.InvariantCulture, out number) || number < 0))
            {
                problem = $"--seed must be a non-negative integer or a seed string like pct:d=3:seed=7, not \"{seed}\"";
                return null;
            }

            parsed = ScheduleSeed.For(kind ?? StrategyKind.Random, number);
        }

        if (depth is not null)
        {
            if (parsed.Strategy is not (StrategyKind.Pct or StrategyKind.DelayBounded))
            {
                problem = "--depth applies to pct and delay-bounded only";
                return null;
            }

            var min = parsed.Strategy == StrategyKind.Pct ? 1 : 0;
            if (!int.TryParse(depth, NumberStyles.Integer, CultureInfo.InvariantCulture, out var d) || d < min || d > 1000)
            {
                problem = $"--depth must be an integer from {min} to 1000, not \"{depth}\"";
                return null;
            }

            parsed = parsed with { Depth = d };
        }

        if (parsed.Agents is { } agents && agents.Any(a => a >= scenario.Agents.Count))
        {
            problem = $"--seed names agent {agents.Max()}, but scenario {scenario.Name} has {scenario.Agents.Count} agents (0 to {scenario.Agents.Count - 1})";
            return null;
        }

        problem = "";
        return (scenario, count, parsed);
    }
}
