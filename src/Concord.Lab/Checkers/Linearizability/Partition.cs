using System.Text.Json;
using Concord.Lab.History;

namespace Concord.Lab.Checkers.Linearizability;

/// <summary>The operations of one key, encoded for <see cref="WglSearch"/>.</summary>
internal sealed class Partition
{
    private Partition(string? key, IReadOnlyList<LinOp> ops, int setElementCount, IReadOnlyList<OperationPair> all)
    {
        Key = key;
        Ops = ops;
        SetElementCount = setElementCount;
        AllPairs = all;
    }

    public string? Key { get; }

    /// <summary>Operations that constrain the check: failed operations and reads of unknown outcome are dropped.</summary>
    public IReadOnlyList<LinOp> Ops { get; }

    /// <summary>For the set model, how many distinct elements the key has (the width of set states).</summary>
    public int SetElementCount { get; }

    /// <summary>Every operation of the key, dropped ones included (for explanations).</summary>
    public IReadOnlyList<OperationPair> AllPairs { get; }

    /// <summary>Splits the history by key and encodes each key's operations.</summary>
    /// <exception cref="HistoryFormatException">An operation does not fit the model.</exception>
    public static IReadOnlyList<Partition> Build(OperationHistory history, LinearizabilityModel model)
    {
        var groups = new Dictionary<string, List<OperationPair>>(StringComparer.Ordinal);
        List<OperationPair>? unkeyed = null;
        foreach (var pair in history.Pairs)
        {
            if (pair.F == Functions.Txn)
            {
                throw new HistoryFormatException($"txn operations need the isolation checker (--model txn), not the {model.ToWireName()} model", pair.Index);
            }

            if (pair.Key is { } key)
            {
                if (!groups.TryGetValue(key, out var list))
                {
                    groups[key] = list = [];
                }

                list.Add(pair);
            }
            else
            {
                (unkeyed ??= []).Add(pair);
            }
        }

        var partitions = new List<Partition>(groups.Count + 1);
        if (unkeyed is not null)
        {
            partitions.Add(Encode(null, unkeyed, model));
        }

        foreach (var (key, pairs) in groups.OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            partitions.Add(Encode(key, pairs, model));
        }

        return partitions;
    }

    private static Partition Encode(string? key, List<OperationPair> pairs, LinearizabilityModel model)
    {
        // Register values are numbered from 1, with 0 for null (the initial value); set and queue elements from 0.
        var values = new Dictionary<string, int>(StringComparer.Ordinal);
        if (model is LinearizabilityModel.Register or LinearizabilityModel.CasRegister)
        {
            values["null"] = 0;
        }

        int Intern(JsonElement value)
        {
            var text = HistoryValue.Canonical(value);
            if (!values.TryGetValue(text, out var id))
            {
                id = values.Count;
                values[text] = id;
            }

            return id;
        }

        var ops = new List<LinOp>(pairs.Count);
        var setReads = new Dictionary<OperationPair, int[]>(ReferenceEqualityComparer.Instance);
        foreach (var pair in pairs)
        {
            if (pair.Outcome == OperationType.Fail)
            {
                continue; // known not to have happened
            }

            var known = pair.Outcome == OperationType.Ok;
            var call = pair.InvokePosition;
            var ret = known ? pair.CompletionPosition : int.MaxValue;
            var input = pair.Invoke.Value;
            var output = pair.Completion?.Value ?? default;
            LinOp? op = (model, pair.F) switch
            {
                (LinearizabilityModel.Register or LinearizabilityModel.CasRegister, Functions.Write) =>
                    new LinOp { Source = pair, Kind = LinKind.Write, Call = call, Return = ret, A = Intern(input) },
                (LinearizabilityModel.Register or LinearizabilityModel.CasRegister or LinearizabilityModel.Counter or LinearizabilityModel.Set, Functions.Read) =>
                    known ? ReadOp(pair, call, ret, output, model, Intern, setReads) : null,
                (LinearizabilityModel.CasRegister, Functions.Cas) => CasOp(pair, call, ret, input, Intern),
                (LinearizabilityModel.Counter, Functions.Increment or Functions.Add) =>
                    new LinOp { Source = pair, Kind = LinKind.Increment, Call = call, Return = ret, A = Integer(input, pair, "increment") },
                (LinearizabilityModel.Set, Functions.Add) =>
                    new LinOp { Source = pair, Kind = LinKind.Add, Call = call, Return = ret, A = Intern(input) },
                (LinearizabilityModel.Queue, Functions.Enqueue) =>
                    new LinOp { Source = pair, Kind = LinKind.Enqueue, Call = call, Return = ret, A = Intern(input) },
                (LinearizabilityModel.Queue, Functions.Dequeue) => new LinOp
                {
                    Source = pair,
                    Kind = LinKind.Dequeue,
                    Call = call,
                    Return = ret,
                    Output = !known || output.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined ? LinOp.EmptyQueue : Intern(output),
                },
                _ => throw new HistoryFormatException(Unsupported(model, pair.F), pair.Index),
            };
            if (op is not null)
            {
                ops.Add(op);
            }
        }

        var elementCount = Math.Max(1, values.Count);
        if (model == LinearizabilityModel.Set)
        {
            // Read states are built once every element is interned, so all states have the same width.
            for (var i = 0; i < ops.Count; i++)
            {
                if (ops[i].Kind == LinKind.Read)
                {
                    var elements = setReads[ops[i].Source];
                    ops[i] = new LinOp
                    {
                        Source = ops[i].Source,
                        Kind = LinKind.Read,
                        Call = ops[i].Call,
                        Return = ops[i].Return,
                        Observed = SetState.Of(elementCount, elements),
                    };
                }
            }
        }

        return new Partition(key, ops, elementCount, pairs);
    }

    private static LinOp ReadOp(OperationPair pair, int call, int ret, JsonElement output, LinearizabilityModel model, Func<JsonElement, int> intern, Dictionary<OperationPair, int[]> setReads)
    {
        switch (model)
        {
            case LinearizabilityModel.Counter:
                var total = output.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined ? 0 : Integer(output, pair, "counter read");
                return new LinOp { Source = pair, Kind = LinKind.Read, Call = call, Return = ret, Output = total };
            case LinearizabilityModel.Set:
                int[] elements;
                if (output.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
                {
                    elements = [];
                }
                else if (output.ValueKind == JsonValueKind.Array)
                {
                    elements = output.EnumerateArray().Select(intern).ToArray();
                }
                else
                {
                    throw new HistoryFormatException($"a set read must complete with a list of elements, not {output.GetRawText()}", pair.Index);
                }

                setReads[pair] = elements;
                return new LinOp { Source = pair, Kind = LinKind.Read, Call = call, Return = ret };
            default:
                return new LinOp { Source = pair, Kind = LinKind.Read, Call = call, Return = ret, Output = intern(output) };
        }
    }

    private static LinOp CasOp(OperationPair pair, int call, int ret, JsonElement input, Func<JsonElement, int> intern)
    {
        if (input.ValueKind != JsonValueKind.Array || input.GetArrayLength() != 2)
        {
            throw new HistoryFormatException($"cas needs a value [expected, new], not {HistoryValue.Canonical(input)}", pair.Invoke.Index);
        }

        return new LinOp { Source = pair, Kind = LinKind.Cas, Call = call, Return = ret, A = intern(input[0]), B = intern(input[1]) };
    }

    private static long Integer(JsonElement value, OperationPair pair, string what) =>
        value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var result)
            ? result
            : throw new HistoryFormatException($"{what} needs an integer, not {HistoryValue.Canonical(value)}", pair.Index);

    private static string Unsupported(LinearizabilityModel model, string f) => (model, f) switch
    {
        (LinearizabilityModel.Register, Functions.Cas) => "the register model has no cas; use the cas-register model",
        _ => $"the {model.ToWireName()} model does not support \"{f}\" operations",
    };
}
