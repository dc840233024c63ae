using System.Text.Json;

namespace Concord.Lab.Scenarios;

/// <summary>
/// Support-ticket triage: three tickets arrive; two triage agents each claim open tickets and reply to the customer, after
/// 0.4–2 s of thinking. Naive agents poll the ticket list and claim with a blind write: both claim the same ticket and the
/// customer gets two different answers. A compare-and-swap claim lets only one win; queue tasks give each ticket to exactly
/// one agent, whose claim and reply commit with the task's ack.
/// </summary>
/// <remarks>Deterministic for a seed on a fresh store: the agents run on the agent runtime in virtual time.</remarks>
public sealed class TicketTriageScenario : IAgentScenario
{
    /// <summary>Tickets live under this prefix: <c>tickets/T-101</c>.</summary>
    public const string TicketPrefix = "tickets/";

    /// <summary>Replies live under this prefix: <c>replies/T-101/{agent}</c>.</summary>
    public const string ReplyPrefix = "replies/";

    /// <summary>The tickets, in arrival order.</summary>
    public static IReadOnlyList<(string Id, string Subject)> Tickets { get; } =
    [
        ("T-101", "Charged twice for order 5512"),
        ("T-102", "Cannot log in after a password reset"),
        ("T-103", "Invoice shows the wrong VAT number"),
    ];

    /// <summary>The two agents and how each would answer each ticket (different, both plausible).</summary>
    public static IReadOnlyList<(string Agent, string[] Replies)> Agents { get; } =
    [
        ("triage-a", ["Refund of the duplicate charge issued; 3-5 days.", "Reset link sent again; it works for 24 h.", "Corrected invoice attached."]),
        ("triage-b", ["Please send the order number so we can investigate.", "Your account is locked; security will call you.", "VAT numbers cannot be changed after issue."]),
    ];

    /// <summary>Creates the scenario: <paramref name="seed"/> fixes arrivals (0–1.5 s), start offsets (0–0.5 s) and think times (0.4–2 s).</summary>
    public TicketTriageScenario(int seed)
    {
        Seed = seed;
        var random = new Random(ScenarioRandom.Derive(seed, 0));
        Arrivals = [.. Tickets.Select(_ => ScenarioRandom.Milliseconds(random, 0, 1500)).Order()];
        AgentPlans = [.. Agents.Select((a, i) =>
        {
            var r = new Random(ScenarioRandom.Derive(seed, 1 + i));
            return (ScenarioRandom.Milliseconds(r, 0, 500), Tickets.Select(_ => ScenarioRandom.Milliseconds(r, 400, 2000)).ToArray());
        })];
    }

    /// <inheritdoc />
    public string Name => "triage";

    /// <inheritdoc />
    public string Title => "support-ticket triage";

    /// <inheritdoc />
    public string Story =>
        "Three support tickets arrive within 1.5 s. Two triage agents (triage-a, triage-b) each take open tickets, think 0.4–2 s about the " +
        "answer (an LLM call, virtual time), claim the ticket and reply to the customer. Then the customer's inbox is checked: one answer per ticket?";

    /// <inheritdoc />
    public int Seed { get; }

    /// <summary>Arrival time of each ticket (sorted).</summary>
    public IReadOnlyList<TimeSpan> Arrivals { get; }

    /// <summary>Per agent: start offset and think time per ticket.</summary>
    public IReadOnlyList<(TimeSpan Start, TimeSpan[] Thinks)> AgentPlans { get; }

    /// <inheritdoc />
    public IReadOnlyList<ConcurrencyMode> Modes { get; } = [ConcurrencyMode.Naive, ConcurrencyMode.Optimistic, ConcurrencyMode.Queue];

    /// <inheritdoc />
    public bool IsSafe(ConcurrencyMode mode) => mode is ConcurrencyMode.Optimistic or ConcurrencyMode.Queue;

    private sealed record Claim(string Agent, string Ticket, long ReadVersion, DateTimeOffset ReadAt, long WroteVersion, DateTimeOffset At, bool Applied, string? LostTo);

    /// <inheritdoc />
    public async Task<ScenarioRun> RunAsync(IConcordStore store, string ns, ConcurrencyMode mode, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (!Modes.Contains(mode)) throw new ArgumentOutOfRangeException(nameof(mode), mode, "triage supports naive, optimistic and queue");
        await ScenarioKit.ClearAsync(store, ns, cancellationToken).ConfigureAwait(false);
        var (runtime, time) = ScenarioKit.NewRuntime(store, ns, Seed);
        var gate = new Lock();
        var claims = new List<Claim>();
        var intakeDone = false;

        runtime.AddAgent("intake", "Ticket intake").OnStart(async (ctx, ct) =>
        {
            var origin = ctx.Time.GetUtcNow();
            for (var i = 0; i < Tickets.Count; i++)
            {
                await ctx.DelayAsync(Arrivals[i] - (ctx.Time.GetUtcNow() - origin), ct).ConfigureAwait(false);
                var (id, subject) = Tickets[i];
                await ctx.Session.PutAsync(TicketPrefix + id, ScenarioKit.Json(new { id, subject, status = "open" }), Expect.Absent, cancellationToken: ct).ConfigureAwait(false);
                if (mode == ConcurrencyMode.Queue) await ctx.EnqueueAsync("tickets", new { id }, cancellationToken: ct).ConfigureAwait(false);
            }
            intakeDone = true;
        });

        for (var a = 0; a < Agents.Count; a++)
        {
            var (agent, replies) = Agents[a];
            var (start, thinks) = AgentPlans[a];
            var builder = runtime.AddAgent(agent);
            if (mode == ConcurrencyMode.Queue)
            {
                builder.OnTask("tickets", async (ctx, ct) =>
                {
                    var id = ctx.Payload.GetProperty("id").GetString()!;
                    var index = Tickets.ToList().FindIndex(t => t.Id == id);
                    var read = await ctx.Session.GetAsync(TicketPrefix + id, ct).ConfigureAwait(false);
                    var readAt = ctx.Time.GetUtcNow();
                    await ctx.DelayAsync(thinks[index], ct).ConfigureAwait(false);
                    // The claim and the reply commit with the ack: exactly once, or not at all (then the task is retried).
                    ctx.AddEffect(TxnOp.Put(TicketPrefix + id, Claimed(read!, agent), Expect.Version(read!.Version)));
                    ctx.AddEffect(TxnOp.Put($"{ReplyPrefix}{id}/{agent}", ScenarioKit.Json(new { ticket = id, agent, text = replies[index] }), Expect.Absent));
                    lock (gate) claims.Add(new Claim(agent, id, read.Version, readAt, read.Version + 1, ctx.Time.GetUtcNow(), true, null));
                });
                continue;
            }
            builder.OnStart(async (ctx, ct) =>
            {
                // Shared polling: look at the ticket list every 0.5 s and take what looks open.
                await ctx.DelayAsync(start, ct).ConfigureAwait(false);
                var seen = new HashSet<string>(StringComparer.Ordinal);
                while (true)
                {
                    var done = intakeDone;
                    var page = await ctx.Session.ListAsync(TicketPrefix, cancellationToken: ct).ConfigureAwait(false);
                    foreach (var ticket in page.Records.Where(r => r.Value.GetProperty("status").GetString() == "open" && !seen.Contains(r.Key)))
                    {
                        var id = ticket.Value.GetProperty("id").GetString()!;
                        var index = Tickets.ToList().FindIndex(t => t.Id == id);
                        seen.Add(ticket.Key);
                        var readAt = ctx.Time.GetUtcNow();
                        await ctx.DelayAsync(thinks[index], ct).ConfigureAwait(false);
                        var expect = mode == ConcurrencyMode.Naive ? Expect.Any : Expect.Version(ticket.Version);
                        var write = await ctx.Session.PutAsync(ticket.Key, Claimed(ticket, agent), expect, cancellationToken: ct).ConfigureAwait(false);
                        if (write.IsApplied)
                            await ctx.Session.PutAsync($"{ReplyPrefix}{id}/{agent}", ScenarioKit.Json(new { ticket = id, agent, text = replies[index] }), Expect.Any, cancellationToken: ct).ConfigureAwait(false);
                        lock (gate)
                        {
                            claims.Add(new Claim(agent, id, ticket.Version, readAt, write.IsApplied ? write.Version : 0, ctx.Time.GetUtcNow(), write.IsApplied,
                                write.IsApplied ? null : write.Record?.Writer));
                        }
                    }
                    if (done && !page.Records.Any(r => r.Value.GetProperty("status").GetString() == "open" && !seen.Contains(r.Key))) return;
                    await ctx.DelayAsync(TimeSpan.FromMilliseconds(500), ct).ConfigureAwait(false);
                }
            });
        }

        var elapsed = await time.RunAsync(runtime.CreateFlows(), cancellationToken).ConfigureAwait(false);

        var inbox = new ConcordSession(store, ns, "customer");
        var replyRecords = (await inbox.ListAsync(ReplyPrefix, cancellationToken: cancellationToken).ConfigureAwait(false)).Records;
        var tickets = (await inbox.ListAsync(TicketPrefix, cancellationToken: cancellationToken).ConfigureAwait(false)).Records;
        var lost = new List<string>();
        var problems = new List<string>();
        foreach (var (id, _) in Tickets)
        {
            var answers = replyRecords.Where(r => r.Key.StartsWith($"{ReplyPrefix}{id}/", StringComparison.Ordinal)).ToList();
            var owner = tickets.FirstOrDefault(t => t.Key == TicketPrefix + id)?.Value.GetProperty("assignee").GetString();
            if (answers.Count == 1) continue;
            problems.Add(answers.Count == 0 ? $"{id}: no answer" : $"{id}: {answers.Count} different answers ({string.Join("; ", answers.Select(r => $"{r.Writer}: \"{r.Value.GetProperty("text").GetString()}\""))})");
            var applied = claims.Where(c => c.Ticket == id && c.Applied).OrderBy(c => c.WroteVersion).ToList();
            if (applied.Count > 1)
            {
                var first = applied[0];
                var second = applied[1];
                lost.Add($"{id} was claimed twice: {first.Agent} claimed it at v{first.WroteVersion} ({ScenarioKit.Seconds(first.At)}) and replied; {second.Agent}, which had read it " +
                         $"open at v{second.ReadVersion} ({ScenarioKit.Seconds(second.ReadAt)}), overwrote the claim at v{second.WroteVersion} and replied too " +
                         $"(the ticket now says {owner}; {(owner == first.Agent ? second.Agent : first.Agent)}'s claim was silently erased)");
            }
        }
        var lines = Agents.Select(a =>
        {
            var mine = claims.Where(c => c.Agent == a.Agent).ToList();
            var did = mine.Count == 0 ? "handled no ticket" : string.Join("; ", mine.Select(c => c.Applied
                ? $"{c.Ticket}: read v{c.ReadVersion} at {ScenarioKit.Seconds(c.ReadAt)}, claimed v{c.WroteVersion} and replied at {ScenarioKit.Seconds(c.At)}"
                : $"{c.Ticket}: claim refused at {ScenarioKit.Seconds(c.At)} (taken by {c.LostTo}), no reply"));
            var ok = !lost.Any(l => l.Contains(a.Agent, StringComparison.Ordinal));
            return new ScenarioAgentLine(a.Agent, did, ok);
        }).ToList();
        var conflicts = claims.Count(c => !c.Applied);
        var expectedOutput = $"{Tickets.Count} tickets, one answer each";
        var output = problems.Count == 0 ? expectedOutput : string.Join(" | ", problems);
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
                    "Both agents saw the ticket open, thought, and claimed it with a blind write: the second claim erased the first without telling anyone, " +
                    "and both replies went out.",
                ConcurrencyMode.Naive => "This seed's timing never let both agents see a ticket open: naive code is still wrong, only lucky.",
                ConcurrencyMode.Optimistic =>
                    $"The claim states the version the agent read: {(conflicts == 0 ? "no claim was stale this time" : $"{conflicts} late claim{(conflicts == 1 ? " was" : "s were")} refused (version conflict)")}, " +
                    "so the loser knew it had lost and sent nothing.",
                _ => "Each ticket was a queue task leased by exactly one agent; its claim and reply committed in one transaction with the ack, so no ticket " +
                     "could be handled twice (the agents never polled).",
            },
            Downstream = new DownstreamVerdict("customer", $"{replyRecords.Count} answers for {Tickets.Count} tickets", output, expectedOutput, problems.Count == 0),
            Conflicts = conflicts,
            Final = ScenarioKit.Json(tickets.ToDictionary(t => t.Key, t => t.Value)),
            VirtualMs = (long)elapsed.TotalMilliseconds,
        };
    }

    private static JsonElement Claimed(ConcordRecord ticket, string agent) => ScenarioKit.Json(new
    {
        id = ticket.Value.GetProperty("id").GetString(),
        subject = ticket.Value.GetProperty("subject").GetString(),
        status = "claimed",
        assignee = agent,
    });
}
