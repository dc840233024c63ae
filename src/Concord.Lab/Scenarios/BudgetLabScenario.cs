using System.Globalization;
using System.Text.Json;
using Concord.Lab.History;
using Concord.Lab.Scheduling;

namespace Concord.Lab.Scenarios;

/// <summary>
/// Write skew in miniature: a team budget of 100 and two agents (alice, bob) that each check what has been spent,
/// think, and spend 60 if it still fits, each on its own key. Per-key compare-and-swap cannot help (they write
/// different keys), so the naive mode overspends on some schedules; a serializable <c>RunTransactionAsync</c> (reads
/// validated at commit) never does.
/// </summary>
/// <remarks>Each agent's check-then-spend is recorded as one <c>txn</c>, so the isolation checker reports the G2-item cycle.</remarks>
public sealed class BudgetLabScenario(bool serializable) : LabScenario
{
    /// <summary>The budget.</summary>
    public const int Limit = 100;

    /// <summary>What each agent wants to spend.</summary>
    public const int Spend = 60;

    /// <summary>The key holding what <paramref name="agent"/> has spent: <c>{"amount": n}</c>.</summary>
    public static string KeyOf(string agent) => "budget/spent/" + agent;

    /// <inheritdoc />
    public override string Name => "budget";

    /// <inheritdoc />
    public override string Mode => serializable ? "serializable" : "naive";

    /// <inheritdoc />
    public override string Description => serializable
        ? $"alice and bob each check the team budget ({Limit}) and spend {Spend} if it fits, in a serializable optimistic transaction"
        : $"alice and bob each read what has been spent, think, and spend {Spend} if it still fits the budget of {Limit} (each writes only its own key, with compare-and-swap)";

    /// <inheritdoc />
    public override bool ExpectedToPass => serializable;

    /// <inheritdoc />
    public override string FailurePhrase => "overspent the budget (write skew)";

    /// <inheritdoc />
    public override IReadOnlyList<string> Agents { get; } = ["alice", "bob"];

    /// <inheritdoc />
    public override string? HistoryModel => "txn";

    /// <inheritdoc />
    public override LabScenarioRun CreateRun() => new Run(this, serializable);

    private static JsonElement Amount(long amount) => JsonSerializer.SerializeToElement(new { amount });

    private static long AmountOf(ConcordRecord? record) =>
        record is { IsDeleted: false } && record.Value.TryGetProperty("amount", out var a) ? a.GetInt64() : 0;

    private sealed class Run(BudgetLabScenario scenario, bool serializable) : LabScenarioRun
    {
        private const int SetupProcess = 10_000;
        private static readonly (TimeSpan Min, TimeSpan Max) Think = (TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(1500));

        public override async ValueTask SetupAsync(LabRunContext context, CancellationToken cancellationToken)
        {
            var keys = scenario.Agents.Select(KeyOf).ToArray();
            using var txn = TxnRecording.Begin(context.History, SetupProcess, "setup", [.. keys.Select(k => MicroOp.Write(k, Amount(0)))]);
            foreach (var key in keys)
            {
                var write = await context.Backend.PutAsync(context.Namespace, key, Amount(0), new WriteOptions { Expect = Expect.Absent, Agent = "setup" }, cancellationToken).ConfigureAwait(false);
                txn.Wrote(write.Record!);
            }

            txn.Ok();
        }

        public override async Task RunAgentAsync(LabAgent agent, LabRunContext context, CancellationToken cancellationToken)
        {
            var session = agent.Session(context.Store, context.Namespace);
            var keys = scenario.Agents.Select(KeyOf).ToList();
            var mine = KeyOf(agent.Name);
            using var txn = TxnRecording.Begin(agent, [.. keys.Select(k => MicroOp.Read(k)), MicroOp.Write(mine, Amount(Spend))]);
            if (!serializable)
            {
                var reads = new Dictionary<string, ConcordRecord?>(StringComparer.Ordinal);
                foreach (var key in keys)
                {
                    reads[key] = await session.GetAsync(key, cancellationToken).ConfigureAwait(false);
                    txn.Read(key, reads[key]);
                }

                await agent.ThinkAsync($"approve spending {Spend}?", Think.Min, Think.Max, cancellationToken).ConfigureAwait(false);
                if (reads.Values.Sum(AmountOf) + Spend <= Limit)
                {
                    var own = reads[mine];
                    var write = await session.PutAsync(mine, Amount(AmountOf(own) + Spend), Expect.Version(own?.Version ?? 0), cancellationToken: cancellationToken).ConfigureAwait(false);
                    if (!write.IsApplied)
                    {
                        txn.Fail(write.ToString());
                        return;
                    }

                    txn.Wrote(write.Record!);
                }

                txn.Ok();
                return;
            }

            long? wroteVersion = null;
            JsonElement wroteValue = default;
            var commit = await session.RunTransactionAsync(async (tx, ct) =>
            {
                txn.Reset();
                wroteVersion = null;
                var total = 0L;
                ConcordRecord? own = null;
                foreach (var key in keys)
                {
                    var record = await tx.GetAsync(key, ct).ConfigureAwait(false);
                    txn.Read(key, record);
                    total += AmountOf(record);
                    if (key == mine) own = record;
                }

                await agent.ThinkAsync($"approve spending {Spend}?", Think.Min, Think.Max, ct).ConfigureAwait(false);
                if (total + Spend <= Limit)
                {
                    wroteValue = Amount(AmountOf(own) + Spend);
                    tx.Put(mine, wroteValue);
                    // The commit validates that the own key is unchanged since the read, so it creates the next version.
                    wroteVersion = (own?.Version ?? 0) + 1;
                }
            }, cancellationToken: cancellationToken).ConfigureAwait(false);

            if (!commit.Committed)
            {
                txn.Fail(commit.Message);
                return;
            }

            if (wroteVersion is { } version)
            {
                var written = await context.Backend.GetAsync(context.Namespace, mine, new ReadOptions { AtRevision = commit.Revision }, cancellationToken).ConfigureAwait(false);
                txn.Wrote(written ?? throw new InvalidOperationException($"{mine} vanished after commit"));
                if (written.Version != version) throw new InvalidOperationException($"{mine} is at v{written.Version} after commit, expected v{version}");
            }

            txn.Ok();
        }

        public override async ValueTask<LabVerdict> VerifyAsync(LabRunContext context, ScheduleResult result, CancellationToken cancellationToken)
        {
            var spent = new List<(string Agent, long Amount)>();
            foreach (var agent in scenario.Agents)
            {
                spent.Add((agent, AmountOf(await context.Backend.GetAsync(context.Namespace, KeyOf(agent), null, cancellationToken).ConfigureAwait(false))));
            }

            var total = spent.Sum(s => s.Amount);
            var detail = string.Join(", ", spent.Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.Agent} {s.Amount}")));
            return total <= Limit
                ? LabVerdict.Pass(string.Create(CultureInfo.InvariantCulture, $"{total} of {Limit} spent ({detail})"))
                : LabVerdict.Fail("write-skew", string.Create(CultureInfo.InvariantCulture,
                    $"{total} spent of a budget of {Limit} ({detail}): each agent checked the budget before the other's spend was visible, and each spend was valid on its own"));
        }
    }
}
