using System.Diagnostics;
using System.Text.Json;

namespace Concord.Lab.History;

/// <summary>
/// Records a history from concurrent code: each call to <see cref="Invoke"/> appends an invocation and returns a
/// handle that appends the matching completion. Indices are assigned in the order events are recorded, and times
/// are read from the injected <see cref="TimeProvider"/> under the same lock, so index order and time order agree.
/// </summary>
/// <remarks>
/// Thread-safe. One lock guards the event list; nothing is called while it is held except the time provider's
/// <see cref="TimeProvider.GetTimestamp"/>, so recording cannot deadlock with the code under test.
/// A process may have only one pending operation, as in Jepsen; use one process id per concurrent worker.
/// </remarks>
public sealed class HistoryRecorder
{
    private readonly Lock _sync = new();
    private readonly TimeProvider _timeProvider;
    private readonly long _start;
    private readonly List<Operation> _operations = [];
    private readonly Dictionary<int, RecordedOperation> _pending = [];

    /// <summary>Creates a recorder whose time zero is now, as measured by <paramref name="timeProvider"/>.</summary>
    public HistoryRecorder(TimeProvider timeProvider, HistoryMeta? meta = null)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        _timeProvider = timeProvider;
        _start = timeProvider.GetTimestamp();
        Meta = meta ?? HistoryMeta.Empty;
    }

    /// <summary>The meta line the history will carry.</summary>
    public HistoryMeta Meta { get; }

    /// <summary>Number of events recorded so far.</summary>
    public int Count
    {
        get
        {
            lock (_sync)
            {
                return _operations.Count;
            }
        }
    }

    /// <summary>
    /// Records the invocation of <paramref name="f"/> by <paramref name="process"/>. Complete the returned handle
    /// with <see cref="RecordedOperation.Ok"/>, <see cref="RecordedOperation.Fail"/> or
    /// <see cref="RecordedOperation.Info"/>; disposing it uncompleted records <c>info</c> (outcome unknown).
    /// </summary>
    /// <exception cref="InvalidOperationException">The process already has a pending operation.</exception>
    public RecordedOperation Invoke(int process, string f, string? key = null, JsonElement value = default, string? agent = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(f);
        lock (_sync)
        {
            if (_pending.ContainsKey(process))
            {
                throw new InvalidOperationException($"Process {process} already has a pending operation; a process runs one operation at a time.");
            }

            var invocation = new Operation
            {
                Index = _operations.Count,
                Time = Now(),
                Process = process,
                Type = OperationType.Invoke,
                F = f,
                Agent = agent,
                Key = key,
                Value = value,
            };
            _operations.Add(invocation);
            var handle = new RecordedOperation(this, invocation);
            _pending.Add(process, handle);
            return handle;
        }
    }

    /// <summary>A snapshot of the history recorded so far. Pending operations appear as invocations without completion.</summary>
    public OperationHistory ToHistory()
    {
        lock (_sync)
        {
            return new OperationHistory(Meta, _operations.ToArray(), validate: false);
        }
    }

    internal void Complete(RecordedOperation handle, OperationType type, JsonElement value, long? version, long? revision, string? error)
    {
        lock (_sync)
        {
            if (!_pending.Remove(handle.Invocation.Process, out var pending) || !ReferenceEquals(pending, handle))
            {
                throw new InvalidOperationException($"Operation {handle.Invocation.Index} was already completed.");
            }

            var completion = handle.Invocation.With(_operations.Count, Now(), type, value, version, revision, error);
            _operations.Add(completion);
        }
    }

    private long Now()
    {
        var elapsed = _timeProvider.GetTimestamp() - _start;
        return (long)((Int128)elapsed * 1_000_000_000 / _timeProvider.TimestampFrequency);
    }
}

/// <summary>A pending operation returned by <see cref="HistoryRecorder.Invoke"/>; complete it exactly once.</summary>
/// <remarks>Thread-safe; completing twice throws <see cref="InvalidOperationException"/>.</remarks>
public sealed class RecordedOperation : IDisposable
{
    private readonly HistoryRecorder _recorder;
    private int _completed;

    internal RecordedOperation(HistoryRecorder recorder, Operation invocation)
    {
        _recorder = recorder;
        Invocation = invocation;
    }

    /// <summary>The recorded invocation.</summary>
    public Operation Invocation { get; }

    /// <summary>True once a completion was recorded.</summary>
    public bool IsCompleted => Volatile.Read(ref _completed) != 0;

    /// <summary>Records success. Without <paramref name="value"/>, the invoked value is repeated (as Jepsen does for writes).</summary>
    public void Ok(JsonElement value = default, long? version = null, long? revision = null) =>
        Complete(OperationType.Ok, value.ValueKind == JsonValueKind.Undefined ? Invocation.Value : value, version, revision, null);

    /// <summary>Records that the operation certainly did not take effect (for example a CAS conflict).</summary>
    public void Fail(string? error = null) => Complete(OperationType.Fail, Invocation.Value, null, null, error);

    /// <summary>Records that the outcome is unknown: the operation may or may not have taken effect.</summary>
    public void Info(string? error = null) => Complete(OperationType.Info, Invocation.Value, null, null, error);

    /// <summary>Records <c>info</c> if no completion was recorded, so an exception escaping the operation leaves an honest history.</summary>
    public void Dispose()
    {
        if (!IsCompleted)
        {
            Info("no completion was recorded");
        }
    }

    private void Complete(OperationType type, JsonElement value, long? version, long? revision, string? error)
    {
        if (Interlocked.Exchange(ref _completed, 1) != 0)
        {
            throw new InvalidOperationException($"Operation {Invocation.Index} was already completed.");
        }

        Debug.Assert(type != OperationType.Invoke, "A completion cannot be an invocation.");
        _recorder.Complete(this, type, value, version, revision, error);
    }
}
