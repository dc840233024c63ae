using System.Text.Json;
using System.Text.Json.Nodes;
using Concord.Crdt;

namespace Concord.Lab.Scenarios;

/// <summary>
/// A shared research memory: a lead hands a question to four specialists through their queues; each reads the memory,
/// thinks (0.6–2 s, an LLM call) and appends a finding, twice, then reports "done" on a stream; a reviewer agent follows
/// that stream and, once all four are done, reads the memory and recommends. Naive agents write back the whole list they
/// read and erase each other's findings (lost appends); an append patch or an OR-set CRDT keeps them all.
/// </summary>
/// <remarks>Deterministic for a seed on a fresh store: the agents run on the agent runtime in virtual time.</remarks>
public sealed class ResearchMemoryScenario : IAgentScenario
{
    /// <summary>The memory's key.</summary>
    public const string Key = "research/memory";

    /// <summary>The reviewer's report.</summary>
    public const string ReportKey = "research/report";

    /// <summary>The specialists and the findings they will make, in order.</summary>
    public static IReadOnlyList<(string Agent, string[] Findings)> Specialists { get; } =
    [
        ("literature", ["compound B binds target K7 (Lee 2021)", "earlier trials stopped for efficacy, not safety"]),
        ("chemistry", ["synthesis yields 62% at gram scale", "stable 18 months at 4 °C"]),
        ("toxicology", ["SAFETY: liver toxicity in rats at 40 mg/kg", "no cardiac signal at the therapeutic dose"]),
        ("clinical", ["phase I cohort tolerated 10 mg/kg", "three sites can recruit by March"]),
    ];

    private const string Stop = "do not proceed: safety signal (SAFETY: liver toxicity in rats at 40 mg/kg)";
    private const string Proceed = "proceed to phase II";

    /// <summary>Creates the scenario: <paramref name="seed"/> fixes start offsets (0–0.5 s) and think times (0.6–2 s).</summary>
    public ResearchMemoryScenario(int seed)
    {
        Seed = seed;
        Plans = [.. Specialists.Select((s, i) =>
        {
            var random = new Random(ScenarioRandom.Derive(seed, i));
            return (ScenarioRandom.Milliseconds(random, 0, 500), s.Findings.Select(_ => ScenarioRandom.Milliseconds(random, 600, 2000)).ToArray());
        })];
    }

    /// <inheritdoc />
    public string Name => "research";

    /// <inheritdoc />
    public string Title => "shared research memory";

    /// <inheritdoc />
    public string Story =>
        "A lead hands the question \"should compound B go to phase II?\" to four specialists (literature, chemistry, toxicology, clinical) " +
        "through their queues. Each reads the shared memory, thinks 0.6–2 s (an LLM call, virtual time) and appends a finding, twice, " +
        "then reports done on a stream. A reviewer follows that stream and, once all four are done, reads the memory and recommends.";

    /// <inheritdoc />
    public int Seed { get; }

    /// <summary>Per specialist: start offset and think time per finding.</summary>
    public IReadOnlyList<(TimeSpan Start, TimeSpan[] Thinks)> Plans { get; }

    /// <inheritdoc />
    public IReadOnlyList<ConcurrencyMode> Modes { get; } = [ConcurrencyMode.Naive, ConcurrencyMode.Patch, ConcurrencyMode.Crdt];

    /// <inheritdoc />
    public bool IsSafe(ConcurrencyMode mode) => mode is ConcurrencyMode.Patch or ConcurrencyMode.Crdt;

    private sealed record Append(string Agent, string Finding, long ReadVersion, long WroteVersion, DateTimeOffset ReadAt, DateTimeOffset WroteAt, IReadOnlyList<string> Written);

    /// <inheritdoc />
    public async Task<ScenarioRun> RunAsync(IConcordStore store, string ns, ConcurrencyMode mode, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (!Modes.Contains(mode)) throw new ArgumentOutOfRangeException(nameof(mode), mode, "research supports naive, patch and crdt");
        await ScenarioKit.ClearAsync(store, ns, cancellationToken).ConfigureAwait(false);
        if (mode != ConcurrencyMode.Crdt)
        {
            await store.PutAsync(ns, Key, ScenarioKit.Json(new { question = "should compound B go to phase II?", findings = Array.Empty<string>() }),
                new WriteOptions { Expect = Expect.Absent, Agent = "lead" }, cancellationToken).ConfigureAwait(false);
        }

        var (runtime, time) = ScenarioKit.NewRuntime(store, ns, Seed);
        var appends = new List<Append>();
        var gate = new Lock();
        runtime.AddAgent("lead", "Research lead").OnStart(async (ctx, ct) =>
        {
            foreach (var (agent, _) in Specialists) await ctx.EnqueueAsync("research." + agent, new { question = "should compound B go to phase II?" }, cancellationToken: ct).ConfigureAwait(false);
        });
        for (var i = 0; i < Specialists.Count; i++)
        {
            var (agent, findings) = Specialists[i];
            var (start, thinks) = Plans[i];
            runtime.AddAgent(agent).OnTask("research." + agent, async (ctx, ct) =>
            {
                await ctx.DelayAsync(start, ct).ConfigureAwait(false);
                var replica = new CrdtReplica<ORSet>(Key, agent);
                for (var f = 0; f < findings.Length; f++)
                {
                    var readAt = ctx.Time.GetUtcNow();
                    ConcordRecord? read;
                    if (mode == ConcurrencyMode.Crdt)
                    {
                        read = await ctx.Session.GetAsync(Key, ct).ConfigureAwait(false);
                        if (read is not null) replica.Receive(CrdtState.Parse<ORSet>(read.Value));
                    }
                    else
                    {
                        read = await ctx.Session.GetAsync(Key, ct).ConfigureAwait(false);
                    }
                    await ctx.DelayAsync(thinks[f], ct).ConfigureAwait(false); // the LLM reads the memory and produces a finding
                    var finding = findings[f];
                    WriteResult write;
                    IReadOnlyList<string> written;
                    switch (mode)
                    {
                        case ConcurrencyMode.Naive:
                        {
                            // The bug: write back the whole list as read, plus the new finding.
                            var doc = JsonNode.Parse(read!.Value.GetRawText())!.AsObject();
                            doc["findings"]!.AsArray().Add(finding);
                            written = Findings(doc["findings"]!.AsArray());
                            write = await ctx.Session.PutAsync(Key, JsonSerializer.SerializeToElement(doc), Expect.Any, cancellationToken: ct).ConfigureAwait(false);
                            break;
                        }
                        case ConcurrencyMode.Patch:
                            write = await ctx.Session.PatchAsync(Key, JsonPatch.Create().Append("/findings", finding), cancellationToken: ct).ConfigureAwait(false);
                            written = [finding];
                            break;
                        default:
                            replica.Update((s, id) => s.Add(id, ScenarioKit.Json(finding)));
                            var sync = await replica.SyncAsync(ctx.Session, ct).ConfigureAwait(false);
                            write = new WriteResult(Key, ConflictKind.None, null, sync.Revision);
                            written = [finding];
                            var after = await ctx.Session.GetAsync(Key, ct).ConfigureAwait(false);
                            lock (gate) appends.Add(new Append(agent, finding, read?.Version ?? 0, after?.Version ?? 0, readAt, ctx.Time.GetUtcNow(), written));
                            continue;
                    }
                    lock (gate) appends.Add(new Append(agent, finding, read?.Version ?? 0, write.IsApplied ? write.Version : 0, readAt, ctx.Time.GetUtcNow(), written));
                }
                await ctx.PublishAsync("research-progress", "done", new { agent }, ct).ConfigureAwait(false);
            });
        }
        DownstreamVerdict? verdict = null;
        var done = 0;
        runtime.AddAgent("reviewer", "Reviewer").OnEvent("research-progress", async (ctx, ct) =>
        {
            if (++done < Specialists.Count) return;
            var findings = await ReadFindingsAsync(ctx.Session, mode, ct).ConfigureAwait(false);
            var recommendation = findings.Any(f => f.StartsWith("SAFETY", StringComparison.Ordinal)) ? Stop : Proceed;
            var total = Specialists.Sum(s => s.Findings.Length);
            verdict = new DownstreamVerdict("reviewer", $"{findings.Count} of {total} findings",
                $"a report on {findings.Count} findings that recommends: {recommendation}", $"a report on all {total} findings that recommends: {Stop}",
                findings.Count == total && recommendation == Stop);
            ctx.AddEffect(TxnOp.Put(ReportKey, ScenarioKit.Json(new { findings = findings.Count, recommendation }), Expect.Absent));
        });

        var elapsed = await time.RunAsync(runtime.CreateFlows(), cancellationToken).ConfigureAwait(false);

        var final = await store.GetAsync(ns, Key, null, cancellationToken).ConfigureAwait(false) ?? throw new InvalidOperationException($"{Key} is missing after the run");
        var kept = await ReadFindingsAsync(new ConcordSession(store, ns, "audit"), mode, cancellationToken).ConfigureAwait(false);
        var ordered = appends.OrderBy(a => a.WroteVersion).ToList();
        var lost = new List<string>();
        foreach (var a in ordered.Where(a => !kept.Contains(a.Finding)))
        {
            var by = ordered.FirstOrDefault(b => b.WroteVersion > a.WroteVersion && !b.Written.Contains(a.Finding));
            lost.Add(by is null
                ? $"{a.Agent}'s finding \"{a.Finding}\" (v{a.WroteVersion}) is missing"
                : $"{a.Agent} appended \"{a.Finding}\" at v{a.WroteVersion} ({ScenarioKit.Seconds(a.WroteAt)}); {by.Agent} then wrote v{by.WroteVersion} " +
                  $"from the copy it had read at v{by.ReadVersion} ({ScenarioKit.Seconds(by.ReadAt)}), without it");
        }
        var lines = Specialists.Select(s =>
        {
            var mine = appends.Where(a => a.Agent == s.Agent).ToList();
            var did = string.Join("; ", mine.Select(a => mode == ConcurrencyMode.Naive
                ? $"read v{a.ReadVersion} at {ScenarioKit.Seconds(a.ReadAt)}, wrote v{a.WroteVersion} at {ScenarioKit.Seconds(a.WroteAt)}{(kept.Contains(a.Finding) ? "" : " (lost)")}"
                : $"appended at {ScenarioKit.Seconds(a.WroteAt)} → v{a.WroteVersion}"));
            return new ScenarioAgentLine(s.Agent, did, mine.All(a => kept.Contains(a.Finding)));
        }).ToList();
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
                    "Each specialist wrote back the whole list it had read before thinking; a write built on an older read erased the findings appended " +
                    "in between. Every write succeeded, so nobody was told.",
                ConcurrencyMode.Naive => "This seed's timing kept every finding: naive code is still wrong, only lucky.",
                ConcurrencyMode.Patch => "Each finding was an atomic append patch: the store added it to the list as it was at commit time, so there was no stale copy to write back.",
                _ => "Each finding was an add to an OR-set CRDT merged by the store: concurrent adds commute, so every finding survives without coordination.",
            },
            Downstream = verdict ?? new DownstreamVerdict("reviewer", "nothing", "never ran", "a recommendation", false),
            Conflicts = 0,
            Final = mode == ConcurrencyMode.Crdt ? CrdtState.Parse<ORSet>(final.Value).ToPlainJson() : final.Value,
            VirtualMs = (long)elapsed.TotalMilliseconds,
        };
    }

    private static List<string> Findings(JsonArray array) => [.. array.Select(n => n!.GetValue<string>())];

    private static async Task<List<string>> ReadFindingsAsync(ConcordSession session, ConcurrencyMode mode, CancellationToken cancellationToken)
    {
        if (mode == ConcurrencyMode.Crdt)
        {
            var set = await session.GetCrdtAsync<ORSet>(Key, cancellationToken).ConfigureAwait(false);
            return [.. set.ElementsAs<string>().Select(s => s!)];
        }
        var record = await session.GetAsync(Key, cancellationToken).ConfigureAwait(false);
        return record is null ? [] : [.. record.Value.GetProperty("findings").EnumerateArray().Select(e => e.GetString()!)];
    }
}
