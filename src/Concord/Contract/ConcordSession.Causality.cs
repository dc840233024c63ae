using System.Text.Json;
using Concord.Crdt;

namespace Concord;

// Causal contexts and CRDT merges (docs/causality.md, docs/crdt.md).
public sealed partial class ConcordSession
{
    private readonly CausalContextCache _contexts;

    /// <summary>
    /// The causal context this session has seen for <paramref name="key"/> (joined over every read and write of it), or null.
    /// Writes through the session carry it automatically.
    /// </summary>
    public VersionVector? GetContext(string key) => _contexts.Get(key);

    /// <summary>Forgets what the session has seen of <paramref name="key"/>: its next write counts as concurrent with the current value.</summary>
    public void ForgetContext(string key) => _contexts.Remove(key);

    /// <summary>
    /// Writes a whole value with explicit options (for example <see cref="WriteOptions.AllowSiblings"/>). The session sets
    /// the agent id and, unless <see cref="WriteOptions.Context"/> is given, the context it has seen for the key.
    /// </summary>
    public ValueTask<WriteResult> PutAsync(string key, JsonElement value, WriteOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        return Observe(Store.PutAsync(Namespace, key, value, options with { Agent = AgentId, Context = options.Context ?? GetContext(key) }, cancellationToken));
    }

    /// <summary>Deletes with explicit options; on a key with siblings it removes only the siblings the context covers.</summary>
    public ValueTask<WriteResult> DeleteAsync(string key, WriteOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        return Observe(Store.DeleteAsync(Namespace, key, options with { Agent = AgentId, Context = options.Context ?? GetContext(key) }, cancellationToken));
    }

    /// <summary>
    /// Joins a CRDT <paramref name="delta"/> (a <c>{"$crdt":…}</c> envelope) into the state at <paramref name="key"/>,
    /// atomically, in the store. Never conflicts with concurrent merges; allowed in strict mode. The result's record
    /// is the merged state.
    /// </summary>
    /// <exception cref="CrdtTypeMismatchException">The key holds a plain value or another CRDT type.</exception>
    public async ValueTask<WriteResult> MergeAsync(string key, JsonElement delta, string? idempotencyKey = null, CancellationToken cancellationToken = default)
    {
        var request = new TxnRequest { Then = [TxnOp.Merge(key, delta)] };
        var result = await Observe(Store.TransactAsync(Namespace, request, Write(default, idempotencyKey, null), cancellationToken)).ConfigureAwait(false);
        if (result.Conflict is { } conflict) return conflict;
        return new WriteResult(key, ConflictKind.None, result.Results[0].Record, result.Revision, result.Replayed);
    }

    /// <summary>Joins a CRDT delta (see <see cref="MergeAsync(string, JsonElement, string?, CancellationToken)"/>).</summary>
    public ValueTask<WriteResult> MergeAsync(string key, CrdtState delta, string? idempotencyKey = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(delta);
        return MergeAsync(key, delta.ToJson(), idempotencyKey, cancellationToken);
    }

    /// <summary>Reads the CRDT state at <paramref name="key"/>; the empty state when absent.</summary>
    /// <exception cref="CrdtTypeMismatchException">The key holds a plain value or another CRDT type.</exception>
    public async ValueTask<T> GetCrdtAsync<T>(string key, CancellationToken cancellationToken = default) where T : CrdtState, ICrdt<T>
    {
        var record = await GetAsync(key, cancellationToken).ConfigureAwait(false);
        if (record is null) return T.Empty;
        try
        {
            return CrdtState.Parse<T>(record.Value);
        }
        catch (CrdtTypeMismatchException e)
        {
            throw new CrdtTypeMismatchException(key, e.Expected, e.Actual);
        }
    }

    /// <summary>Records what a reader saw. Knowledge only grows: contexts are joined.</summary>
    internal void Remember(ConcordRecord? record)
    {
        if (record?.Causal is { } causal) _contexts.Join(record.Key, causal.Context);
    }

    /// <summary>
    /// Records what a writer knows after its write. A write that left unseen siblings in place must not claim to have
    /// seen them (the key's context covers them), so its context is not remembered.
    /// </summary>
    private void RememberWritten(ConcordRecord? record)
    {
        if (record?.Causal is { SiblingMode: true, Concurrent: true }) return;
        Remember(record);
    }

    private async ValueTask<ConcordRecord?> Observe(ValueTask<ConcordRecord?> read)
    {
        var record = await read.ConfigureAwait(false);
        Remember(record);
        return record;
    }

    private async ValueTask<ListResult> Observe(ValueTask<ListResult> list)
    {
        var page = await list.ConfigureAwait(false);
        foreach (var record in page.Records) Remember(record);
        return page;
    }

    private async ValueTask<WriteResult> Observe(ValueTask<WriteResult> write)
    {
        var result = await write.ConfigureAwait(false);
        if (result.IsApplied) RememberWritten(result.Record);
        else Remember(result.Record); // a conflict hands the current record to the caller: it has now seen it
        return result;
    }

    internal async ValueTask<TxnResult> Observe(ValueTask<TxnResult> transaction)
    {
        var result = await transaction.ConfigureAwait(false);
        if (result.Conflict is { } conflict) Remember(conflict.Record);
        foreach (var op in result.Results)
        {
            if (op.Kind == TxnOpKind.Get) Remember(op.Record);
            else RememberWritten(op.Record);
        }
        return result;
    }

    /// <summary>Fills in the context of writes that do not carry one.</summary>
    private TxnRequest WithContexts(TxnRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var then = WithContexts(request.Then);
        var @else = WithContexts(request.Else);
        return ReferenceEquals(then, request.Then) && ReferenceEquals(@else, request.Else) ? request : request with { Then = then, Else = @else };
    }

    private IReadOnlyList<TxnOp> WithContexts(IReadOnlyList<TxnOp> ops)
    {
        List<TxnOp>? copy = null;
        for (var i = 0; i < ops.Count; i++)
        {
            var op = ops[i];
            if (op.Context is not null || op.Kind is TxnOpKind.Get or TxnOpKind.Merge || GetContext(op.Key) is not { } context) continue;
            copy ??= [.. ops];
            copy[i] = op with { Context = context };
        }
        return copy ?? ops;
    }
}

/// <summary>Per-key causal contexts a session has seen, bounded, least recently used evicted. Thread-safe.</summary>
internal sealed class CausalContextCache
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, LinkedListNode<(string Key, VersionVector Context)>> _map = new(StringComparer.Ordinal);
    private readonly LinkedList<(string Key, VersionVector Context)> _order = new(); // most recent first
    private readonly int _capacity;

    public CausalContextCache(int capacity)
    {
        if (capacity < 1) throw new ArgumentException("CausalContextCapacity must be at least 1", nameof(capacity));
        _capacity = capacity;
    }

    public int Count
    {
        get
        {
            lock (_gate) return _map.Count;
        }
    }

    public VersionVector? Get(string key)
    {
        lock (_gate)
        {
            if (!_map.TryGetValue(key, out var node)) return null;
            _order.Remove(node);
            _order.AddFirst(node);
            return node.Value.Context;
        }
    }

    public void Join(string key, VersionVector context)
    {
        lock (_gate)
        {
            if (_map.TryGetValue(key, out var node))
            {
                node.Value = (key, node.Value.Context.Join(context));
                _order.Remove(node);
                _order.AddFirst(node);
                return;
            }
            _map[key] = _order.AddFirst((key, context));
            if (_map.Count > _capacity)
            {
                var oldest = _order.Last!;
                _order.RemoveLast();
                _map.Remove(oldest.Value.Key);
            }
        }
    }

    public void Remove(string key)
    {
        lock (_gate)
        {
            if (_map.Remove(key, out var node)) _order.Remove(node);
        }
    }
}
