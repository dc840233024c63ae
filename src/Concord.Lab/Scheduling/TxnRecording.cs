using Concord.Lab.History;

namespace Concord.Lab.Scheduling;

/// <summary>
/// Records one logical transaction of an agent (read → think → write) as a <c>txn</c> operation with exact versions,
/// so the isolation checker sees what the agent based its write on: two agents that read version 3 and both wrote the
/// key are a lost update, whatever the store says about each call on its own.
/// </summary>
/// <remarks>Not thread-safe: one agent, one transaction at a time. Complete it once (<see cref="Ok"/>, <see cref="Fail"/>, <see cref="Info"/>); disposing it uncompleted records <c>info</c>.</remarks>
public sealed class TxnRecording : IDisposable
{
    private readonly RecordedOperation _operation;
    private readonly List<MicroOp> _ops = [];

    private TxnRecording(RecordedOperation operation) => _operation = operation;

    /// <summary>Starts a transaction of <paramref name="agent"/> whose intent is <paramref name="intent"/> (reads with no value, writes with the value meant).</summary>
    public static TxnRecording Begin(LabAgent agent, params MicroOp[] intent)
    {
        ArgumentNullException.ThrowIfNull(agent);
        return Begin(agent.History, agent.Process, agent.Name, intent);
    }

    /// <summary>Starts a transaction of process <paramref name="process"/> (for set-up and verification writes).</summary>
    public static TxnRecording Begin(HistoryRecorder history, int process, string agent, params MicroOp[] intent)
    {
        ArgumentNullException.ThrowIfNull(history);
        return new TxnRecording(history.Invoke(process, Functions.Txn, value: MicroOp.ToJson(intent), agent: agent));
    }

    /// <summary>Notes a read of <paramref name="key"/> that returned <paramref name="record"/> (null = absent, version 0).</summary>
    public void Read(string key, ConcordRecord? record) =>
        _ops.Add(MicroOp.Read(key, record is null ? HistoryValue.Null : record.Value, record?.Version ?? 0));

    /// <summary>Notes a write that created <paramref name="record"/>.</summary>
    public void Wrote(ConcordRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        _ops.Add(MicroOp.Write(record.Key, record.Value, record.Version));
    }

    /// <summary>Forgets what was noted (a retry of the whole transaction starts over).</summary>
    public void Reset() => _ops.Clear();

    /// <summary>The transaction committed: records the noted reads and writes.</summary>
    public void Ok() => _operation.Ok(MicroOp.ToJson(_ops));

    /// <summary>The transaction certainly did not take effect.</summary>
    public void Fail(string? error = null) => _operation.Fail(error);

    /// <summary>The outcome is unknown.</summary>
    public void Info(string? error = null) => _operation.Info(error);

    /// <summary>Records <c>info</c> if not completed (an exception escaped).</summary>
    public void Dispose() => _operation.Dispose();
}
