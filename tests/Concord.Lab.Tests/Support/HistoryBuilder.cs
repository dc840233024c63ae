using System.Text.Json;
using Concord.Lab.History;

namespace Concord.Lab.Tests.Support;

/// <summary>Builds hand-written histories tersely: events get consecutive indices and times 100ns apart.</summary>
internal sealed class HistoryBuilder
{
    private readonly List<Operation> _operations = [];
    private readonly Dictionary<int, Operation> _pending = [];
    private readonly Dictionary<int, string> _agents = [];
    private HistoryMeta _meta = HistoryMeta.Empty;

    public static JsonElement J(string json) => HistoryValue.Parse(json);

    public HistoryBuilder Meta(HistoryMeta meta)
    {
        _meta = meta;
        return this;
    }

    public HistoryBuilder Agent(int process, string agent)
    {
        _agents[process] = agent;
        return this;
    }

    public HistoryBuilder Invoke(int process, string f, string? key, object? value = null)
    {
        var op = new Operation
        {
            Index = _operations.Count,
            Time = _operations.Count * 100L,
            Process = process,
            Type = OperationType.Invoke,
            F = f,
            Agent = _agents.GetValueOrDefault(process),
            Key = key,
            Value = ToElement(value),
        };
        _operations.Add(op);
        _pending[process] = op;
        return this;
    }

    public HistoryBuilder Ok(int process, object? value = null, long? version = null) => Complete(process, OperationType.Ok, value, version);

    public HistoryBuilder Fail(int process) => Complete(process, OperationType.Fail, null, null);

    public HistoryBuilder Info(int process) => Complete(process, OperationType.Info, null, null);

    /// <summary>Invoke and complete at once: a sequential operation.</summary>
    public HistoryBuilder Do(int process, string f, string? key, object? input, object? output = null) =>
        Invoke(process, f, key, input).Ok(process, output ?? input);

    public HistoryBuilder Write(int process, string key, object value) => Do(process, Functions.Write, key, value);

    public HistoryBuilder Read(int process, string key, object? value) => Invoke(process, Functions.Read, key).Ok(process, value ?? HistoryValue.Null);

    /// <summary>A transaction: invoke with <paramref name="invoke"/> micro-ops and complete with <paramref name="complete"/> (JSON).</summary>
    public HistoryBuilder Txn(int process, string invoke, string? complete, OperationType outcome = OperationType.Ok)
    {
        Invoke(process, Functions.Txn, null, J(invoke));
        return Complete(process, outcome, complete is null ? null : J(complete), null);
    }

    public OperationHistory Build() => new(_meta, _operations.ToArray());

    public string ToJsonl() => HistoryWriter.Format(Build());

    private HistoryBuilder Complete(int process, OperationType type, object? value, long? version)
    {
        var invoke = _pending[process];
        _pending.Remove(process);
        _operations.Add(new Operation
        {
            Index = _operations.Count,
            Time = _operations.Count * 100L,
            Process = process,
            Type = type,
            F = invoke.F,
            Agent = invoke.Agent,
            Key = invoke.Key,
            Value = value is null ? invoke.Value : ToElement(value),
            Version = version,
        });
        return this;
    }

    private static JsonElement ToElement(object? value) => value switch
    {
        null => default,
        JsonElement element => element,
        _ => JsonSerializer.SerializeToElement(value),
    };
}
