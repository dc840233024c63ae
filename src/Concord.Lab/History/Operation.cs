using System.Text.Json;

namespace Concord.Lab.History;

/// <summary>
/// One event of a history: a process invoking an operation, or the operation's completion. Field names follow
/// Jepsen (<c>index</c>, <c>time</c>, <c>process</c>, <c>type</c>, <c>f</c>, <c>value</c>) so histories convert
/// to Knossos, Elle and Porcupine without loss.
/// </summary>
/// <remarks>Instances are immutable and safe to share between threads.</remarks>
public sealed class Operation
{
    /// <summary>Position of the event in the history. Indices are strictly increasing in history order.</summary>
    public required long Index { get; init; }

    /// <summary>Nanoseconds since the start of the history.</summary>
    public required long Time { get; init; }

    /// <summary>The logical process (client thread) that performed the operation. A process runs one operation at a time.</summary>
    public required int Process { get; init; }

    /// <summary>Invocation, or one of the three completion kinds.</summary>
    public required OperationType Type { get; init; }

    /// <summary>The function: <c>read</c>, <c>write</c>, <c>cas</c>, <c>increment</c>, <c>add</c>, <c>enqueue</c>, <c>dequeue</c>, <c>txn</c> (see <see cref="Functions"/>).</summary>
    public required string F { get; init; }

    /// <summary>The agent id behind the process, when known; used only to explain findings.</summary>
    public string? Agent { get; init; }

    /// <summary>The key of a single-key operation; <see langword="null"/> for transactions and for unkeyed histories.</summary>
    public string? Key { get; init; }

    /// <summary>
    /// The operation's argument (on invoke) or result (on completion), without the key. A default (undefined)
    /// element means "no value" and is written as JSON <c>null</c>.
    /// </summary>
    public JsonElement Value { get; init; }

    /// <summary>The exact per-key version written (for writes) or observed (for reads), when known.</summary>
    public long? Version { get; init; }

    /// <summary>The global revision of the commit that produced or served this operation, when known.</summary>
    public long? Revision { get; init; }

    /// <summary>Why the operation failed or has an unknown outcome, when known.</summary>
    public string? Error { get; init; }

    /// <summary>
    /// The causal context (version vector) the operation observed (reads) or produced (writes), when known: the record's
    /// <see cref="CausalStamp.Context"/>. Two writes whose clocks are <see cref="CausalOrder.Concurrent"/> were not
    /// ordered by what their writers had seen. Written as <c>"clock":{"n1":42}</c>.
    /// </summary>
    public VersionVector? Clock { get; init; }

    /// <summary>True when <see cref="Value"/> is absent or JSON <c>null</c>.</summary>
    public bool HasNullValue => Value.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null;

    /// <summary>Returns a copy with the given type, value and completion fields, keeping identity fields.</summary>
    internal Operation With(long index, long time, OperationType type, JsonElement value, long? version, long? revision, string? error, VersionVector? clock = null) => new()
    {
        Index = index,
        Time = time,
        Process = Process,
        Type = type,
        F = F,
        Agent = Agent,
        Key = Key,
        Value = value,
        Version = version,
        Revision = revision,
        Error = error,
        Clock = clock,
    };

    /// <summary>A compact single-line JSON rendering (the history line format).</summary>
    public override string ToString() => HistoryWriter.FormatOperation(this);
}

/// <summary>Names of the functions (<see cref="Operation.F"/>) that the checkers understand.</summary>
public static class Functions
{
    /// <summary>Read a register, counter, set; or, for a queue model, not used.</summary>
    public const string Read = "read";

    /// <summary>Blind write of a register.</summary>
    public const string Write = "write";

    /// <summary>Compare-and-set; value <c>[expected, new]</c>.</summary>
    public const string Cas = "cas";

    /// <summary>Add the (integer) value to a counter.</summary>
    public const string Increment = "increment";

    /// <summary>Add an element to a set; in a counter history, a synonym of <see cref="Increment"/> (Jepsen's counter).</summary>
    public const string Add = "add";

    /// <summary>Append to the tail of a FIFO queue.</summary>
    public const string Enqueue = "enqueue";

    /// <summary>Remove the head of a FIFO queue; the completion's value is the element, or <c>null</c> when empty.</summary>
    public const string Dequeue = "dequeue";

    /// <summary>A transaction; the value is a list of micro-operations (see <see cref="MicroOp"/>).</summary>
    public const string Txn = "txn";

    /// <summary>True for every function except <see cref="Txn"/>: those name exactly one key.</summary>
    public static bool IsSingleKey(string f) => f != Txn;
}
