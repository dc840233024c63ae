using System.Text.Json;

namespace Concord;

/// <summary>
/// The state contract every Concord backend implements (embedded engine, PostgreSQL, Redis, HTTP client).
/// </summary>
/// <remarks>
/// All members are thread-safe. Conflicts are results; faults are <see cref="ConcordException"/>s.
/// Most code uses a <see cref="ConcordSession"/> (one namespace, one agent identity) rather than this interface.
/// </remarks>
public interface IConcordStore : IAsyncDisposable
{
    /// <summary>The newest revision visible to readers.</summary>
    ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default);

    /// <summary>Reads the latest (or a past) version of a key; null when absent, deleted or expired.</summary>
    ValueTask<ConcordRecord?> GetAsync(string ns, string key, ReadOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Lists live keys under a prefix in key order, one page at a time, at one revision.</summary>
    ValueTask<ListResult> ListAsync(string ns, ListRequest request, CancellationToken cancellationToken = default);

    /// <summary>Writes a whole value if <see cref="WriteOptions.Expect"/> holds.</summary>
    ValueTask<WriteResult> PutAsync(string ns, string key, JsonElement value, WriteOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Deletes a key (leaving a tombstone version) if the expectation holds.</summary>
    ValueTask<WriteResult> DeleteAsync(string ns, string key, WriteOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Applies a patch atomically (absent keys start as <c>{}</c>). Allowed in strict mode: it is not blind.</summary>
    ValueTask<WriteResult> PatchAsync(string ns, string key, JsonPatch patch, WriteOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Runs an etcd-style compare/then/else transaction at one revision.</summary>
    ValueTask<TxnResult> TransactAsync(string ns, TxnRequest request, WriteOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Streams changes to a key or prefix from a revision, then live, until cancelled.</summary>
    IAsyncEnumerable<ChangeEvent> WatchAsync(string ns, WatchRequest request, CancellationToken cancellationToken = default);
}
