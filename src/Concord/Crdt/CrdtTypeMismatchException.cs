namespace Concord;

/// <summary>
/// A CRDT merge met a value of another type: an <c>orset</c> delta merged into a <c>pncounter</c> key, a delta merged
/// into a plain JSON value, or a patch aimed at a CRDT key (CRDT state changes only by merge).
/// </summary>
public sealed class CrdtTypeMismatchException(string? key, string expected, string actual)
    : ConcordException(key is null
        ? $"CRDT type mismatch: expected {expected}, found {actual}"
        : $"CRDT type mismatch on '{key}': the operation needs {expected} but the key holds {actual}")
{
    /// <summary>The key, when known.</summary>
    public string? Key { get; } = key;

    /// <summary>The type the operation needs (a CRDT type name, or <c>json</c>).</summary>
    public string Expected { get; } = expected;

    /// <summary>The type found (a CRDT type name, or <c>json</c> for a plain value).</summary>
    public string Actual { get; } = actual;

    /// <inheritdoc />
    public override string Code => "crdt-type-mismatch";
}
