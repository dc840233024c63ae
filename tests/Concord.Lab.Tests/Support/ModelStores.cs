using System.Text.Json;
using Concord.Lab.History;

namespace Concord.Lab.Tests.Support;

/// <summary>Lets N concurrent callers wait until all of them reached the same point: forces a race window open.</summary>
internal sealed class Rendezvous(int parties)
{
    private readonly TaskCompletionSource _all = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _remaining = parties;

    public Task ArriveAndWaitAsync()
    {
        if (Interlocked.Decrement(ref _remaining) == 0)
        {
            _all.SetResult();
        }

        return _all.Task;
    }
}

/// <summary>A correct linearizable register store: one lock around a dictionary.</summary>
internal sealed class LockedRegisterStore
{
    private readonly Lock _sync = new();
    private readonly Dictionary<string, (long Value, long Version)> _data = [];

    public (long? Value, long Version) Read(string key)
    {
        lock (_sync)
        {
            return _data.TryGetValue(key, out var record) ? (record.Value, record.Version) : (null, 0);
        }
    }

    public long Write(string key, long value)
    {
        lock (_sync)
        {
            var version = _data.TryGetValue(key, out var record) ? record.Version + 1 : 1;
            _data[key] = (value, version);
            return version;
        }
    }

    public long? Cas(string key, long? expected, long value)
    {
        lock (_sync)
        {
            var current = _data.TryGetValue(key, out var record) ? record.Value : (long?)null;
            if (current != expected)
            {
                return null;
            }

            _data[key] = (value, record.Version + 1);
            return record.Version + 1;
        }
    }
}

/// <summary>Broken: reads are served from a replica refreshed only every <paramref name="refreshEvery"/> writes.</summary>
internal sealed class LaggingReplicaStore(int refreshEvery)
{
    private readonly Dictionary<string, long> _primary = [];
    private Dictionary<string, long> _replica = [];
    private int _writes;

    public void Write(string key, long value)
    {
        _primary[key] = value;
        if (++_writes % refreshEvery == 0)
        {
            _replica = new Dictionary<string, long>(_primary);
        }
    }

    public long? Read(string key) => _replica.TryGetValue(key, out var value) ? value : null;
}

/// <summary>Broken: CAS compares, yields (the race window), then writes without re-checking.</summary>
internal sealed class RacyCasStore(Rendezvous window)
{
    private readonly Lock _sync = new();
    private long? _value;

    public void Write(long value)
    {
        lock (_sync)
        {
            _value = value;
        }
    }

    public async Task<bool> CasAsync(long? expected, long value)
    {
        long? current;
        lock (_sync)
        {
            current = _value;
        }

        await window.ArriveAndWaitAsync();
        if (current != expected)
        {
            return false;
        }

        lock (_sync)
        {
            _value = value;
        }

        return true;
    }
}

/// <summary>Broken: dequeue peeks at the head, yields, then removes "it" without checking it is still there.</summary>
internal sealed class RacyQueue(Rendezvous window)
{
    private readonly Lock _sync = new();
    private readonly List<string> _items = [];

    public void Enqueue(string item)
    {
        lock (_sync)
        {
            _items.Add(item);
        }
    }

    public async Task<string?> DequeueAsync()
    {
        string? head;
        lock (_sync)
        {
            head = _items.Count > 0 ? _items[0] : null;
        }

        await window.ArriveAndWaitAsync();
        lock (_sync)
        {
            if (head is not null)
            {
                _items.Remove(head);
            }
        }

        return head;
    }
}

/// <summary>
/// A transactional register and list store with exact versions. Correct when <c>validate</c> is on (the whole
/// transaction runs under one lock); with hooks it can be made to skip validation (lost update) or to expose
/// uncommitted writes (dirty read).
/// </summary>
internal sealed class TxnStore
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<string, (JsonElement Value, long Version)> _registers = [];
    private readonly Dictionary<string, List<long>> _lists = [];

    /// <summary>Runs micro-ops atomically and returns them completed with values and versions.</summary>
    public async Task<List<MicroOp>> RunAsync(IReadOnlyList<MicroOp> ops)
    {
        await _gate.WaitAsync();
        try
        {
            return ops.Select(Apply).ToList();
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Broken read-modify-write: reads without the lock, waits at the window, then writes blindly.</summary>
    public async Task<List<MicroOp>> ReadThenBlindWriteAsync(string key, Func<long, long> update, Rendezvous window)
    {
        MicroOp read;
        await _gate.WaitAsync();
        try
        {
            read = Apply(MicroOp.Read(key));
        }
        finally
        {
            _gate.Release();
        }

        await window.ArriveAndWaitAsync();
        var current = read.Value.ValueKind == JsonValueKind.Number ? read.Value.GetInt64() : 0;
        await _gate.WaitAsync();
        try
        {
            return [read, Apply(MicroOp.Write(key, HistoryValue.Of(update(current))))];
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Broken abort: writes in place, lets <paramref name="whileExposed"/> run, then rolls back.</summary>
    public async Task<List<MicroOp>> WriteThenAbortAsync(string key, long value, Func<Task> whileExposed)
    {
        (JsonElement Value, long Version) before;
        MicroOp write;
        await _gate.WaitAsync();
        try
        {
            before = _registers.GetValueOrDefault(key);
            write = Apply(MicroOp.Write(key, HistoryValue.Of(value)));
        }
        finally
        {
            _gate.Release();
        }

        await whileExposed();
        await _gate.WaitAsync();
        try
        {
            if (before.Version == 0)
            {
                _registers.Remove(key);
            }
            else
            {
                _registers[key] = before;
            }
        }
        finally
        {
            _gate.Release();
        }

        return [write];
    }

    private MicroOp Apply(MicroOp op)
    {
        switch (op.F)
        {
            case MicroOp.ReadName when _lists.ContainsKey(op.Key) || op.Key.StartsWith("list", StringComparison.Ordinal):
                var list = _lists.GetValueOrDefault(op.Key) ?? [];
                return MicroOp.Read(op.Key, HistoryValue.Of(list), list.Count);
            case MicroOp.ReadName:
                var record = _registers.GetValueOrDefault(op.Key);
                return MicroOp.Read(op.Key, record.Version == 0 ? HistoryValue.Null : record.Value, record.Version);
            case MicroOp.AppendName:
                if (!_lists.TryGetValue(op.Key, out var items))
                {
                    _lists[op.Key] = items = [];
                }

                items.Add(op.Value.GetInt64());
                return MicroOp.Append(op.Key, op.Value, items.Count);
            default:
                var version = _registers.GetValueOrDefault(op.Key).Version + 1;
                _registers[op.Key] = (op.Value, version);
                return MicroOp.Write(op.Key, op.Value, version);
        }
    }
}
