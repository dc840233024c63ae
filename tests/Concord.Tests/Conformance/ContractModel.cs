using System.Collections.Immutable;

namespace Concord.Tests.Conformance;

/// <summary>An expectation in the model (a plain value so operations print and compare simply).</summary>
public readonly record struct ModelExpect(ExpectationKind Kind, long Version = 0)
{
    public Expectation ToExpectation() => Kind switch
    {
        ExpectationKind.Absent => Expect.Absent,
        ExpectationKind.Exists => Expect.Exists,
        ExpectationKind.Version => Expect.Version(Version),
        _ => Expect.Any,
    };

    public override string ToString() => Kind == ExpectationKind.Version ? $"v{Version}" : Kind.ToString().ToLowerInvariant();
}

/// <summary>One write inside a model operation: put <c>{"n": Value}</c>, delete, increment <c>/n</c> by Value, or get.</summary>
public sealed record ModelWrite(TxnOpKind Kind, string Key, long Value, ModelExpect Expect)
{
    public override string ToString() => Kind switch
    {
        TxnOpKind.Put => $"put {Key}={Value} if {Expect}",
        TxnOpKind.Delete => $"delete {Key} if {Expect}",
        TxnOpKind.Patch => $"inc {Key} by {Value} if {Expect}",
        _ => $"get {Key}",
    };

    public TxnOp ToTxnOp() => Kind switch
    {
        TxnOpKind.Put => TxnOp.Put(Key, StoreTestValues.N(Value), Expect.ToExpectation()),
        TxnOpKind.Delete => TxnOp.Delete(Key, Expect.ToExpectation()),
        TxnOpKind.Patch => TxnOp.PatchKey(Key, JsonPatch.Create().Increment("/n", Value), Expect.ToExpectation()),
        _ => TxnOp.Get(Key),
    };
}

/// <summary>A guard in the model: version equals / exists / absent / last change at or before "current revision minus Back".</summary>
public sealed record ModelCompare(string Key, string Kind, long Number)
{
    public override string ToString() => Kind switch
    {
        "version" => $"{Key}.version=={Number}",
        "modrev" => $"{Key}.modrev<=now-{Number}",
        _ => $"{Key} {Kind}",
    };
}

/// <summary>An operation of a generated sequence.</summary>
public abstract record ModelOp;

/// <summary>A single-key write (put, delete or increment), optionally with an idempotency key.</summary>
public sealed record WriteOp(ModelWrite Write, string? Idem) : ModelOp
{
    public override string ToString() => Idem is null ? Write.ToString() : $"{Write} [idem {Idem}]";
}

/// <summary>Read → compute → compare-and-swap at the version read.</summary>
public sealed record CasIncrementOp(string Key) : ModelOp
{
    public override string ToString() => $"cas-inc {Key}";
}

/// <summary>Read latest.</summary>
public sealed record GetOp(string Key) : ModelOp
{
    public override string ToString() => $"get {Key}";
}

/// <summary>Read at "current revision minus Back".</summary>
public sealed record GetAtOp(string Key, int Back) : ModelOp
{
    public override string ToString() => $"get {Key} at now-{Back}";
}

/// <summary>Prefix scan.</summary>
public sealed record ListOp(string Prefix) : ModelOp
{
    public override string ToString() => $"list '{Prefix}'";
}

/// <summary>compare / then / else.</summary>
public sealed record TxnModelOp(ImmutableArray<ModelCompare> Compares, ImmutableArray<ModelWrite> Then, ImmutableArray<ModelWrite> Else, string? Idem) : ModelOp
{
    public override string ToString() =>
        $"txn if [{string.Join(", ", Compares)}] then [{string.Join("; ", Then)}] else [{string.Join("; ", Else)}]{(Idem is null ? "" : $" [idem {Idem}]")}";
}

/// <summary>A key's newest version in the model; <see cref="N"/> is null for a tombstone.</summary>
public sealed record ModelEntry(long Version, long? N, long Revision)
{
    public bool IsLive => N is not null;
}

/// <summary>The predicted outcome of a write or transaction.</summary>
public sealed record ModelOutcome(
    bool Succeeded, ConflictKind Conflict, int FailedOpIndex, string? ConflictKey, ModelEntry? ConflictRecord,
    ImmutableArray<(TxnOpKind Kind, string Key, ModelEntry? Record)> Results, long Revision, bool Replayed);

/// <summary>
/// The sequential specification of the core contract: key → (value, version) plus tombstone versions, one global
/// revision per applied mutation, idempotency records keyed by the engine's notion of "same request".
/// </summary>
public sealed class ContractModel(bool strict, long startRevision)
{
    private readonly Dictionary<string, (string Fingerprint, ModelOutcome Outcome)> _idempotency = new(StringComparer.Ordinal);
    private readonly List<(long Revision, ImmutableDictionary<string, ModelEntry> State)> _history = [];

    public ImmutableDictionary<string, ModelEntry> State { get; private set; } = ImmutableDictionary.Create<string, ModelEntry>(StringComparer.Ordinal);

    public long Revision { get; private set; } = startRevision;

    public ModelEntry? Live(string key) => State.TryGetValue(key, out var e) && e.IsLive ? e : null;

    public ModelEntry? LiveAt(string key, long revision)
    {
        var state = ImmutableDictionary<string, ModelEntry>.Empty;
        foreach (var (rev, s) in _history)
        {
            if (rev > revision) break;
            state = s;
        }
        return state.TryGetValue(key, out var e) && e.IsLive ? e : null;
    }

    public IEnumerable<(string Key, ModelEntry Entry)> List(string prefix) =>
        State.Where(kv => kv.Value.IsLive && kv.Key.StartsWith(prefix, StringComparison.Ordinal))
            .OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => (kv.Key, kv.Value));

    /// <summary>Concrete compares for the current revision (ModRevision compares are relative to it).</summary>
    public ImmutableArray<TxnCompare> Concrete(ImmutableArray<ModelCompare> compares) =>
        [.. compares.Select(c => c.Kind switch
        {
            "version" => TxnCompare.Version(c.Key, CompareOp.Equal, c.Number),
            "exists" => TxnCompare.Exists(c.Key),
            "absent" => TxnCompare.Absent(c.Key),
            _ => TxnCompare.ModRevision(c.Key, CompareOp.LessOrEqual, Math.Max(0, Revision - c.Number)),
        })];

    /// <summary>
    /// The engine treats a single write as a one-operation transaction without compares, so "the same request" is
    /// decided on that canonical form; the idempotency fingerprint here is its text.
    /// </summary>
    private static string Fingerprint(ImmutableArray<TxnCompare> compares, ImmutableArray<ModelWrite> then, ImmutableArray<ModelWrite> @else) =>
        $"{string.Join(",", compares.Select(c => $"{c.Key}:{c.Target}:{c.Op}:{c.Number}"))}|{string.Join(";", then)}|{string.Join(";", @else)}";

    /// <summary>Applies a transaction (or a single write as a one-op transaction). Null means "throws IdempotencyKeyReused".</summary>
    public ModelOutcome? Apply(ImmutableArray<ModelCompare> compares, ImmutableArray<ModelWrite> then, ImmutableArray<ModelWrite> @else, string? idem)
    {
        var concrete = Concrete(compares);
        var fingerprint = Fingerprint(concrete, then, @else);
        if (idem is not null && _idempotency.TryGetValue(idem, out var stored))
            return stored.Fingerprint == fingerprint ? stored.Outcome with { Replayed = true } : null;

        var succeeded = concrete.All(Holds);
        var branch = succeeded ? then : @else;
        var revision = Revision + 1;
        var staged = State.ToBuilder();
        var results = ImmutableArray.CreateBuilder<(TxnOpKind, string, ModelEntry?)>();
        var changed = false;
        for (var i = 0; i < branch.Length; i++)
        {
            var op = branch[i];
            staged.TryGetValue(op.Key, out var latest);
            var live = latest is { IsLive: true } ? latest : null;
            if (op.Kind == TxnOpKind.Get)
            {
                results.Add((TxnOpKind.Get, op.Key, live));
                continue;
            }
            var conflict = op.Expect.Kind switch
            {
                ExpectationKind.Absent when live is not null => ConflictKind.AlreadyExists,
                ExpectationKind.Exists when live is null => ConflictKind.NotFound,
                ExpectationKind.Version when (live?.Version ?? 0) != op.Expect.Version => ConflictKind.VersionMismatch,
                _ => ConflictKind.None,
            };
            if (conflict == ConflictKind.None && strict && op.Expect.Kind == ExpectationKind.Any && live is not null
                && op.Kind is TxnOpKind.Put or TxnOpKind.Delete && !concrete.Any(c => c.Key == op.Key))
                conflict = ConflictKind.BlindWriteRefused;
            if (conflict == ConflictKind.None && op.Kind == TxnOpKind.Delete && live is null) conflict = ConflictKind.NotFound;
            if (conflict != ConflictKind.None)
                return new ModelOutcome(succeeded, conflict, i, op.Key, live, [], Revision, false);

            var next = (latest?.Version ?? 0) + 1;
            var record = op.Kind switch
            {
                TxnOpKind.Put => new ModelEntry(next, op.Value, revision),
                TxnOpKind.Delete => new ModelEntry(next, null, revision),
                _ => new ModelEntry(next, (live?.N ?? 0) + op.Value, revision),
            };
            staged[op.Key] = record;
            results.Add((op.Kind, op.Key, record));
            changed = true;
        }

        var outcome = new ModelOutcome(succeeded, ConflictKind.None, -1, null, null, results.ToImmutable(), changed ? revision : Revision, false);
        if (!changed) return outcome;
        State = staged.ToImmutable();
        Revision = revision;
        _history.Add((revision, State));
        if (idem is not null) _idempotency[idem] = (fingerprint, outcome);
        return outcome;
    }

    private bool Holds(TxnCompare c)
    {
        var live = Live(c.Key);
        return c.Target switch
        {
            CompareTarget.ModRevision => (State.TryGetValue(c.Key, out var e) ? e.Revision : 0) <= c.Number,
            _ => c.Op switch
            {
                CompareOp.Equal => (live?.Version ?? 0) == c.Number,
                _ => (live?.Version ?? 0) > c.Number,
            },
        };
    }
}

/// <summary>Value helpers shared by the model and the suites.</summary>
public static class StoreTestValues
{
    /// <summary>The value <c>{"n": n}</c>.</summary>
    public static System.Text.Json.JsonElement N(long n)
    {
        using var document = System.Text.Json.JsonDocument.Parse($$"""{"n":{{n}}}""");
        return document.RootElement.Clone();
    }
}
