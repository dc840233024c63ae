using System.Globalization;

namespace Concord.Lab.Scenarios;

/// <summary>
/// A shared budget: two agents each check how much of the quarter's budget is left, think (0.5–2 s), and spend if their
/// purchase fits. Each check is right when made, but both pass against the same remainder, and the two spends, written to
/// different keys, overspend the budget: write skew. Per-key versions cannot see it (the keys differ); a serializable
/// transaction that read the spend range refuses the second commit, and the retried decision declines.
/// </summary>
/// <remarks>Deterministic for a seed on a fresh store: the agents run on the agent runtime in virtual time.</remarks>
public sealed class BudgetScenario : IAgentScenario
{
    /// <summary>The budget: <c>{"limit":1000}</c>.</summary>
    public const string BudgetKey = "budget/q3";

    /// <summary>Spends live under this prefix, one key each.</summary>
    public const string SpendPrefix = "budget/q3/spend/";

    /// <summary>The quarter's limit.</summary>
    public const int Limit = 1000;

    /// <summary>Already spent before the agents run.</summary>
    public const int AlreadySpent = 400;

    /// <summary>The agents and what each wants to buy.</summary>
    public static IReadOnlyList<(string Agent, int Amount, string Item)> Requests { get; } =
    [
        ("marketing", 500, "ad campaign"),
        ("infra", 450, "GPU hours"),
    ];

    /// <summary>Creates the scenario: <paramref name="seed"/> fixes start offsets (0–0.3 s) and think times (0.5–2 s).</summary>
    public BudgetScenario(int seed)
    {
        Seed = seed;
        Plans = [.. Requests.Select((_, i) =>
        {
            var random = new Random(ScenarioRandom.Derive(seed, i));
            return (ScenarioRandom.Milliseconds(random, 0, 300), ScenarioRandom.Milliseconds(random, 500, 2000));
        })];
    }

    /// <inheritdoc />
    public string Name => "budget";

    /// <inheritdoc />
    public string Title => "shared budget (write skew)";

    /// <inheritdoc />
    public string Story =>
        $"The Q3 budget is {Usd(Limit)}; {Usd(AlreadySpent)} is already spent. Two agents get purchase requests at once: marketing wants " +
        $"{Usd(500)} (ad campaign), infra {Usd(450)} (GPU hours). Each checks what is left, thinks 0.5–2 s (an LLM call, virtual time) and " +
        "spends if the purchase fits. Then a finance agent audits the quarter.";

    /// <inheritdoc />
    public int Seed { get; }

    /// <summary>Per agent: start offset and think time.</summary>
    public IReadOnlyList<(TimeSpan Start, TimeSpan Think)> Plans { get; }

    /// <inheritdoc />
    public IReadOnlyList<ConcurrencyMode> Modes { get; } = [ConcurrencyMode.Naive, ConcurrencyMode.Optimistic, ConcurrencyMode.Serializable];

    /// <inheritdoc />
    public bool IsSafe(ConcurrencyMode mode) => mode == ConcurrencyMode.Serializable;

    private sealed record Decision(string Agent, int Remaining, DateTimeOffset CheckedAt, bool Spent, DateTimeOffset At, int Attempts);

    /// <inheritdoc />
    public async Task<ScenarioRun> RunAsync(IConcordStore store, string ns, ConcurrencyMode mode, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (!Modes.Contains(mode)) throw new ArgumentOutOfRangeException(nameof(mode), mode, "budget supports naive, optimistic and serializable");
        await ScenarioKit.ClearAsync(store, ns, cancellationToken).ConfigureAwait(false);
        await store.PutAsync(ns, BudgetKey, ScenarioKit.Json(new { limit = Limit }), new WriteOptions { Expect = Expect.Absent, Agent = "cfo" }, cancellationToken).ConfigureAwait(false);
        await store.PutAsync(ns, SpendPrefix + "ops-1", ScenarioKit.Json(new { amount = AlreadySpent, by = "ops", item = "cloud bill" }),
            new WriteOptions { Expect = Expect.Absent, Agent = "ops" }, cancellationToken).ConfigureAwait(false);

        var (runtime, time) = ScenarioKit.NewRuntime(store, ns, Seed);
        var gate = new Lock();
        var decisions = new List<Decision>();
        runtime.AddAgent("cfo", "CFO").OnStart(async (ctx, ct) =>
        {
            foreach (var (agent, amount, item) in Requests) await ctx.EnqueueAsync("purchases." + agent, new { amount, item }, cancellationToken: ct).ConfigureAwait(false);
        });
        for (var i = 0; i < Requests.Count; i++)
        {
            var (agent, amount, item) = Requests[i];
            var (start, think) = Plans[i];
            runtime.AddAgent(agent).OnTask("purchases." + agent, async (ctx, ct) =>
            {
                await ctx.DelayAsync(start, ct).ConfigureAwait(false);
                var spendKey = SpendPrefix + agent + "-1";
                var spend = ScenarioKit.Json(new { amount, by = agent, item });
                if (mode == ConcurrencyMode.Serializable)
                {
                    var remaining = 0;
                    var checkedAt = ctx.Time.GetUtcNow();
                    var spent = false;
                    var commit = await ctx.Session.RunTransactionAsync(async (tx, c) =>
                    {
                        // Reads inside the transaction are recorded: the budget key and the whole spend range (no phantoms).
                        var budget = await tx.GetAsync(BudgetKey, c).ConfigureAwait(false);
                        var spends = await tx.ListAsync(SpendPrefix, c).ConfigureAwait(false);
                        remaining = budget!.Value.GetProperty("limit").GetInt32() - spends.Sum(s => s.Value.GetProperty("amount").GetInt32());
                        checkedAt = ctx.Time.GetUtcNow();
                        await ctx.DelayAsync(think, c).ConfigureAwait(false);
                        spent = amount <= remaining;
                        if (spent) tx.Put(spendKey, spend);
                    }, cancellationToken: ct).ConfigureAwait(false);
                    lock (gate) decisions.Add(new Decision(agent, remaining, checkedAt, spent && commit.Committed, ctx.Time.GetUtcNow(), commit.Attempts));
                    return;
                }
                var limit = (await ctx.Session.GetAsync(BudgetKey, ct).ConfigureAwait(false))!.Value.GetProperty("limit").GetInt32();
                var page = await ctx.Session.ListAsync(SpendPrefix, cancellationToken: ct).ConfigureAwait(false);
                var left = limit - page.Records.Sum(s => s.Value.GetProperty("amount").GetInt32());
                var at = ctx.Time.GetUtcNow();
                await ctx.DelayAsync(think, ct).ConfigureAwait(false);
                var ok = amount <= left;
                if (ok)
                {
                    // Optimistic: the spend's own key is version-checked (create-only), which is all a per-key check can say.
                    var write = await ctx.Session.PutAsync(spendKey, spend, mode == ConcurrencyMode.Naive ? Expect.Any : Expect.Absent, cancellationToken: ct).ConfigureAwait(false);
                    ok = write.IsApplied;
                }
                lock (gate) decisions.Add(new Decision(agent, left, at, ok, ctx.Time.GetUtcNow(), 1));
            });
        }

        var elapsed = await time.RunAsync(runtime.CreateFlows(), cancellationToken).ConfigureAwait(false);

        var audit = new ConcordSession(store, ns, "finance");
        var spends = (await audit.ListAsync(SpendPrefix, cancellationToken: cancellationToken).ConfigureAwait(false)).Records;
        var total = spends.Sum(s => s.Value.GetProperty("amount").GetInt32());
        var lost = new List<string>();
        var ordered = decisions.Where(d => d.Spent).OrderBy(d => d.At).ToList();
        if (total > Limit && ordered.Count >= 2)
        {
            var first = ordered[0];
            var second = ordered[1];
            lost.Add($"{second.Agent} checked at {ScenarioKit.Seconds(second.CheckedAt)} that {Usd(second.Remaining)} was left, before {first.Agent}'s spend " +
                     $"({ScenarioKit.Seconds(first.At)}); {first.Agent} had seen {Usd(first.Remaining)} too. Each check was true when made; together they spent " +
                     $"{Usd(Requests.Where(r => ordered.Any(o => o.Agent == r.Agent)).Sum(r => r.Amount))} of the {Usd(Limit - AlreadySpent)} left: " +
                     $"the budget is overspent by {Usd(total - Limit)}");
        }
        var lines = Requests.Select(r =>
        {
            var d = decisions.FirstOrDefault(x => x.Agent == r.Agent);
            if (d is null) return new ScenarioAgentLine(r.Agent, "did not decide", false);
            var did = $"saw {Usd(d.Remaining)} left at {ScenarioKit.Seconds(d.CheckedAt)}" +
                      (d.Attempts > 1 ? $" (after {d.Attempts - 1} refused commit{(d.Attempts == 2 ? "" : "s")}: the spend range changed)" : "") +
                      (d.Spent ? $", spent {Usd(r.Amount)} on {r.Item} at {ScenarioKit.Seconds(d.At)}" : $", declined {Usd(r.Amount)} ({r.Item}): it does not fit");
            return new ScenarioAgentLine(r.Agent, did, total <= Limit);
        }).ToList();
        var conflicts = decisions.Sum(d => d.Attempts - 1);
        var expectedOutput = $"within budget: spent at most {Usd(Limit)}";
        return new ScenarioRun
        {
            Scenario = Name,
            Mode = mode,
            Namespace = ns,
            Agents = lines,
            Lost = lost,
            Explanation = mode switch
            {
                ConcurrencyMode.Naive when lost.Count > 0 =>
                    "Write skew: each agent checked the remaining budget, then wrote its own spend record. The two writes touch different keys, so neither " +
                    "overwrote anything, and the invariant (spends ≤ limit) broke between them.",
                ConcurrencyMode.Optimistic when lost.Count > 0 =>
                    "Per-key versions did not help: each spend was a version-checked create of its own key and both were valid. The conflict is between " +
                    "what one agent read (the spend range) and what the other wrote: only a transaction that validates its reads catches it.",
                ConcurrencyMode.Serializable =>
                    $"Each decision ran in a serializable transaction that read the budget and the whole spend range; {(conflicts == 0 ? "no commit was refused this time" : $"the later commit was refused ({conflicts}×: the range it read had changed)")}, " +
                    "re-ran on the new total and declined what no longer fit.",
                _ => "This seed's timing kept the budget: the unsafe code is still wrong, only lucky.",
            },
            Downstream = new DownstreamVerdict("finance", $"{spends.Count} spends, total {Usd(total)} against a limit of {Usd(Limit)}",
                total <= Limit ? $"within budget: spent {Usd(total)} of {Usd(Limit)}" : $"over budget by {Usd(total - Limit)}: the quarter's card is declined and the overspend goes to review",
                expectedOutput, total <= Limit),
            Conflicts = conflicts,
            Final = ScenarioKit.Json(spends.ToDictionary(s => s.Key, s => s.Value)),
            VirtualMs = (long)elapsed.TotalMilliseconds,
        };
    }

    private static string Usd(int amount) => "$" + amount.ToString("N0", CultureInfo.InvariantCulture);
}
