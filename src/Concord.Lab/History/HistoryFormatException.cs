namespace Concord.Lab.History;

/// <summary>A history is malformed: bad JSON, a missing or ill-typed field, or events that cannot happen (a completion without an invocation).</summary>
public sealed class HistoryFormatException : Exception
{
    /// <summary>Creates an exception for a problem on a line of a history file.</summary>
    public HistoryFormatException(int lineNumber, string reason)
        : base($"line {lineNumber}: {reason}")
    {
        LineNumber = lineNumber;
        Reason = reason;
    }

    /// <summary>Creates an exception for a problem with an operation of an in-memory history.</summary>
    public HistoryFormatException(string reason, long? operationIndex)
        : base(operationIndex is { } index ? $"operation {index}: {reason}" : reason)
    {
        OperationIndex = operationIndex;
        Reason = reason;
    }

    /// <summary>Creates an exception with a message only.</summary>
    public HistoryFormatException()
        : this("malformed history", (long?)null)
    {
    }

    /// <summary>Creates an exception with a message only.</summary>
    public HistoryFormatException(string message)
        : this(message, (long?)null)
    {
    }

    /// <summary>Creates an exception with a message and an inner exception.</summary>
    public HistoryFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
        Reason = message;
    }

    /// <summary>The 1-based line number in the file, when the history was read from text.</summary>
    public int? LineNumber { get; }

    /// <summary>The <see cref="Operation.Index"/> of the offending operation, when the history was built in memory.</summary>
    public long? OperationIndex { get; }

    /// <summary>What is wrong, without the location.</summary>
    public string Reason { get; }
}
