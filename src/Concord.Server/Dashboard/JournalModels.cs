using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Concord.Server.Dashboard;

/// <summary>
/// One completed operation as the journal saw it: who did what to which key, what they expected, what happened, and
/// which earlier write it was based on. Immutable; serialized as-is to the dashboard (camelCase, nulls omitted).
/// </summary>
internal sealed record JournalEntry
{
    /// <summary>Position in the journal (1, 2, …), in completion order.</summary>
    public required long Seq { get; init; }

    /// <summary>Milliseconds since the journal started, at invocation.</summary>
    public required double Start { get; init; }

    /// <summary>Milliseconds since the journal started, at completion.</summary>
    public required double End { get; init; }

    public required string Ns { get; init; }

    public required string Agent { get; init; }

    /// <summary><c>read</c>, <c>list</c>, <c>put</c>, <c>patch</c>, <c>delete</c> or <c>txn</c>.</summary>
    public required string Op { get; init; }

    /// <summary>The key (the prefix for <c>list</c>; null for <c>txn</c>, whose keys are in <see cref="Parts"/>).</summary>
    public string? Key { get; init; }

    /// <summary><c>ok</c>, <c>absent</c> (a read of a missing key), <c>conflict</c>, <c>else</c> (a transaction's else branch) or <c>error</c>.</summary>
    public required string Outcome { get; init; }

    /// <summary>The expectation a write stated: <c>any</c>, <c>absent</c>, <c>exists</c>, <c>v3</c>, plus <c> fence L:7</c>.</summary>
    public string? Expect { get; init; }

    /// <summary>Version read, version written, or — on a conflict — the key's current version.</summary>
    public long? Version { get; init; }

    public long? Revision { get; init; }

    /// <summary>Writer of the version read, or — on a conflict — of the current version the write collided with.</summary>
    public string? Writer { get; init; }

    /// <summary>Why a write was refused (camelCase <see cref="ConflictKind"/>).</summary>
    public string? Conflict { get; init; }

    public string? Message { get; init; }

    /// <summary>The version a write was computed from: the version it expected, the one its agent last saw, or (patches) the one it was applied to.</summary>
    public long? BasedOn { get; init; }

    /// <summary>Journal position of the write that produced <see cref="BasedOn"/>, when it is in the journal (the causal arrow's tail).</summary>
    public long? BasedOnSeq { get; init; }

    /// <summary>On a conflict, the journal position of the write that produced the current version.</summary>
    public long? ConflictWithSeq { get; init; }

    /// <summary>1 for a first attempt; n when this write follows n−1 refused attempts by the same agent on the same key.</summary>
    public int? Attempt { get; init; }

    /// <summary>A put or delete that stated no version (<c>any</c>/<c>exists</c>): it replaces whatever is there.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool Blind { get; init; }

    /// <summary>An idempotent replay of an earlier call (no new effect).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool Replayed { get; init; }

    /// <summary>The write set a time to live (its key may expire without another operation).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool Expires { get; init; }

    /// <summary>Records listed (<c>list</c>).</summary>
    public int? Count { get; init; }

    /// <summary>The write's causal stamp, compactly: <c>dot n1:42</c>, with <c> concurrent</c> when it did not descend from what it replaced.</summary>
    public string? Causal { get; init; }

    /// <summary>A transaction's per-key effects.</summary>
    public IReadOnlyList<TxnPart>? Parts { get; init; }
}

/// <summary>One key a transaction read or wrote.</summary>
internal sealed record TxnPart(string Op, string Key, long Version, long? Revision, string? Writer, long? BasedOn, long? BasedOnSeq);

/// <summary>A version that a blind write replaced without its writer having seen it.</summary>
internal sealed record LostVersion(long Version, string? Writer, long? Seq);

/// <summary>
/// A lost update: <see cref="Overwriter"/> replaced <see cref="Key"/> with a value computed from version
/// <see cref="ReadVersion"/>, silently discarding the newer versions in <see cref="Lost"/>.
/// </summary>
internal sealed record LostUpdateFinding
{
    public required string Ns { get; init; }

    public required string Key { get; init; }

    public required string Overwriter { get; init; }

    /// <summary>Journal position of the overwriting write.</summary>
    public required long OverwriteSeq { get; init; }

    /// <summary>The version the overwriting write created.</summary>
    public required long OverwriteVersion { get; init; }

    /// <summary>The version the overwriter had last seen (0 = it never read the key).</summary>
    public required long ReadVersion { get; init; }

    /// <summary>The versions discarded that the journal still knows, newest first (at most 20); the first is the one directly overwritten.</summary>
    public required IReadOnlyList<LostVersion> Lost { get; init; }

    /// <summary>How many versions by other agents the write discarded unseen (more than <see cref="Lost"/> when the journal forgot old ones).</summary>
    public required long LostCount { get; init; }

    public required bool Delete { get; init; }

    public required double Time { get; init; }

    /// <summary>The finding in one sentence, e.g. "status overwrote version 2 of acct/42 (written by fees) without having read it; fees's update was lost".</summary>
    public string Explanation
    {
        get
        {
            var first = Lost[0];
            var verb = Delete ? "deleted" : "overwrote";
            var read = ReadVersion == 0 ? "without ever having read the key" : $"without having read it (it had read version {ReadVersion})";
            var victim = first.Writer ?? "an unknown writer";
            var text = $"{Overwriter} {verb} version {first.Version} of {Key} (written by {victim}) {read}; {victim}'s update was lost";
            var more = LostCount - 1;
            if (more <= 0) return text + ".";
            var writers = Lost.Skip(1).Select(v => v.Writer ?? "unknown writers").Distinct(StringComparer.Ordinal).ToList();
            var by = writers.Count == 0 ? "" : writers.Count == 1 ? $" (by {writers[0]})" : $" (by {string.Join(", ", writers[..^1])} and {writers[^1]})";
            return text + $", and so {(more == 1 ? "was 1 earlier update" : $"were {more} earlier updates")} it never saw{by}.";
        }
    }
}

/// <summary>What one agent has done in one namespace, as far as the journal remembers.</summary>
internal sealed record AgentSummary(string Ns, string Agent, long Ops, long Reads, long Writes, long Conflicts, long Retries,
    long Overwrote, long LostUpdates, double LastSeen, long LastSeq);

/// <summary>Activity per namespace since the server started.</summary>
internal sealed record NamespaceSummary(string Ns, long Ops, long Writes, long Conflicts, long Retries, long LostUpdates,
    int Agents, double LastSeen, long LastSeq);

/// <summary>JSON settings of the dashboard API and its event stream.</summary>
internal static class DashboardJson
{
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        // Keys and agent names stay readable in the event stream; the page never inserts JSON into HTML unescaped.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };
}
