using System.Globalization;
using Concord.Lab.History;
using Concord.Lab.Scheduling;

namespace Concord.Lab.Scenarios;

/// <summary>
/// The shared counter under the controlled scheduler: each agent adds 1 to one counter a few times. Naive
/// read-think-write loses increments on some schedules; compare-and-swap with retry and atomic increment patches never do.
/// </summary>
/// <remarks>
/// Each logical increment is recorded as an <c>increment</c> operation and the verifier's final read as a
/// <c>read</c>, so the linearizability checker (counter model) catches a lost increment as well as the invariant
/// (the counter equals agents × increments).
/// </remarks>
public sealed class CounterLabScenario : LabScenario
{
    private readonly ConcurrencyMode _mode;

    /// <summary>Creates the scenario.</summary>
    /// <param name="mode">How agents increment.</param>
    /// <param name="agents">Agents (1–26). <value>Default: 3.</value></param>
    /// <param name="increments">Increments per agent (≥ 1). <value>Default: 2.</value></param>
    public CounterLabScenario(ConcurrencyMode mode, int agents = 3, int increments = 2)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(agents, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(agents, 26);
        ArgumentOutOfRangeException.ThrowIfLessThan(increments, 1);
        _mode = mode;
        Increments = increments;
        Agents = [.. Enumerable.Range(0, agents).Select(i => $"agent-{(char)('a' + i)}")];
    }

    /// <summary>Increments per agent.</summary>
    public int Increments { get; }

    /// <inheritdoc />
    public override string Name => "counter";

    /// <inheritdoc />
    public override string Mode => _mode.ToString().ToLowerInvariant();

    /// <inheritdoc />
    public override string Description =>
        $"{Agents.Count} agents each add 1 to one counter {Increments} times, " + _mode switch
        {
            ConcurrencyMode.Naive => "by reading it, thinking, and writing back n+1",
            ConcurrencyMode.Optimistic => "with compare-and-swap, retrying on conflict",
            _ => "with an atomic increment patch",
        };

    /// <inheritdoc />
    public override bool ExpectedToPass => _mode != ConcurrencyMode.Naive;

    /// <inheritdoc />
    public override string FailurePhrase => "lost an increment";

    /// <inheritdoc />
    public override IReadOnlyList<string> Agents { get; }

    /// <inheritdoc />
    public override string? HistoryModel => "counter";

    /// <inheritdoc />
    public override LabScenarioRun CreateRun() => new Run(this);

    private sealed class Run(CounterLabScenario scenario) : LabScenarioRun
    {
        private const int VerifierProcess = 10_000;
        private static readonly (TimeSpan Min, TimeSpan Max) Think = (TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(20));

        public override async ValueTask SetupAsync(LabRunContext context, CancellationToken cancellationToken)
        {
            var reset = await context.Backend.PutAsync(context.Namespace, CounterScenario.Key, CounterScenario.Counter(0),
                new WriteOptions { Expect = Expect.Absent, Agent = "setup" }, cancellationToken).ConfigureAwait(false);
            if (!reset.IsApplied) throw new InvalidOperationException($"Could not create {CounterScenario.Key}: {reset}");
        }

        public override async Task RunAgentAsync(LabAgent agent, LabRunContext context, CancellationToken cancellationToken)
        {
            var session = agent.Session(context.Store, context.Namespace, CounterScenario.CasRetry);
            var key = CounterScenario.Key;
            for (var i = 0; i < scenario.Increments; i++)
            {
                using var op = agent.History.Invoke(agent.Process, Functions.Increment, key, HistoryValue.Of(1), agent.Name);
                bool applied;
                switch (scenario._mode)
                {
                    case ConcurrencyMode.Naive:
                    {
                        var read = await session.GetAsync(key, cancellationToken).ConfigureAwait(false);
                        await agent.ThinkAsync("next count", Think.Min, Think.Max, cancellationToken).ConfigureAwait(false);
                        var write = await session.PutAsync(key, CounterScenario.Counter(CounterScenario.ValueOf(read) + 1), Expect.Any,
                            cancellationToken: cancellationToken).ConfigureAwait(false);
                        applied = write.IsApplied;
                        break;
                    }
                    case ConcurrencyMode.Optimistic:
                    {
                        var update = await session.UpdateAsync(key, async (current, ct) =>
                        {
                            await agent.ThinkAsync("next count", Think.Min, Think.Max, ct).ConfigureAwait(false);
                            return CounterScenario.Counter(CounterScenario.ValueOf(current) + 1);
                        }, cancellationToken: cancellationToken).ConfigureAwait(false);
                        applied = update.IsApplied;
                        break;
                    }
                    case ConcurrencyMode.Patch:
                    {
                        await agent.ThinkAsync("next count", Think.Min, Think.Max, cancellationToken).ConfigureAwait(false);
                        var write = await session.IncrementAsync(key, cancellationToken: cancellationToken).ConfigureAwait(false);
                        applied = write.IsApplied;
                        break;
                    }
                    default:
                        throw new ArgumentOutOfRangeException(nameof(scenario), scenario._mode, "unknown mode");
                }

                if (applied) op.Ok();
                else op.Fail("gave up");
            }
        }

        public override async ValueTask<LabVerdict> VerifyAsync(LabRunContext context, ScheduleResult result, CancellationToken cancellationToken)
        {
            var read = context.History.Invoke(VerifierProcess, Functions.Read, CounterScenario.Key, agent: "verifier");
            var final = await context.Backend.GetAsync(context.Namespace, CounterScenario.Key, null, cancellationToken).ConfigureAwait(false);
            var actual = CounterScenario.ValueOf(final);
            read.Ok(HistoryValue.Of(actual), final?.Version);
            var expected = (long)context.ActiveAgents.Count * scenario.Increments;
            return actual == expected
                ? LabVerdict.Pass(string.Create(CultureInfo.InvariantCulture, $"the counter reads {actual}, as expected"))
                : LabVerdict.Fail(actual < expected ? "lost-update" : "double-apply",
                    string.Create(CultureInfo.InvariantCulture, $"the counter reads {actual}, not {expected}: {Math.Abs(expected - actual)} increment(s) {(actual < expected ? "lost" : "applied twice")}"));
        }
    }
}
