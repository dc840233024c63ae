using System.Text.Json;

namespace Concord.Lab.History;

/// <summary>
/// Checks events one at a time: increasing indices, one pending operation per process, completions that match
/// their invocation, and values shaped as their function requires.
/// </summary>
internal sealed class HistoryValidator
{
    private readonly Dictionary<int, Operation> _pending = [];
    private long _lastIndex = -1;
    private bool _first = true;

    /// <summary>Returns null when <paramref name="op"/> is acceptable after the events seen so far, else the reason.</summary>
    public string? Accept(Operation op)
    {
        if (!_first && op.Index <= _lastIndex)
        {
            return $"index {op.Index} does not increase (previous index was {_lastIndex})";
        }

        if (op.Index < 0)
        {
            return $"index {op.Index} is negative";
        }

        if (op.Time < 0)
        {
            return $"time {op.Time} is negative";
        }

        if (string.IsNullOrEmpty(op.F))
        {
            return "\"f\" is empty";
        }

        _first = false;
        _lastIndex = op.Index;
        if (op.Type == OperationType.Invoke)
        {
            if (_pending.TryGetValue(op.Process, out var earlier))
            {
                return $"process {op.Process} invoked {op.F} while its {earlier.F} (index {earlier.Index}) had not completed; a process runs one operation at a time";
            }

            _pending[op.Process] = op;
            return ValueProblem(op);
        }

        if (!_pending.Remove(op.Process, out var invoke))
        {
            return $"process {op.Process} completed {op.F} ({op.Type.ToWireName()}) without invoking it";
        }

        if (invoke.F != op.F)
        {
            return $"process {op.Process} invoked {invoke.F} (index {invoke.Index}) but completed {op.F}";
        }

        if (invoke.Key is not null && op.Key is not null && invoke.Key != op.Key)
        {
            return $"process {op.Process} invoked {op.F} on key \"{invoke.Key}\" (index {invoke.Index}) but completed it on key \"{op.Key}\"";
        }

        return op.Type == OperationType.Ok ? ValueProblem(op) : null;
    }

    private static string? ValueProblem(Operation op)
    {
        var value = op.Value;
        switch (op.F)
        {
            case Functions.Cas when op.Type == OperationType.Invoke || !op.HasNullValue:
                if (value.ValueKind != JsonValueKind.Array || value.GetArrayLength() != 2)
                {
                    return $"cas needs a value [expected, new], not {Raw(value)}";
                }

                return null;
            case Functions.Increment when op.Type == OperationType.Invoke:
                return value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out _)
                    ? null
                    : $"increment needs an integer value, not {Raw(value)}";
            case Functions.Txn when op.Type == OperationType.Invoke || !op.HasNullValue:
                try
                {
                    _ = MicroOp.ParseList(value);
                    return null;
                }
                catch (FormatException e)
                {
                    return e.Message;
                }

            default:
                return null;
        }
    }

    private static string Raw(JsonElement value) => value.ValueKind == JsonValueKind.Undefined ? "null" : value.GetRawText();
}
