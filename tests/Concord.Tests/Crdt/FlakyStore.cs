using System.Text.Json;

namespace Concord.Tests.Crdt;

/// <summary>
/// A store wrapper that loses requests and replies and delivers some requests twice, deterministically from a seed.
/// Faults are transient <see cref="StoreUnavailableException"/>s, like a client would see on a network error.
/// </summary>
internal sealed class FlakyStore(IConcordStore inner, int seed, double failBefore, double failAfter, double duplicate) : IConcordStore
{
    private readonly Random _random = new(seed);
    private readonly Lock _gate = new();

    /// <summary>Faults forced on the next transactions, in order, before the random ones: "before", "after", "duplicate".</summary>
    public Queue<string> Scripted { get; } = new();

    public int LostReplies { get; private set; }

    private string Next()
    {
        lock (_gate)
        {
            if (Scripted.TryDequeue(out var scripted)) return scripted;
            var x = _random.NextDouble();
            if (x < failBefore) return "before";
            if (x < failBefore + failAfter) return "after";
            if (x < failBefore + failAfter + duplicate) return "duplicate";
            return "ok";
        }
    }

    private static StoreUnavailableException Fault(string what) => new($"simulated network fault ({what})", isTransient: true);

    public async ValueTask<TxnResult> TransactAsync(string ns, TxnRequest request, WriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        switch (Next())
        {
            case "before":
                throw Fault("request lost");
            case "after":
                await inner.TransactAsync(ns, request, options, cancellationToken);
                lock (_gate) LostReplies++;
                throw Fault("reply lost");
            case "duplicate":
                await inner.TransactAsync(ns, request, options, cancellationToken);
                return await inner.TransactAsync(ns, request, options, cancellationToken);
            default:
                return await inner.TransactAsync(ns, request, options, cancellationToken);
        }
    }

    public ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default) => inner.GetRevisionAsync(cancellationToken);
    public ValueTask<ConcordRecord?> GetAsync(string ns, string key, ReadOptions? options = null, CancellationToken cancellationToken = default) => inner.GetAsync(ns, key, options, cancellationToken);
    public ValueTask<ListResult> ListAsync(string ns, ListRequest request, CancellationToken cancellationToken = default) => inner.ListAsync(ns, request, cancellationToken);
    public ValueTask<WriteResult> PutAsync(string ns, string key, JsonElement value, WriteOptions? options = null, CancellationToken cancellationToken = default) => inner.PutAsync(ns, key, value, options, cancellationToken);
    public ValueTask<WriteResult> DeleteAsync(string ns, string key, WriteOptions? options = null, CancellationToken cancellationToken = default) => inner.DeleteAsync(ns, key, options, cancellationToken);
    public ValueTask<WriteResult> PatchAsync(string ns, string key, JsonPatch patch, WriteOptions? options = null, CancellationToken cancellationToken = default) => inner.PatchAsync(ns, key, patch, options, cancellationToken);
    public IAsyncEnumerable<ChangeEvent> WatchAsync(string ns, WatchRequest request, CancellationToken cancellationToken = default) => inner.WatchAsync(ns, request, cancellationToken);
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
