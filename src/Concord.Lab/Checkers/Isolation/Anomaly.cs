namespace Concord.Lab.Checkers.Isolation;

/// <summary>Kinds of isolation anomalies, after Adya's phenomena and Elle.</summary>
public enum AnomalyType
{
    /// <summary>Write cycle: transactions overwrite each other's writes in a cycle (ww edges only).</summary>
    G0,

    /// <summary>Aborted read: a committed transaction read a value written by a transaction that failed.</summary>
    G1a,

    /// <summary>Intermediate read: a transaction read a value that another transaction later overwrote within itself.</summary>
    G1b,

    /// <summary>Circular information flow: a cycle of ww and wr edges with at least one wr edge.</summary>
    G1c,

    /// <summary>Read skew: a cycle with exactly one rw (anti-dependency) edge.</summary>
    GSingle,

    /// <summary>Write skew and friends: a cycle with two or more rw edges.</summary>
    G2Item,

    /// <summary>Two committed transactions read the same version of a key and both wrote it: one update is lost.</summary>
    LostUpdate,

    /// <summary>A transaction's read disagrees with its own earlier reads or writes of the same key.</summary>
    Internal,

    /// <summary>A read returned a list with the same element twice, or two commits claim the same version of a key.</summary>
    DuplicateElements,

    /// <summary>A read returned a value (or version) that no transaction wrote.</summary>
    GarbageRead,

    /// <summary>Two reads of a list are not prefixes of one another, so no single order of appends explains them.</summary>
    IncompatibleOrder,
}

/// <summary>Kinds of dependency edges between transactions.</summary>
public enum DependencyKind
{
    /// <summary>Write-write: the target overwrote (or appended after) the source's write.</summary>
    WW,

    /// <summary>Write-read: the target read the source's write.</summary>
    WR,

    /// <summary>Read-write (anti-dependency): the source read a version that the target then replaced.</summary>
    RW,

    /// <summary>The same process ran the source, then the target.</summary>
    Process,

    /// <summary>The source completed before the target was invoked.</summary>
    RealTime,
}

/// <summary>One edge of a dependency cycle.</summary>
/// <param name="From">Index of the source transaction (its completion index).</param>
/// <param name="To">Index of the target transaction.</param>
/// <param name="Kind">The dependency.</param>
/// <param name="Explanation">The dependency in plain words.</param>
public sealed record DependencyEdge(long From, long To, DependencyKind Kind, string Explanation);

/// <summary>An anomaly found by <see cref="IsolationChecker"/>.</summary>
/// <remarks>Immutable and thread-safe.</remarks>
public sealed class Anomaly
{
    internal Anomaly(AnomalyType type, string name, IReadOnlyList<long> transactions, string explanation, IReadOnlyList<DependencyEdge>? cycle = null)
    {
        Type = type;
        Name = name;
        Transactions = transactions;
        Explanation = explanation;
        Cycle = cycle ?? [];
    }

    /// <summary>The kind of anomaly.</summary>
    public AnomalyType Type { get; }

    /// <summary>Elle's name, with <c>-process</c> or <c>-realtime</c> appended when the cycle needs those orders (for example <c>G-single-realtime</c>).</summary>
    public string Name { get; }

    /// <summary>Indices (completion index, or invocation index without completion) of the transactions involved.</summary>
    public IReadOnlyList<long> Transactions { get; }

    /// <summary>What happened, in plain words, naming agents, keys and versions.</summary>
    public string Explanation { get; }

    /// <summary>For cycle anomalies, the cycle's edges in order; empty otherwise.</summary>
    public IReadOnlyList<DependencyEdge> Cycle { get; }

    /// <summary>Elle's name of a type (<c>G-single</c>, <c>G2-item</c>, <c>lost-update</c>, …).</summary>
    public static string NameOf(AnomalyType type) => type switch
    {
        AnomalyType.G0 => "G0",
        AnomalyType.G1a => "G1a",
        AnomalyType.G1b => "G1b",
        AnomalyType.G1c => "G1c",
        AnomalyType.GSingle => "G-single",
        AnomalyType.G2Item => "G2-item",
        AnomalyType.LostUpdate => "lost-update",
        AnomalyType.Internal => "internal",
        AnomalyType.DuplicateElements => "duplicate-elements",
        AnomalyType.GarbageRead => "garbage-read",
        AnomalyType.IncompatibleOrder => "incompatible-order",
        _ => type.ToString(),
    };

    /// <inheritdoc />
    public override string ToString() => $"{Name}: {Explanation}";
}
