using System.Globalization;
using Concord.Lab.Chaos;
using Concord.Lab.History;
using Concord.Lab.Scheduling;

namespace Concord.Lab.Scenarios;

/// <summary>
/// Retries over a flaky store: agents add 1 to a counter with an atomic increment, through a store that loses
/// replies (the write applied, the caller told it failed), fails transiently, delivers mutations twice, and restarts.
/// Agents retry transient errors with backoff. Without an idempotency key a retried or duplicated increment is applied
/// twice; with one idempotency key per logical increment, the store replays the first result instead.
/// </summary>
/// <remarks>
/// Each logical increment is one <c>increment</c> operation in the history (<c>info</c> if the agent gave up), and the
/// verifier's final read a <c>read</c>, so the linearizability checker (counter model) sees a double application as
/// a read no order of the increments can produce.
/// </remarks>
public sealed class RetryCounterScenario : LabScenario
{
    private readonly bool _idempotent;

    /// <summary>Creates the scenario.</summary>
    /// <param name="idempotent">Use one idempotency key per logical increment.</param>
    /// <param name="agents">Agents (1–26). <value>Default: 3.</value></param>
    /// <param name="increments">Increments per agent. <value>Default: 2.</value></param>
    public RetryCounterScenario(bool idempotent, int agents = 3, int increments = 2)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(agents, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(agents, 26);
        ArgumentOutOfRangeException.ThrowIfLessThan(increments, 1);
        _idempotent = idempotent;
        Increments = increments;
        Agents = [.. Enumerable.Range(0, agents).Select(i => $"agent-{(char)('a' + i)}")];
    }

    /// <summary>The faults of this scenario.</summary>
    public static ChaosOptions Faults { get; } = new()
    {
        UnknownOutcome = 0.15,
        TransientFailure = 0.1,
        DuplicateDelivery = 0.1,
        Latency = 0.1,
        LatencyMax = TimeSpan.FromMilliseconds(200),
        BackendRestart = 0.02,
        RestartDowntime = TimeSpan.FromMilliseconds(300),
    };

    /// <summary>The agents' retry policy for transient errors: enough to outlast a backend restart.</summary>
    public static RetryOptions Retry { get; } = new() { MaxAttempts = 12, BaseDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(400) };

    /// <summary>Increments per agent.</summary>
    public int Increments { get; }

    /// <inheritdoc />
    public override string Name => "retry";

    /// <inheritdoc />
    public override string Mode => _idempotent ? "idempotent" : "naive";

    /// <inheritdoc />
    public override string Description =>
        $"{Agents.Count} agents each add 1 to a counter {Increments} times through a store that loses replies, fails transiently, delivers twice and restarts; "
        + (_idempotent ? "every retry reuses the logical increment's idempotency key" : "they retry transient errors without an idempotency key");

    /// <inheritdoc />
    public override bool ExpectedToPass => _idempotent;

    /// <inheritdoc />
    public override string FailurePhrase => "applied an increment twice";

    /// <inheritdoc />
    public override IReadOnlyList<string> Agents { get; }

    /// <inheritdoc />
    public override ChaosOptions Chaos => Faults;

    /// <inheritdoc />
    public override string? HistoryModel => "counter";

    /// <inheritdoc />
    public override LabScenarioRun CreateRun() => new Run(this);

    private sealed class Run(RetryCounterScenario scenario) : LabScenarioRun
    {
        private const int VerifierProcess = 10_000;
        private int _gaveUp;

        public override async ValueTask SetupAsync(LabRunContext context, CancellationToken cancellationToken)
        {
            var reset = await context.Backend.PutAsync(context.Namespace, CounterScenario.Key, CounterScenario.Counter(0),
                new WriteOptions { Expect = Expect.Absent, Agent = "setup" }, cancellationToken).ConfigureAwait(false);
            if (!reset.IsApplied) throw new InvalidOperationException($"Could not create {CounterScenario.Key}: {reset}");
        }

        public override async Task RunAgentAsync(LabAgent agent, LabRunContext context, CancellationToken cancellationToken)
        {
            var session = agent.Session(context.Store, context.Namespace);
            var key = CounterScenario.Key;
            for (var i = 0; i < scenario.Increments; i++)
            {
                var idempotencyKey = scenario._idempotent ? $"{agent.Name}/increment-{i}" : null;
                using var op = agent.History.Invoke(agent.Process, Functions.Increment, key, HistoryValue.Of(1), agent.Name);
                var done = false;
                for (var attempt = 1; attempt <= Retry.MaxAttempts && !done; attempt++)
                {
                    if (attempt > 1)
                    {
                        var cap = Math.Min(Retry.MaxDelay.TotalMilliseconds, Retry.BaseDelay.TotalMilliseconds * Math.Pow(2, attempt - 2));
                        await agent.SleepAsync(TimeSpan.FromMilliseconds(agent.Draw(1, (int)cap)), "retry backoff", cancellationToken).ConfigureAwait(false);
                    }

                    try
                    {
                        var write = await session.IncrementAsync(key, idempotencyKey: idempotencyKey, cancellationToken: cancellationToken).ConfigureAwait(false);
                        done = write.IsApplied;
                    }
                    catch (ConcordException e) when (e.IsTransient)
                    {
                        // Outcome unknown: maybe applied. Retry (safe only with an idempotency key).
                    }
                }

                if (done)
                {
                    op.Ok();
                }
                else
                {
                    _gaveUp++;
                    op.Info("gave up after transient errors");
                }
            }
        }

        public override async ValueTask<LabVerdict> VerifyAsync(LabRunContext context, ScheduleResult result, CancellationToken cancellationToken)
        {
            var read = context.History.Invoke(VerifierProcess, Functions.Read, CounterScenario.Key, agent: "verifier");
            var final = await context.Backend.GetAsync(context.Namespace, CounterScenario.Key, null, cancellationToken).ConfigureAwait(false);
            var actual = CounterScenario.ValueOf(final);
            read.Ok(HistoryValue.Of(actual), final?.Version);
            var logical = (long)context.ActiveAgents.Count * scenario.Increments;
            var certain = logical - _gaveUp;
            if (actual > logical)
            {
                return LabVerdict.Fail("double-apply", string.Create(CultureInfo.InvariantCulture,
                    $"the counter reads {actual} after {logical} logical increments: {actual - logical} applied twice (a retry or a duplicate delivery without an idempotency key)"));
            }

            return actual < certain
                ? LabVerdict.Fail("lost-update", string.Create(CultureInfo.InvariantCulture, $"the counter reads {actual}, but {certain} increments succeeded"))
                : LabVerdict.Pass(string.Create(CultureInfo.InvariantCulture, $"the counter reads {actual} after {logical} logical increments ({_gaveUp} gave up)"));
        }
    }
}
