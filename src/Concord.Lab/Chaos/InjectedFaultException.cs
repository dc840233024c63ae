namespace Concord.Lab.Chaos;

/// <summary>
/// A transient fault injected by <see cref="ChaosStore"/>: the call failed before reaching the store
/// (<see cref="FaultKind.TransientFailure"/>), or reached it and lost its reply (<see cref="FaultKind.UnknownOutcome"/>).
/// A client cannot tell the two apart, which is the point: after it, the outcome of the call is unknown.
/// </summary>
public sealed class InjectedFaultException : ConcordException
{
    /// <summary>Creates the exception.</summary>
    public InjectedFaultException(FaultKind kind, string operation, bool applied)
        : base($"Injected fault ({(kind == FaultKind.UnknownOutcome ? "reply lost" : "transient failure")}) on {operation}; the outcome is unknown to the caller, retry with the same idempotency key")
    {
        Kind = kind;
        Operation = operation;
        Applied = applied;
    }

    /// <summary>Which fault it was.</summary>
    public FaultKind Kind { get; }

    /// <summary>The operation it hit.</summary>
    public string Operation { get; }

    /// <summary>Whether the store applied the call (for tests and traces; a real client never knows).</summary>
    public bool Applied { get; }

    /// <inheritdoc />
    public override bool IsTransient => true;

    /// <inheritdoc />
    public override string Code => "injected-fault";
}
