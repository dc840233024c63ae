namespace Concord.Lab.History;

/// <summary>A recorded history: an optional meta line and the invoke/completion events in order.</summary>
/// <remarks>Instances are immutable and safe to share between threads.</remarks>
public sealed class OperationHistory
{
    private IReadOnlyList<OperationPair>? _pairs;

    /// <summary>Creates a history, checking that it is well formed.</summary>
    /// <exception cref="HistoryFormatException">An event is ill-formed or out of place (see <see cref="HistoryFormatException.OperationIndex"/>).</exception>
    public OperationHistory(HistoryMeta meta, IReadOnlyList<Operation> operations)
        : this(meta, operations, validate: true)
    {
    }

    internal OperationHistory(HistoryMeta meta, IReadOnlyList<Operation> operations, bool validate)
    {
        ArgumentNullException.ThrowIfNull(meta);
        ArgumentNullException.ThrowIfNull(operations);
        if (validate)
        {
            var validator = new HistoryValidator();
            foreach (var op in operations)
            {
                if (validator.Accept(op) is { } problem)
                {
                    throw new HistoryFormatException(problem, op.Index);
                }
            }
        }

        Meta = meta;
        Operations = operations;
    }

    /// <summary>The meta line; <see cref="HistoryMeta.Empty"/> when the file had none.</summary>
    public HistoryMeta Meta { get; }

    /// <summary>The events, in history (real-time) order.</summary>
    public IReadOnlyList<Operation> Operations { get; }

    /// <summary>Each invocation with its completion (if any), in invocation order.</summary>
    internal IReadOnlyList<OperationPair> Pairs => _pairs ??= OperationPair.Build(Operations);
}

/// <summary>An invocation and its completion. A missing completion means the outcome is unknown, like <c>info</c>.</summary>
internal sealed class OperationPair
{
    public OperationPair(Operation invoke, int invokePosition)
    {
        Invoke = invoke;
        InvokePosition = invokePosition;
    }

    public Operation Invoke { get; }

    public Operation? Completion { get; private set; }

    /// <summary>Position of the invocation in <see cref="OperationHistory.Operations"/>.</summary>
    public int InvokePosition { get; }

    /// <summary>Position of the completion; <see cref="int.MaxValue"/> when there is none.</summary>
    public int CompletionPosition { get; private set; } = int.MaxValue;

    /// <summary>Ok, Fail or Info; a missing completion counts as Info.</summary>
    public OperationType Outcome => Completion?.Type ?? OperationType.Info;

    /// <summary>The index used to name the operation: the completion's if it completed, else the invocation's.</summary>
    public long Index => Completion?.Index ?? Invoke.Index;

    public string F => Invoke.F;

    public string? Key => Invoke.Key ?? Completion?.Key;

    public int Process => Invoke.Process;

    public string? Agent => Invoke.Agent ?? Completion?.Agent;

    public static IReadOnlyList<OperationPair> Build(IReadOnlyList<Operation> operations)
    {
        var pairs = new List<OperationPair>();
        var pending = new Dictionary<int, OperationPair>();
        for (var i = 0; i < operations.Count; i++)
        {
            var op = operations[i];
            if (op.Type == OperationType.Invoke)
            {
                var pair = new OperationPair(op, i);
                pending[op.Process] = pair;
                pairs.Add(pair);
            }
            else if (pending.Remove(op.Process, out var pair))
            {
                pair.Completion = op;
                pair.CompletionPosition = i;
            }
        }

        return pairs;
    }
}
