namespace Concord.Coordination;

/// <summary>
/// A coordination operation lost its compare-and-swap race more often than its configured limit (other clients kept
/// changing the same records). Nothing was applied by the failed attempt; retrying later usually succeeds.
/// </summary>
public sealed class ContentionException(string operation, int attempts)
    : ConcordException($"{operation} lost {attempts} compare-and-swap races in a row; retry later")
{
    /// <summary>The operation that gave up.</summary>
    public string Operation { get; } = operation;

    /// <summary>Attempts made.</summary>
    public int Attempts { get; } = attempts;

    /// <inheritdoc />
    public override bool IsTransient => true;

    /// <inheritdoc />
    public override string Code => "contention";
}
