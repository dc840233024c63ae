namespace Concord.Lab.Checkers.Linearizability;

/// <summary>The outcome of a linearizability check: the overall verdict, one result per key, and a plain-words explanation.</summary>
/// <remarks>Immutable and thread-safe.</remarks>
public sealed class LinearizabilityResult
{
    internal LinearizabilityResult(LinearizabilityModel model, Verdict verdict, IReadOnlyList<KeyLinearizability> keys, string explanation)
    {
        Model = model;
        Verdict = verdict;
        Keys = keys;
        Explanation = explanation;
    }

    /// <summary>The model the history was checked against.</summary>
    public LinearizabilityModel Model { get; }

    /// <summary><see cref="Verdict.Invalid"/> if any key is invalid, else <see cref="Verdict.Unknown"/> if any key is undecided, else <see cref="Verdict.Valid"/>.</summary>
    public Verdict Verdict { get; }

    /// <summary>One result per key, ordered by key (the unkeyed partition, if any, first).</summary>
    public IReadOnlyList<KeyLinearizability> Keys { get; }

    /// <summary>A summary followed by the explanation of every invalid key.</summary>
    public string Explanation { get; }
}

/// <summary>The outcome for one key (one partition of the history).</summary>
/// <remarks>Immutable and thread-safe.</remarks>
public sealed class KeyLinearizability
{
    internal KeyLinearizability(string? key, Verdict verdict, int operationCount, string? explanation, IReadOnlyList<long> window, long? stuckOperation)
    {
        Key = key;
        Verdict = verdict;
        OperationCount = operationCount;
        Explanation = explanation;
        Window = window;
        StuckOperation = stuckOperation;
    }

    /// <summary>The key; <see langword="null"/> for operations that named no key.</summary>
    public string? Key { get; }

    /// <summary>The verdict for this key.</summary>
    public Verdict Verdict { get; }

    /// <summary>Operations of this key that constrain the check (failed operations and reads of unknown outcome excluded).</summary>
    public int OperationCount { get; }

    /// <summary>For an invalid key, what went wrong in plain words; for an unknown key, why it is undecided; else <see langword="null"/>.</summary>
    public string? Explanation { get; }

    /// <summary>
    /// For an invalid key, the indices (completion index, or invocation index when there is no completion) of a
    /// smallest set of operations that is already not linearizable on its own; empty otherwise.
    /// </summary>
    public IReadOnlyList<long> Window { get; }

    /// <summary>For an invalid key, the index of the operation whose result could not be explained.</summary>
    public long? StuckOperation { get; }
}
