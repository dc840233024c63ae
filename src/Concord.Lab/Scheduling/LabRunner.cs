using System.Globalization;
using Concord.Engine;
using Concord.Lab.Chaos;
using Concord.Lab.Checkers;
using Concord.Lab.Checkers.Isolation;
using Concord.Lab.Checkers.Linearizability;

namespace Concord.Lab.Scheduling;

/// <summary>One scheduled run of a scenario and its verdict.</summary>
/// <param name="Seed">The seed string that reproduces it.</param>
/// <param name="Result">The interleaving, history and choices.</param>
/// <param name="Verdict">Pass or fail, and why.</param>
public sealed record LabRun(ScheduleSeed Seed, ScheduleResult Result, LabVerdict Verdict)
{
    /// <summary>Agents that took part.</summary>
    public int AgentCount => Result.Agents.Count;

    /// <summary>Scheduling steps.</summary>
    public int StepCount => Result.Steps.Count;
}

/// <summary>A failing run and the smallest failing run shrinking found from it.</summary>
/// <param name="Original">The failing run as found.</param>
/// <param name="Shrunk">The smallest run that still fails the same way (the original when nothing smaller fails).</param>
/// <param name="Replays">Runs executed while shrinking.</param>
public sealed record ShrinkResult(LabRun Original, LabRun Shrunk, int Replays);

/// <summary>The outcome of <see cref="LabRunner.RunAsync(LabScenario, LabRunOptions, CancellationToken)"/>.</summary>
public sealed record LabReport
{
    /// <summary>The scenario.</summary>
    public required string Scenario { get; init; }

    /// <summary>Its mode.</summary>
    public required string Mode { get; init; }

    /// <summary>True when the mode is meant to pass on every schedule.</summary>
    public required bool ExpectedToPass { get; init; }

    /// <summary>Seed of the first schedule; schedule <c>i</c> used <see cref="ScheduleSeed.Offset"/>(<c>i</c>).</summary>
    public required ScheduleSeed FirstSeed { get; init; }

    /// <summary>Schedules run.</summary>
    public required int Schedules { get; init; }

    /// <summary>Schedules that failed.</summary>
    public required int Failed { get; init; }

    /// <summary>Failed schedules per failure kind.</summary>
    public required IReadOnlyDictionary<string, int> FailuresByKind { get; init; }

    /// <summary>Distinct interleavings seen: distinct sequences of (agent, operation) steps.</summary>
    public required int DistinctSchedules { get; init; }

    /// <summary>The scenario's failure phrase ("lost an update").</summary>
    public required string FailurePhrase { get; init; }

    /// <summary>The first failing schedule, shrunk; null when none failed.</summary>
    public ShrinkResult? FirstFailure { get; init; }

    /// <summary>Share of schedules that failed, in [0, 1].</summary>
    public double FailedShare => Schedules == 0 ? 0 : (double)Failed / Schedules;

    /// <summary>"63/200 schedules lost an update (31.5%)"; "failed" instead of the scenario's phrase when some failures are errors or checker findings.</summary>
    public string Headline => string.Create(CultureInfo.InvariantCulture,
        $"{Failed}/{Schedules} schedules {(Failed == 0 || FailuresByKind.Keys.Any(k => k is "error" or "escape" or "checker") ? "failed" : FailurePhrase)} ({FailedShare * 100:0.0}%)");
}

/// <summary>Options of a lab run.</summary>
public sealed record LabRunOptions
{
    /// <summary>Schedules to run. <value>Default: 100.</value></summary>
    public int Schedules { get; init; } = 100;

    /// <summary>Seed of the first schedule; the others add 1, 2, … to its seed. <value>Default: <c>random:seed=1</c>.</value></summary>
    public ScheduleSeed Seed { get; init; } = ScheduleSeed.For(StrategyKind.Random, 1);

    /// <summary>Shrink the first failure. <value>Default: true.</value></summary>
    public bool Shrink { get; init; } = true;

    /// <summary>Replays allowed for shrinking. <value>Default: 400.</value></summary>
    public int MaxShrinkReplays { get; init; } = 400;

    /// <summary>Step limit of one run. <value>Default: 20,000.</value></summary>
    public int MaxSteps { get; init; } = 20_000;

    /// <summary>Stop after the first failing schedule (it is still shrunk). <value>Default: false.</value></summary>
    public bool StopAtFirstFailure { get; init; }
}

/// <summary>
/// Runs a <see cref="LabScenario"/> under the <see cref="ControlledScheduler"/> for many schedules, judges each
/// (scenario invariant + history checker), and shrinks the first failure to a minimal readable interleaving.
/// </summary>
/// <remarks>Thread-safe: keeps no state between calls. Each run uses a fresh in-memory engine.</remarks>
public static class LabRunner
{
    private const string Namespace = "lab";

    /// <summary>Runs <paramref name="schedules"/> schedules of <paramref name="strategy"/> from seed <paramref name="seed"/> (default parameters).</summary>
    public static Task<LabReport> RunAsync(LabScenario scenario, int schedules, StrategyKind strategy, long seed, CancellationToken cancellationToken = default) =>
        RunAsync(scenario, new LabRunOptions { Schedules = schedules, Seed = ScheduleSeed.For(strategy, seed) }, cancellationToken);

    /// <summary>Runs the schedules of <paramref name="options"/>, then shrinks the first failure.</summary>
    public static async Task<LabReport> RunAsync(LabScenario scenario, LabRunOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Schedules, 1);
        var first = await EstimateStepsAsync(scenario, options.Seed, options.MaxSteps, cancellationToken).ConfigureAwait(false);
        LabRun? firstFailure = null;
        var failed = 0;
        var ran = 0;
        var kinds = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var distinct = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < options.Schedules; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var seed = first.Strategy == StrategyKind.Replay ? first : first.Offset(i);
            var run = await RunOnceAsync(scenario, seed, options.MaxSteps, cancellationToken).ConfigureAwait(false);
            ran++;
            distinct.Add(string.Join('\n', run.Result.Steps.Select(s => s.Agent + " " + s.Operation)));
            if (run.Verdict.Failed)
            {
                failed++;
                kinds[run.Verdict.Kind] = kinds.GetValueOrDefault(run.Verdict.Kind) + 1;
                firstFailure ??= run;
                if (options.StopAtFirstFailure) break;
            }

            if (first.Strategy == StrategyKind.Replay) break; // a replay is one schedule
        }

        ShrinkResult? shrunk = null;
        if (firstFailure is not null)
        {
            shrunk = options.Shrink
                ? await ShrinkAsync(scenario, firstFailure, options.MaxShrinkReplays, options.MaxSteps, cancellationToken).ConfigureAwait(false)
                : new ShrinkResult(firstFailure, firstFailure, 0);
        }

        return new LabReport
        {
            Scenario = scenario.Name,
            Mode = scenario.Mode,
            ExpectedToPass = scenario.ExpectedToPass,
            FirstSeed = first,
            Schedules = ran,
            Failed = failed,
            FailuresByKind = kinds,
            DistinctSchedules = distinct.Count,
            FailurePhrase = scenario.FailurePhrase,
            FirstFailure = shrunk,
        };
    }

    /// <summary>
    /// PCT and delay-bounded scheduling spread their change points over an estimated step count <c>k</c>. When the
    /// seed has none, it is measured on the default schedule (round-robin, no faults) and written into the seed, so
    /// the seed string stays self-contained.
    /// </summary>
    public static async Task<ScheduleSeed> EstimateStepsAsync(LabScenario scenario, ScheduleSeed seed, int maxSteps = 20_000, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        ArgumentNullException.ThrowIfNull(seed);
        if (seed.Strategy is not (StrategyKind.Pct or StrategyKind.DelayBounded) || seed.Steps is not null) return seed;
        var probe = await RunOnceAsync(scenario, ScheduleSeed.ForReplay([], agents: seed.Agents), maxSteps, cancellationToken).ConfigureAwait(false);
        return seed with { Steps = Math.Max(1, probe.StepCount) };
    }

    /// <summary>Runs one schedule of <paramref name="scenario"/> on a fresh in-memory engine and judges it.</summary>
    public static async Task<LabRun> RunOnceAsync(LabScenario scenario, ScheduleSeed seed, int maxSteps = 20_000, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        ArgumentNullException.ThrowIfNull(seed);
        var scheduler = new ControlledScheduler(seed, new SchedulerOptions
        {
            Chaos = scenario.Chaos,
            MaxSteps = maxSteps,
            Workload = $"{scenario.Name}/{scenario.Mode}",
            Model = scenario.HistoryModel,
        });
        await using var engine = ConcordEngine.CreateInMemory(new ConcordEngineOptions { TimeProvider = scheduler.StoreClock });
        IConcordStore store = new ScheduledStore(scenario.Chaos.HasStoreFaults ? new ChaosStore(engine, scheduler) : engine, scheduler);
        var context = new LabRunContext(scheduler, store, engine, Namespace)
        {
            ActiveAgents = seed.Agents ?? [.. Enumerable.Range(0, scenario.Agents.Count)],
        };
        var run = scenario.CreateRun();
        await run.SetupAsync(context, cancellationToken).ConfigureAwait(false);
        var specs = scenario.Agents
            .Select(name => new AgentSpec(name, (agent, ct) => run.RunAgentAsync(agent, context, ct)) { Restart = scenario.Restart })
            .ToList();
        var result = scheduler.Run(specs, cancellationToken); // blocks briefly: a run is CPU-bound and short, and an await would cost a thread-pool hop per schedule
        var verdict = result.Failure is { } failure
            ? LabVerdict.Fail(result.Escaped ? "escape" : "error", failure)
            : await run.VerifyAsync(context, result, cancellationToken).ConfigureAwait(false);
        if (result.Failure is null && scenario.HistoryModel is { } model && Check(model, scheduler.History.ToHistory()) is { } finding)
        {
            // The history includes the verification's records (final reads). The invariant's kind wins; the checker's explanation is kept.
            verdict = verdict.Failed
                ? verdict with { Details = verdict.Details is null ? finding.Details : verdict.Details + "\n\n" + finding.Details }
                : finding;
        }

        var finished = new ScheduleResult(result.Seed, result.Choices, result.AgentChoices, result.Steps, scheduler.History.ToHistory(), result.Agents, result.Faults,
            result.Elapsed, result.Failure, result.Escaped);
        return new LabRun(seed, finished, verdict);
    }

    /// <summary>
    /// Shrinks a failing run by deterministic replays: drops agents, then in each decision stream (the scheduling
    /// choices, and each agent's own draws and faults) truncates, deletes chunks, zeroes decisions (0 is the default:
    /// keep running, no fault, shortest draw) and halves them; keeps any candidate that fails the same way and is
    /// smaller (fewer agents, then fewer faults, then fewer steps, then fewer and smaller decisions).
    /// </summary>
    public static async Task<ShrinkResult> ShrinkAsync(LabScenario scenario, LabRun failing, int maxReplays = 400, int maxSteps = 20_000, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        ArgumentNullException.ThrowIfNull(failing);
        if (!failing.Verdict.Failed) throw new ArgumentException("The run did not fail", nameof(failing));
        var best = failing;
        var replays = 0;
        var agents = (failing.Seed.Agents ?? [.. Enumerable.Range(0, scenario.Agents.Count)]).ToList();
        // Stream -1 holds the scheduling choices; stream i agent i's decisions.
        var streams = Streams(failing.Result);

        async Task<bool> TryAsync(List<int> candidateAgents, Dictionary<int, List<int>> candidate)
        {
            if (replays >= maxReplays) return false;
            replays++;
            var seed = ScheduleSeed.ForReplay(candidate.GetValueOrDefault(-1) ?? [],
                candidate.Where(p => p.Key >= 0 && candidateAgents.Contains(p.Key)).ToDictionary(p => p.Key, p => (IReadOnlyList<int>)p.Value),
                candidateAgents.Count == scenario.Agents.Count ? null : candidateAgents);
            var run = await RunOnceAsync(scenario, seed, maxSteps, cancellationToken).ConfigureAwait(false);
            if (!run.Verdict.Failed || run.Verdict.Kind != failing.Verdict.Kind || Compare(run, best) >= 0) return false;
            best = run;
            agents = candidateAgents;
            streams = Streams(run.Result); // normalized: what the replay actually consumed
            return true;
        }

        Dictionary<int, List<int>> With(int stream, List<int> values)
        {
            var copy = streams.ToDictionary(p => p.Key, p => p.Value);
            copy[stream] = values;
            return copy;
        }

        var improved = true;
        while (improved && replays < maxReplays)
        {
            improved = false;
            for (var i = 0; i < agents.Count && agents.Count > 1; i++)
            {
                var fewer = agents.Where((_, j) => j != i).ToList();
                if (await TryAsync(fewer, streams).ConfigureAwait(false))
                {
                    improved = true;
                    i--;
                }
            }

            foreach (var stream in streams.Keys.Order().ToList())
            {
                // Shorter: truncate, then delete chunks.
                var values = streams.GetValueOrDefault(stream) ?? [];
                foreach (var keep in new[] { 0, values.Count / 4, values.Count / 2, values.Count * 3 / 4 }.Distinct())
                {
                    if (keep < values.Count && await TryAsync(agents, With(stream, values.GetRange(0, keep))).ConfigureAwait(false))
                    {
                        improved = true;
                        break;
                    }
                }

                foreach (var size in new[] { 8, 4, 2, 1 })
                {
                    for (var start = 0; start + size <= (streams.GetValueOrDefault(stream)?.Count ?? 0); start++)
                    {
                        var cut = streams[stream].ToList();
                        cut.RemoveRange(start, size);
                        if (await TryAsync(agents, With(stream, cut)).ConfigureAwait(false))
                        {
                            improved = true;
                            start--;
                        }
                    }
                }

                // Simpler values: zero, then halve.
                for (var i = 0; i < (streams.GetValueOrDefault(stream)?.Count ?? 0); i++)
                {
                    var current = streams[stream];
                    if (current[i] == 0) continue;
                    var zero = current.ToList();
                    zero[i] = 0;
                    if (await TryAsync(agents, With(stream, zero)).ConfigureAwait(false))
                    {
                        improved = true;
                        continue;
                    }

                    if (current[i] > 1)
                    {
                        var lower = current.ToList();
                        lower[i] = current[i] / 2;
                        if (await TryAsync(agents, With(stream, lower)).ConfigureAwait(false)) improved = true;
                    }
                }
            }
        }

        return new ShrinkResult(failing, best, replays);
    }

    private static Dictionary<int, List<int>> Streams(ScheduleResult result)
    {
        var streams = new Dictionary<int, List<int>> { [-1] = [.. result.Choices] };
        foreach (var (agent, choices) in result.AgentChoices) streams[agent] = [.. choices];
        return streams;
    }

    /// <summary>Orders runs by size: agents, faults, steps, choices, sum of choices.</summary>
    internal static int Compare(LabRun a, LabRun b)
    {
        var c = a.AgentCount.CompareTo(b.AgentCount);
        if (c != 0) return c;
        c = a.Result.Faults.CompareTo(b.Result.Faults);
        if (c != 0) return c;
        c = a.StepCount.CompareTo(b.StepCount);
        if (c != 0) return c;
        c = a.Result.DecisionCount.CompareTo(b.Result.DecisionCount);
        if (c != 0) return c;
        return Sum(a.Result).CompareTo(Sum(b.Result));

        static long Sum(ScheduleResult r) => r.Choices.Sum(x => (long)x) + r.AgentChoices.Values.Sum(c => c.Sum(x => (long)x));
    }

    /// <summary>Checks a run's history against <paramref name="model"/>; null when the checker finds nothing wrong.</summary>
    internal static LabVerdict? Check(string model, History.OperationHistory history)
    {
        if (model == "txn")
        {
            var report = IsolationChecker.Check(history);
            return report.Verdict == Verdict.Invalid
                ? LabVerdict.Fail("checker", $"the isolation checker found {string.Join(", ", report.Anomalies.Select(a => a.Name).Distinct())}", report.Explanation)
                : null;
        }

        if (!LinearizabilityModels.TryParse(model, out var linearizability)) throw new InvalidOperationException($"Unknown history model {model}");
        var result = LinearizabilityChecker.Check(history, new LinearizabilityOptions { Model = linearizability, MaxDegreeOfParallelism = 1 });
        return result.Verdict == Verdict.Invalid
            ? LabVerdict.Fail("checker", $"the history is not linearizable ({model} model)", result.Explanation)
            : null;
    }
}
