using System.Text.Json;

namespace Concord.Tests.Conformance.Support;

/// <summary>Decorates a store and counts calls, to prove what a helper did (or did not) ask the store.</summary>
internal sealed class CountingStore(IConcordStore inner) : IConcordStore
{
    private int _gets;
    private int _puts;

    public int Gets => Volatile.Read(ref _gets);

    public int Puts => Volatile.Read(ref _puts);

    public ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default) => inner.GetRevisionAsync(cancellationToken);

    public ValueTask<ConcordRecord?> GetAsync(string ns, string key, ReadOptions? options = null, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _gets);
        return inner.GetAsync(ns, key, options, cancellationToken);
    }

    public ValueTask<ListResult> ListAsync(string ns, ListRequest request, CancellationToken cancellationToken = default) =>
        inner.ListAsync(ns, request, cancellationToken);

    public ValueTask<WriteResult> PutAsync(string ns, string key, JsonElement value, WriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _puts);
        return inner.PutAsync(ns, key, value, options, cancellationToken);
    }

    public ValueTask<WriteResult> DeleteAsync(string ns, string key, WriteOptions? options = null, CancellationToken cancellationToken = default) =>
        inner.DeleteAsync(ns, key, options, cancellationToken);

    public ValueTask<WriteResult> PatchAsync(string ns, string key, JsonPatch patch, WriteOptions? options = null, CancellationToken cancellationToken = default) =>
        inner.PatchAsync(ns, key, patch, options, cancellationToken);

    public ValueTask<TxnResult> TransactAsync(string ns, TxnRequest request, WriteOptions? options = null, CancellationToken cancellationToken = default) =>
        inner.TransactAsync(ns, request, options, cancellationToken);

    public IAsyncEnumerable<ChangeEvent> WatchAsync(string ns, WatchRequest request, CancellationToken cancellationToken = default) =>
        inner.WatchAsync(ns, request, cancellationToken);

    /// <summary>The inner store is owned by the test fixture, not by this decorator.</summary>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
