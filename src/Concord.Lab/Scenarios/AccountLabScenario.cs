using System.Text.Json;
using System.Text.Json.Nodes;
using Concord.Lab.History;
using Concord.Lab.Scheduling;

namespace Concord.Lab.Scenarios;

/// <summary>
/// The seed scenario under the controlled scheduler: the status, fees and compliance agents each read account
/// <c>acct-42</c>, think (an LLM call of 0.2–2 s virtual time, a scheduling point) and write their field. Naive
/// full-record blind writes lose updates on some schedules; compare-and-swap with retry and field patches never do.
/// </summary>
/// <remarks>
/// Each agent's read-think-write is recorded as one <c>txn</c> with exact versions, so the isolation checker names
/// the lost update independently of the scenario's own invariant (every applied update is in the final record).
/// </remarks>
public sealed class AccountLabScenario(ConcurrencyMode mode) : LabScenario
{
    /// <summary>Think time bounds of the agents' LLM call.</summary>
    public static readonly (TimeSpan Min, TimeSpan Max) Think = (TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(2000));

    /// <inheritdoc />
    public override string Name => "account";

    /// <inheritdoc />
    public override string Mode => mode.ToString().ToLowerInvariant();

    /// <inheritdoc />
    public override string Description =>
        "three agents (status, fees, compliance) read account acct-42, think for 0.2-2 s and write their field back " + mode switch
        {
            ConcurrencyMode.Naive => "as a blind put of the whole record",
            ConcurrencyMode.Optimistic => "with compare-and-swap, retrying on conflict",
            _ => "as an atomic patch of just that field",
        };

    /// <inheritdoc />
    public override bool ExpectedToPass => mode != ConcurrencyMode.Naive;

    /// <inheritdoc />
    public override string FailurePhrase => "lost an update";

    /// <inheritdoc />
    public override IReadOnlyList<string> Agents { get; } = [.. AccountScenario.Updates.Select(u => u.Agent)];

    /// <inheritdoc />
    public override string? HistoryModel => "txn";

    /// <inheritdoc />
    public override LabScenarioRun CreateRun() => new Run(mode);

    private sealed class Run(ConcurrencyMode mode) : LabScenarioRun
    {
        private const int SetupProcess = 10_000;
        private readonly Dictionary<int, WriteResult> _applied = [];

        public override async ValueTask SetupAsync(LabRunContext context, CancellationToken cancellationToken)
        {
            using var txn = TxnRecording.Begin(context.History, SetupProcess, "onboarding", MicroOp.Write(AccountScenario.Key, AccountScenario.InitialValue));
            var write = await context.Backend.PutAsync(context.Namespace, AccountScenario.Key, AccountScenario.InitialValue,
                new WriteOptions { Expect = Expect.Absent, Agent = "onboarding" }, cancellationToken).ConfigureAwait(false);
            if (!write.IsApplied) throw new InvalidOperationException($"Could not create {AccountScenario.Key}: {write}");
            txn.Wrote(write.Record!);
            txn.Ok();
        }

        public override async Task RunAgentAsync(LabAgent agent, LabRunContext context, CancellationToken cancellationToken)
        {
            var update = AccountScenario.Updates[agent.Index];
            var session = agent.Session(context.Store, context.Namespace);
            var key = AccountScenario.Key;
            using var txn = TxnRecording.Begin(agent, MicroOp.Read(key), MicroOp.Write(key, HistoryValue.Of(new Dictionary<string, string> { [update.Field] = update.Value })));
            WriteResult? write;
            switch (mode)
            {
                case ConcurrencyMode.Naive:
                {
                    var read = await session.GetAsync(key, cancellationToken).ConfigureAwait(false);
                    txn.Read(key, read);
                    await agent.ThinkAsync($"decide {update.Field}", Think.Min, Think.Max, cancellationToken).ConfigureAwait(false);
                    // The bug: write back the whole record as read, with this agent's field changed.
                    write = await session.PutAsync(key, WithField(read, update), Expect.Any, cancellationToken: cancellationToken).ConfigureAwait(false);
                    break;
                }
                case ConcurrencyMode.Optimistic:
                {
                    var result = await session.UpdateAsync(key, async (current, ct) =>
                    {
                        // Each attempt re-thinks over the fresh record; only the last attempt's base counts.
                        txn.Reset();
                        txn.Read(key, current);
                        await agent.ThinkAsync($"decide {update.Field}", Think.Min, Think.Max, ct).ConfigureAwait(false);
                        return WithField(current, update);
                    }, cancellationToken: cancellationToken).ConfigureAwait(false);
                    write = result.Write;
                    break;
                }
                case ConcurrencyMode.Patch:
                {
                    await agent.ThinkAsync($"decide {update.Field}", Think.Min, Think.Max, cancellationToken).ConfigureAwait(false);
                    write = await session.PatchAsync(key, JsonPatch.Create().Add("/" + update.Field, update.Value), cancellationToken: cancellationToken).ConfigureAwait(false);
                    break;
                }
                default:
                    throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown mode");
            }

            if (write is { IsApplied: true, Record: { } written })
            {
                _applied[agent.Index] = write;
                txn.Wrote(written);
                txn.Ok();
            }
            else
            {
                txn.Fail(write?.ToString() ?? "nothing written");
            }
        }

        public override async ValueTask<LabVerdict> VerifyAsync(LabRunContext context, ScheduleResult result, CancellationToken cancellationToken)
        {
            var final = await context.Backend.GetAsync(context.Namespace, AccountScenario.Key, null, cancellationToken).ConfigureAwait(false)
                ?? throw new InvalidOperationException($"{AccountScenario.Key} disappeared");
            var lost = new List<string>();
            foreach (var (index, write) in _applied.OrderBy(p => p.Value.Version))
            {
                var update = AccountScenario.Updates[index];
                var now = AccountScenario.FieldOf(final.Value, update.Field);
                if (now == update.Value) continue;
                // The first later write that does not carry the value erased it.
                var by = _applied.Where(p => p.Value.Version > write.Version && AccountScenario.FieldOf(p.Value.Record!.Value, update.Field) != update.Value)
                    .OrderBy(p => p.Value.Version).Select(p => AccountScenario.Updates[p.Key].Agent).FirstOrDefault() ?? final.Writer ?? "?";
                lost.Add($"{update.Agent} set {update.Field}=\"{update.Value}\" at v{write.Version}, then {by} overwrote the whole record from an older read " +
                    $"({update.Field} is {(now is null ? "missing" : $"\"{now}\"")} at v{final.Version})");
            }

            return lost.Count == 0
                ? LabVerdict.Pass($"every applied update is in the final record (v{final.Version})")
                : LabVerdict.Fail("lost-update", string.Join("; ", lost));
        }

        private static JsonElement WithField(ConcordRecord? read, AccountUpdate update)
        {
            var node = read is { IsDeleted: false } ? JsonNode.Parse(read.Value.GetRawText())!.AsObject() : [];
            node[update.Field] = update.Value;
            return JsonSerializer.SerializeToElement(node);
        }
    }
}
