using System.Text.Json;

namespace Concord;

/// <summary>Comparison operators for <see cref="TxnCompare"/>.</summary>
public enum CompareOp
{
    /// <summary>Equal.</summary>
    Equal,
    /// <summary>Not equal.</summary>
    NotEqual,
    /// <summary>Less than.</summary>
    Less,
    /// <summary>Less than or equal.</summary>
    LessOrEqual,
    /// <summary>Greater than.</summary>
    Greater,
}

/// <summary>What a <see cref="TxnCompare"/> looks at.</summary>
public enum CompareTarget
{
    /// <summary>The key's current version (0 = absent).</summary>
    Version,
    /// <summary>The revision of the key's latest change, tombstones included (0 = never written).</summary>
    ModRevision,
    /// <summary>The key's JSON value (Equal / NotEqual only; absent compares unequal to everything).</summary>
    Value,
    /// <summary>The newest change under a prefix (creates, writes, deletes) compared with a revision.</summary>
    PrefixModRevision,
}

/// <summary>One guard of an etcd-style transaction.</summary>
public sealed record TxnCompare(string Key, CompareTarget Target, CompareOp Op, long Number = 0, JsonElement Value = default)
{
    /// <summary>The key's version compared with <paramref name="version"/> (0 = absent).</summary>
    public static TxnCompare Version(string key, CompareOp op, long version) => new(key, CompareTarget.Version, op, version);
    /// <summary>The key exists.</summary>
    public static TxnCompare Exists(string key) => new(key, CompareTarget.Version, CompareOp.Greater, 0);
    /// <summary>The key is absent.</summary>
    public static TxnCompare Absent(string key) => new(key, CompareTarget.Version, CompareOp.Equal, 0);
    /// <summary>The key's last change revision compared with <paramref name="revision"/>.</summary>
    public static TxnCompare ModRevision(string key, CompareOp op, long revision) => new(key, CompareTarget.ModRevision, op, revision);
    /// <summary>The key's value equals <paramref name="value"/>.</summary>
    public static TxnCompare ValueEquals(string key, JsonElement value) => new(key, CompareTarget.Value, CompareOp.Equal, 0, value.Clone());
    /// <summary>Nothing under <paramref name="prefix"/> changed after <paramref name="revision"/> (no phantom).</summary>
    public static TxnCompare PrefixUnchangedSince(string prefix, long revision) => new(prefix, CompareTarget.PrefixModRevision, CompareOp.LessOrEqual, revision);
}

/// <summary>Kinds of transaction operations.</summary>
public enum TxnOpKind
{
    /// <summary>Read a key (at the transaction's revision).</summary>
    Get,
    /// <summary>Write a whole value.</summary>
    Put,
    /// <summary>Delete a key.</summary>
    Delete,
    /// <summary>Patch a key atomically.</summary>
    Patch,
    /// <summary>Join a CRDT delta into the key's CRDT state atomically (absent keys start empty). See docs/crdt.md.</summary>
    Merge,
}

/// <summary>One operation of a transaction branch; each may carry its own expectation.</summary>
public sealed record TxnOp(TxnOpKind Kind, string Key, JsonElement Value = default, JsonPatch? Patch = null, Expectation Expect = default, TimeSpan? Ttl = null)
{
    /// <summary>The causal context the writer read for this key (see <see cref="WriteOptions.Context"/>). <value>Default: null.</value></summary>
    public VersionVector? Context { get; init; }

    /// <summary>Opt the key into siblings (see <see cref="WriteOptions.AllowSiblings"/>). <value>Default: false.</value></summary>
    public bool AllowSiblings { get; init; }

    /// <summary>Join the CRDT <paramref name="delta"/> (a <c>{"$crdt":…}</c> envelope) into the state stored at <paramref name="key"/>.</summary>
    public static TxnOp Merge(string key, JsonElement delta, Expectation expect = default) =>
        new(TxnOpKind.Merge, key, delta.ValueKind == JsonValueKind.Undefined ? default : delta.Clone(), null, expect);

    /// <summary>Read <paramref name="key"/>.</summary>
    public static TxnOp Get(string key) => new(TxnOpKind.Get, key);
    /// <summary>Put <paramref name="value"/> at <paramref name="key"/>.</summary>
    public static TxnOp Put(string key, JsonElement value, Expectation expect = default, TimeSpan? ttl = null) => new(TxnOpKind.Put, key, value.Clone(), null, expect, ttl);
    /// <summary>Delete <paramref name="key"/>.</summary>
    public static TxnOp Delete(string key, Expectation expect = default) => new(TxnOpKind.Delete, key, default, null, expect);
    /// <summary>Patch <paramref name="key"/>.</summary>
    public static TxnOp PatchKey(string key, JsonPatch patch, Expectation expect = default) => new(TxnOpKind.Patch, key, default, patch, expect);
}

/// <summary>
/// An etcd-style transaction: if every compare holds, run <see cref="Then"/>, otherwise <see cref="Else"/>.
/// The chosen branch commits atomically at one revision; if an operation's own expectation fails, nothing is applied.
/// </summary>
public sealed record TxnRequest
{
    /// <summary>Guards, all evaluated against the same state.</summary>
    public IReadOnlyList<TxnCompare> Compares { get; init; } = [];
    /// <summary>Operations when every compare holds.</summary>
    public IReadOnlyList<TxnOp> Then { get; init; } = [];
    /// <summary>Operations otherwise.</summary>
    public IReadOnlyList<TxnOp> Else { get; init; } = [];
}

/// <summary>The result of one operation in a committed branch.</summary>
/// <param name="Kind">Operation kind.</param>
/// <param name="Key">Key.</param>
/// <param name="Record">For writes, the new record (tombstone for deletes); for gets, the current record or null.</param>
public sealed record TxnOpResult(TxnOpKind Kind, string Key, ConcordRecord? Record);

/// <summary>The outcome of a transaction.</summary>
public sealed class TxnResult
{
    /// <summary>Creates a result.</summary>
    public TxnResult(bool succeeded, IReadOnlyList<TxnOpResult> results, long revision, WriteResult? conflict, bool replayed = false, int failedOpIndex = -1)
    {
        Succeeded = succeeded;
        Results = results;
        Revision = revision;
        Conflict = conflict;
        Replayed = replayed;
        FailedOpIndex = failedOpIndex;
    }

    /// <summary>True when the compares held (the then-branch ran), false for the else-branch.</summary>
    public bool Succeeded { get; }

    /// <summary>False when an operation's own expectation failed and nothing was applied.</summary>
    public bool IsApplied => Conflict is null;

    /// <summary>Per-operation results of the branch that ran (empty when not applied).</summary>
    public IReadOnlyList<TxnOpResult> Results { get; }

    /// <summary>Revision of the commit (or of the state the conflict was decided at).</summary>
    public long Revision { get; }

    /// <summary>The conflicting operation's result, when not applied.</summary>
    public WriteResult? Conflict { get; }

    /// <summary>Index (in the branch) of the operation whose expectation failed, or -1.</summary>
    public int FailedOpIndex { get; }

    /// <summary>True when this is the stored result of an earlier call with the same idempotency key.</summary>
    public bool Replayed { get; }

    internal TxnResult AsReplay() => new(Succeeded, Results, Revision, Conflict, replayed: true, FailedOpIndex);
}
