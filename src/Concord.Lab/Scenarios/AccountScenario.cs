using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Concord.Lab.Time;

namespace Concord.Lab.Scenarios;

/// <summary>One agent's intended change to the account: set <see cref="Field"/> to <see cref="Value"/>.</summary>
/// <param name="Agent">Agent id (also the session's agent id, so records say who wrote them).</param>
/// <param name="Field">The top-level field the agent owns.</param>
/// <param name="Value">The value it decides on.</param>
/// <param name="Reason">Why, in a few words (what the "LLM" concluded).</param>
public sealed record AccountUpdate(string Agent, string Field, string Value, string Reason);

/// <summary>When an agent starts and how long its first think takes (virtual time).</summary>
/// <param name="StartAfter">Delay before the agent reads the account.</param>
/// <param name="Think">Think time between the read and the write (a retry thinks again, for a new duration).</param>
public sealed record AgentSchedule(TimeSpan StartAfter, TimeSpan Think);

/// <summary>What one agent did during a run. Times are virtual milliseconds since the run started.</summary>
public sealed record AccountAgentReport
{
    /// <summary>Agent id.</summary>
    public required string Agent { get; init; }

    /// <summary>Field it owns.</summary>
    public required string Field { get; init; }

    /// <summary>Value it meant to write.</summary>
    public required string Value { get; init; }

    /// <summary>When it first read the account.</summary>
    public long StartMs { get; init; }

    /// <summary>Version of the first read.</summary>
    public long ReadVersion { get; init; }

    /// <summary>Version the final write attempt was computed from.</summary>
    public long BasedOnVersion { get; init; }

    /// <summary>Total think time, over all attempts.</summary>
    public long ThinkMs { get; init; }

    /// <summary>Write attempts (1 = no conflict).</summary>
    public int Attempts { get; init; }

    /// <summary>Conflicts met: attempts that were refused and recomputed, or the final refusal.</summary>
    public int Conflicts { get; init; }

    /// <summary>True when the agent's write was applied.</summary>
    public bool Applied { get; init; }

    /// <summary>Why the last attempt was refused (<see cref="ConflictKind.None"/> when applied).</summary>
    public ConflictKind Conflict { get; init; }

    /// <summary>Version the agent's write created (0 when refused).</summary>
    public long WroteVersion { get; init; }

    /// <summary>When the agent finished.</summary>
    public long DoneMs { get; init; }

    /// <summary>True when the final record still holds the agent's value.</summary>
    public bool Kept { get; init; }

    /// <summary>The record the agent's write produced (null when refused).</summary>
    [JsonIgnore]
    public ConcordRecord? Written { get; init; }
}

/// <summary>An update that was applied and then silently erased by a later full-record write.</summary>
/// <param name="Agent">Whose update was lost.</param>
/// <param name="Field">The field it set.</param>
/// <param name="Value">The value it set.</param>
/// <param name="Version">The version its write created.</param>
/// <param name="OverwrittenBy">The agent whose write erased it.</param>
/// <param name="OverwrittenAtVersion">The version that write created.</param>
/// <param name="OverwriterReadVersion">The version the overwriter had read: older than <paramref name="Version"/>, so it never saw the update.</param>
/// <param name="FinalValue">What the field holds in the end (null = missing).</param>
public sealed record LostUpdate(string Agent, string Field, string Value, long Version, string OverwrittenBy,
    long OverwrittenAtVersion, long OverwriterReadVersion, string? FinalValue)
{
    /// <summary>The loss in one sentence.</summary>
    public string Explanation =>
        $"{Agent} set {Field}=\"{Value}\" at v{Version}; {OverwrittenBy} overwrote the whole record at v{OverwrittenAtVersion} " +
        $"with a copy it had read at v{OverwriterReadVersion}, so {Field} is {(FinalValue is null ? "<missing>" : $"\"{FinalValue}\"")} again";
}

/// <summary>The downstream risk agent's reading of the final record.</summary>
/// <param name="Status">Account status it saw (null = missing).</param>
/// <param name="Fees">Fee state it saw.</param>
/// <param name="Compliance">Compliance state it saw.</param>
/// <param name="Verdict">Its verdict: <c>high</c>, <c>medium</c> or <c>low</c>.</param>
/// <param name="Reason">Why.</param>
/// <param name="ExpectedVerdict">The verdict with every agent's update applied.</param>
public sealed record RiskAssessment(string? Status, string? Fees, string? Compliance, string Verdict, string Reason, string ExpectedVerdict)
{
    /// <summary>True when the verdict matches the one every update applied would give.</summary>
    public bool Correct => Verdict == ExpectedVerdict;
}

/// <summary>The outcome of one <see cref="AccountScenario"/> run.</summary>
public sealed record AccountRun
{
    /// <summary>How the agents wrote.</summary>
    public required ConcurrencyMode Mode { get; init; }

    /// <summary>True when the namespace refused blind writes (strict mode).</summary>
    public required bool Strict { get; init; }

    /// <summary>Namespace the run used.</summary>
    public required string Namespace { get; init; }

    /// <summary>Per-agent reports, in agent order.</summary>
    public required IReadOnlyList<AccountAgentReport> Agents { get; init; }

    /// <summary>The account at the end.</summary>
    public required JsonElement Final { get; init; }

    /// <summary>Its version.</summary>
    public required long FinalVersion { get; init; }

    /// <summary>Who wrote it last.</summary>
    public required string? FinalWriter { get; init; }

    /// <summary>Updates applied and then silently erased.</summary>
    public required IReadOnlyList<LostUpdate> Lost { get; init; }

    /// <summary>Writes refused with a conflict the agent was told about (nothing lost silently).</summary>
    public int Refused => Agents.Count(a => !a.Applied);

    /// <summary>Updates present in the final record.</summary>
    public int Kept => Agents.Count(a => a.Kept);

    /// <summary>Conflicts met by all agents together.</summary>
    public int Conflicts => Agents.Sum(a => a.Conflicts);

    /// <summary>The downstream risk agent's verdict on <see cref="Final"/>.</summary>
    public required RiskAssessment Risk { get; init; }

    /// <summary>Virtual time the run took, in milliseconds.</summary>
    public required long VirtualMs { get; init; }
}

/// <summary>
/// The seed scenario: three agents (status, fees, compliance) each read account <c>acct-42</c>, think for 0.2–2 s
/// (an LLM call, in virtual time) and write their field; then a downstream risk agent scores the result. With
/// naive full-record writes the last writer erases the others' updates and the risk agent reasons over garbage.
/// </summary>
/// <remarks>
/// Deterministic: start offsets and think times come from the seed, and the run is driven by a
/// <see cref="VirtualTimeProvider"/>, so the same seed on a fresh store yields the same versions, losses and verdict.
/// Reusable by the lab: each <see cref="AccountAgent"/> only needs a <see cref="ConcordSession"/> and a <see cref="TimeProvider"/>.
/// </remarks>
public sealed class AccountScenario
{
    /// <summary>The account's key.</summary>
    public const string Key = "accounts/acct-42";

    /// <summary>The agents' intended updates, in agent order.</summary>
    public static IReadOnlyList<AccountUpdate> Updates { get; } =
    [
        new("status", "status", "restricted", "unusual login pattern"),
        new("fees", "fees", "unpaid", "March invoice 30 days overdue"),
        new("compliance", "compliance", "review", "KYC documents expired"),
    ];

    private readonly int _seed;

    /// <summary>Creates the scenario; <paramref name="seed"/> fixes start offsets (0–0.5 s) and think times (0.2–2 s).</summary>
    public AccountScenario(int seed)
    {
        _seed = seed;
        var schedules = new List<AgentSchedule>(Updates.Count);
        for (var i = 0; i < Updates.Count; i++)
        {
            var random = new Random(ScenarioRandom.Derive(seed, i));
            schedules.Add(new AgentSchedule(ScenarioRandom.Milliseconds(random, 0, 500), AccountAgent.DrawThink(random)));
        }
        Schedules = schedules;
    }

    /// <summary>The seed.</summary>
    public int Seed => _seed;

    /// <summary>
    /// Real seconds per virtual second (<see cref="VirtualTimeProvider.Pace"/>): 1.0 runs think times in real time so a
    /// person can watch the run on the dashboard; the outcome is the same at any pace. <value>Default: 0 (as fast as possible).</value>
    /// </summary>
    public double Pace { get; init; }

    /// <summary>Each agent's start offset and first think time, in agent order.</summary>
    public IReadOnlyList<AgentSchedule> Schedules { get; }

    /// <summary>The account before the agents run: no compliance review yet.</summary>
    public static JsonElement InitialValue { get; } = JsonSerializer.SerializeToElement(new JsonObject
    {
        ["id"] = "acct-42",
        ["holder"] = "Ada Example",
        ["status"] = "active",
        ["fees"] = "paid",
    });

    /// <summary>The account with every agent's update applied: what a correct run ends with.</summary>
    public static JsonElement ExpectedValue
    {
        get
        {
            var node = JsonNode.Parse(InitialValue.GetRawText())!.AsObject();
            foreach (var u in Updates) node[u.Field] = u.Value;
            return JsonSerializer.SerializeToElement(node);
        }
    }

    /// <summary>
    /// Resets the account in <paramref name="ns"/>, runs the three agents in virtual time, and lets the risk agent
    /// score the result.
    /// </summary>
    /// <param name="store">The store; give it its own clock (not the virtual one).</param>
    /// <param name="ns">Namespace; its strictness decides whether naive blind writes are refused.</param>
    /// <param name="mode">How the agents write.</param>
    /// <param name="strict">Whether <paramref name="ns"/> is strict, for the report.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    public async Task<AccountRun> RunAsync(IConcordStore store, string ns, ConcurrencyMode mode, bool strict, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        var setup = new ConcordSession(store, ns, "onboarding");
        // A version expectation, not a blind put, so setup also works in strict namespaces and on reused data.
        var existing = await setup.GetAsync(Key, cancellationToken).ConfigureAwait(false);
        var reset = await setup.PutAsync(Key, InitialValue, Expect.Version(existing?.Version ?? 0), cancellationToken: cancellationToken).ConfigureAwait(false);
        if (!reset.IsApplied) throw new InvalidOperationException($"Could not reset {Key}: {reset}");

        var time = new VirtualTimeProvider { Pace = Pace };
        var agents = new AccountAgent[Updates.Count];
        var runs = new List<Func<CancellationToken, Task>>(agents.Length);
        for (var i = 0; i < agents.Length; i++)
        {
            var agent = agents[i] = new AccountAgent(Updates[i], Schedules[i], new Random(ScenarioRandom.Derive(_seed, 100 + i)));
            var session = new ConcordSession(store, ns, agent.Update.Agent, new SessionOptions
            {
                TimeProvider = time,
                Randomizer = new SeededRandomizer(ScenarioRandom.Derive(_seed, 200 + i)),
            });
            runs.Add(ct => agent.RunAsync(session, time, mode, ct));
        }
        var elapsed = await time.RunAsync(runs, cancellationToken).ConfigureAwait(false);

        var final = await setup.GetAsync(Key, cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidOperationException($"{Key} disappeared during the run");
        var reports = agents.Select(a => a.Report! with { Kept = FieldOf(final.Value, a.Update.Field) == a.Update.Value }).ToList();
        var risk = await RiskAgent.AssessAsync(new ConcordSession(store, ns, "risk"), Key, cancellationToken).ConfigureAwait(false);
        return new AccountRun
        {
            Mode = mode,
            Strict = strict,
            Namespace = ns,
            Agents = reports,
            Final = final.Value,
            FinalVersion = final.Version,
            FinalWriter = final.Writer,
            Lost = FindLostUpdates(reports, final),
            Risk = risk,
            VirtualMs = (long)elapsed.TotalMilliseconds,
        };
    }

    /// <summary>Applied updates missing from the final record, each with the write that erased it.</summary>
    internal static List<LostUpdate> FindLostUpdates(IReadOnlyList<AccountAgentReport> reports, ConcordRecord final)
    {
        var applied = reports.Where(r => r.Written is not null).OrderBy(r => r.WroteVersion).ToList();
        var lost = new List<LostUpdate>();
        foreach (var r in applied)
        {
            if (r.Kept) continue;
            // The first later write whose copy of the field is not this agent's value: it wrote from a stale read.
            var by = applied.FirstOrDefault(b => b.WroteVersion > r.WroteVersion && FieldOf(b.Written!.Value, r.Field) != r.Value);
            lost.Add(new LostUpdate(r.Agent, r.Field, r.Value, r.WroteVersion, by?.Agent ?? final.Writer ?? "?",
                by?.WroteVersion ?? final.Version, by?.BasedOnVersion ?? 0, FieldOf(final.Value, r.Field)));
        }
        return lost;
    }

    /// <summary>The string at top-level <paramref name="field"/>, or null when missing (or not a string).</summary>
    public static string? FieldOf(JsonElement value, string field) =>
        value.ValueKind == JsonValueKind.Object && value.TryGetProperty(field, out var f) && f.ValueKind == JsonValueKind.String ? f.GetString() : null;
}

/// <summary>One of the three account agents: reads the account, thinks, writes its field according to a <see cref="ConcurrencyMode"/>.</summary>
/// <remarks>Single use: create one per run. Waits only through <see cref="Task.Delay(TimeSpan, TimeProvider, CancellationToken)"/> on the given clock.</remarks>
public sealed class AccountAgent
{
    private readonly Random _random;
    private readonly List<long> _reads = [];
    private long _thinkMs;
    private int _thinks;

    /// <summary>Creates an agent; <paramref name="random"/> draws the think times of retries.</summary>
    public AccountAgent(AccountUpdate update, AgentSchedule schedule, Random random)
    {
        Update = update;
        Schedule = schedule;
        _random = random;
    }

    /// <summary>What the agent will write.</summary>
    public AccountUpdate Update { get; }

    /// <summary>When it starts and how long its first think takes.</summary>
    public AgentSchedule Schedule { get; }

    /// <summary>The report, once <see cref="RunAsync"/> finished.</summary>
    public AccountAgentReport? Report { get; private set; }

    internal static TimeSpan DrawThink(Random random) => ScenarioRandom.Milliseconds(random, 200, 2000);

    /// <summary>Runs the agent against <see cref="AccountScenario.Key"/>.</summary>
    public async Task RunAsync(ConcordSession session, TimeProvider time, ConcurrencyMode mode, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(time);
        var origin = time.GetTimestamp();
        await Task.Delay(Schedule.StartAfter, time, cancellationToken).ConfigureAwait(false);
        var startMs = Ms(time.GetElapsedTime(origin));
        WriteResult? write;
        var attempts = 1;
        switch (mode)
        {
            case ConcurrencyMode.Naive:
            {
                var read = await ReadAsync(session, cancellationToken).ConfigureAwait(false);
                await ThinkAsync(time, cancellationToken).ConfigureAwait(false);
                // The bug this scenario is about: write back the whole record as read, with the agent's field changed.
                write = await session.PutAsync(AccountScenario.Key, WithField(read), Expect.Any, cancellationToken: cancellationToken).ConfigureAwait(false);
                break;
            }
            case ConcurrencyMode.Optimistic:
            {
                var update = await session.UpdateAsync(AccountScenario.Key, async (current, ct) =>
                {
                    // Each attempt thinks again over the fresh record (re-prompting the model with the new state).
                    _reads.Add(current?.Version ?? 0);
                    await ThinkAsync(time, ct).ConfigureAwait(false);
                    return WithField(current);
                }, cancellationToken: cancellationToken).ConfigureAwait(false);
                write = update.Write;
                attempts = update.Attempts;
                break;
            }
            case ConcurrencyMode.Patch:
            {
                await ReadAsync(session, cancellationToken).ConfigureAwait(false);
                await ThinkAsync(time, cancellationToken).ConfigureAwait(false);
                var patch = JsonPatch.Create().Add("/" + Update.Field, Update.Value);
                write = await session.PatchAsync(AccountScenario.Key, patch, cancellationToken: cancellationToken).ConfigureAwait(false);
                break;
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown mode");
        }
        var applied = write?.IsApplied == true;
        Report = new AccountAgentReport
        {
            Agent = Update.Agent,
            Field = Update.Field,
            Value = Update.Value,
            StartMs = startMs,
            ReadVersion = _reads.Count > 0 ? _reads[0] : 0,
            BasedOnVersion = _reads.Count > 0 ? _reads[^1] : 0,
            ThinkMs = _thinkMs,
            Attempts = attempts,
            Conflicts = attempts - 1 + (applied ? 0 : 1),
            Applied = applied,
            Conflict = write?.Conflict ?? ConflictKind.None,
            WroteVersion = applied ? write!.Version : 0,
            DoneMs = Ms(time.GetElapsedTime(origin)),
            Written = applied ? write!.Record : null,
        };
    }

    private async Task<ConcordRecord?> ReadAsync(ConcordSession session, CancellationToken cancellationToken)
    {
        var read = await session.GetAsync(AccountScenario.Key, cancellationToken).ConfigureAwait(false);
        _reads.Add(read?.Version ?? 0);
        return read;
    }

    private Task ThinkAsync(TimeProvider time, CancellationToken cancellationToken)
    {
        var think = _thinks++ == 0 ? Schedule.Think : AccountAgent.DrawThink(_random);
        _thinkMs += Ms(think);
        return Task.Delay(think, time, cancellationToken);
    }

    private JsonElement WithField(ConcordRecord? read)
    {
        var node = read is { IsDeleted: false } ? JsonNode.Parse(read.Value.GetRawText())!.AsObject() : [];
        node[Update.Field] = Update.Value;
        return JsonSerializer.SerializeToElement(node);
    }

    private static long Ms(TimeSpan t) => (long)t.TotalMilliseconds;
}

/// <summary>The downstream agent: reads the account and scores its risk. It trusts what it reads, as agents do.</summary>
public static class RiskAgent
{
    /// <summary>
    /// Scores an account: <c>high</c> when compliance asks for a review and fees are unpaid; <c>medium</c> when any
    /// one signal is raised (a review, unpaid fees, a non-active status); <c>low</c> otherwise.
    /// </summary>
    public static (string Verdict, string Reason) Score(JsonElement account)
    {
        var status = AccountScenario.FieldOf(account, "status");
        var fees = AccountScenario.FieldOf(account, "fees");
        var compliance = AccountScenario.FieldOf(account, "compliance");
        if (compliance == "review" && fees == "unpaid") return ("high", "compliance review pending and fees unpaid");
        var signals = new List<string>();
        if (compliance == "review") signals.Add("compliance review pending");
        if (fees == "unpaid") signals.Add("fees unpaid");
        if (status is not null and not "active") signals.Add($"account {status}");
        return signals.Count > 0 ? ("medium", string.Join(", ", signals)) : ("low", "no risk signal");
    }

    /// <summary>Reads <paramref name="key"/> through <paramref name="session"/> and scores it.</summary>
    public static async Task<RiskAssessment> AssessAsync(ConcordSession session, string key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        var record = await session.GetAsync(key, cancellationToken).ConfigureAwait(false);
        var value = record?.Value ?? default;
        var (verdict, reason) = Score(value);
        return new RiskAssessment(AccountScenario.FieldOf(value, "status"), AccountScenario.FieldOf(value, "fees"),
            AccountScenario.FieldOf(value, "compliance"), verdict, reason, Score(AccountScenario.ExpectedValue).Verdict);
    }
}
