namespace Concord;

/// <summary>What a write expects about the key's current state.</summary>
public enum ExpectationKind
{
    /// <summary>Blind write: no expectation. Refused in strict mode when the key exists (unless fenced).</summary>
    Any,

    /// <summary>Create-only: the key must be absent (never written, deleted or expired).</summary>
    Absent,

    /// <summary>Compare-and-swap: the key's current version must equal <see cref="Expectation.Version"/> (0 = absent).</summary>
    Version,

    /// <summary>The key must exist, whatever its version.</summary>
    Exists,
}

/// <summary>A fencing token issued by a lock: the store refuses writes carrying a token older than the lock's newest.</summary>
/// <param name="Lock">Lock name (in the same namespace as the write).</param>
/// <param name="Token">Token the writer's lease was granted with.</param>
public readonly record struct Fence(string Lock, long Token);

/// <summary>
/// The precondition a write states. Build with <see cref="Expect"/>: <c>Expect.Version(3)</c>,
/// <c>Expect.Absent</c>, <c>Expect.Any.WithFence(fence)</c>.
/// </summary>
public readonly record struct Expectation(ExpectationKind Kind, long Version = 0, Fence? Fence = null)
{
    /// <summary>Adds a fencing token to this expectation.</summary>
    public Expectation WithFence(Fence fence) => this with { Fence = fence };

    /// <summary>True when the write states nothing about the key (a blind overwrite).</summary>
    public bool IsBlind => Kind == ExpectationKind.Any && Fence is null;

    /// <inheritdoc />
    public override string ToString()
    {
        var core = Kind switch
        {
            ExpectationKind.Absent => "absent",
            ExpectationKind.Version => $"version={Version}",
            ExpectationKind.Exists => "exists",
            _ => "any",
        };
        return Fence is { } f ? $"{core} fence={f.Lock}#{f.Token}" : core;
    }
}

/// <summary>Factory for <see cref="Expectation"/> values.</summary>
public static class Expect
{
    /// <summary>No precondition (blind write).</summary>
    public static Expectation Any => new(ExpectationKind.Any);

    /// <summary>The key must not exist.</summary>
    public static Expectation Absent => new(ExpectationKind.Absent);

    /// <summary>The key must exist.</summary>
    public static Expectation Exists => new(ExpectationKind.Exists);

    /// <summary>The key's current version must be <paramref name="version"/> (0 means absent).</summary>
    public static Expectation Version(long version)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(version);
        return new(ExpectationKind.Version, version);
    }

    /// <summary>The write is fenced by <paramref name="fence"/> and otherwise unconditional.</summary>
    public static Expectation Fenced(Fence fence) => new(ExpectationKind.Any, 0, fence);
}
