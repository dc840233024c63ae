using Concord.Lab.History;

namespace Concord.Lab.Checkers.Isolation;

/// <summary>A transaction of the history with its micro-operations (the completion's for committed ones, else the invocation's).</summary>
internal sealed class Txn
{
    public required int Id { get; init; }

    public required OperationPair Pair { get; init; }

    public required IReadOnlyList<MicroOp> Ops { get; init; }

    public OperationType Outcome => Pair.Outcome;

    public bool Committed => Outcome == OperationType.Ok;

    public bool Failed => Outcome == OperationType.Fail;

    public long Index => Pair.Index;

    /// <summary>"T12 (fees)", or "T12 (process 3)" without an agent.</summary>
    public string Label => $"T{Index} ({Describe.Actor(Pair.Process, Pair.Agent)})";

    /// <summary>The agent's name, or "process N".</summary>
    public string Actor => Describe.Actor(Pair.Process, Pair.Agent);

    public string OutcomeText => Outcome switch
    {
        OperationType.Ok => "committed",
        OperationType.Fail => "failed",
        _ => "had an unknown outcome",
    };
}

/// <summary>What the analyzers share: the transactions, the graph being built, and the findings.</summary>
internal sealed class IsolationContext
{
    public IsolationContext(IReadOnlyList<Txn> txns)
    {
        Txns = txns;
        Graph = new DependencyGraph(txns.Count);
    }

    public IReadOnlyList<Txn> Txns { get; }

    public DependencyGraph Graph { get; }

    public List<Anomaly> Anomalies { get; } = [];

    public List<string> Notes { get; } = [];

    public void Report(AnomalyType type, string explanation, params Txn[] txns) =>
        Anomalies.Add(new Anomaly(type, Anomaly.NameOf(type), txns.Select(t => t.Index).Distinct().Order().ToList(), explanation));
}
