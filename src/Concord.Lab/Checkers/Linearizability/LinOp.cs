using Concord.Lab.History;

namespace Concord.Lab.Checkers.Linearizability;

internal enum LinKind : byte
{
    Write,
    Read,
    Cas,
    Increment,
    Add,
    Enqueue,
    Dequeue,
}

/// <summary>
/// An operation encoded for the search: values are interned to integers per key, and the invocation and
/// completion are positions in the history. An operation without a known outcome has <see cref="Return"/> =
/// <see cref="int.MaxValue"/>: it may take effect at any point after its call, or never.
/// </summary>
internal sealed class LinOp
{
    public const long EmptyQueue = -1;

    public required OperationPair Source { get; init; }

    public required LinKind Kind { get; init; }

    public required int Call { get; init; }

    public required int Return { get; init; }

    /// <summary>Write: value; Cas: expected; Increment: delta; Add/Enqueue: element.</summary>
    public long A { get; init; }

    /// <summary>Cas: new value.</summary>
    public long B { get; init; }

    /// <summary>Read: value (register, counter); Dequeue: element or <see cref="EmptyQueue"/>.</summary>
    public long Output { get; init; }

    /// <summary>Set read: the set observed.</summary>
    public SetState? Observed { get; init; }

    public bool Known => Return != int.MaxValue;

    /// <summary>Reads, and dequeues that found the queue empty, observe without changing the state.</summary>
    public bool IsPureObserver => Kind == LinKind.Read || (Kind == LinKind.Dequeue && Known && Output == EmptyQueue);

    public LinOp WithUnknownOutcome() => new()
    {
        Source = Source,
        Kind = Kind,
        Call = Call,
        Return = int.MaxValue,
        A = A,
        B = B,
        Output = Output,
        Observed = Observed,
    };
}
