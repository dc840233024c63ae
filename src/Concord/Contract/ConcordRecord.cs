using System.Text.Json;

namespace Concord;

/// <summary>
/// One version of one key: an immutable JSON value with its per-key <see cref="Version"/>, the global
/// <see cref="Revision"/> that committed it, the agent that wrote it and when.
/// </summary>
/// <remarks>Instances are immutable and safe to share between threads.</remarks>
public sealed class ConcordRecord
{
    /// <summary>Creates a record. Stores create records; user code normally only reads them.</summary>
    public ConcordRecord(string key, JsonElement value, long version, long revision, long createRevision,
        string? writer, DateTimeOffset committedAt, DateTimeOffset? expiresAt, bool isDeleted)
    {
        Key = key;
        Value = value;
        Version = version;
        Revision = revision;
        CreateRevision = createRevision;
        Writer = writer;
        CommittedAt = committedAt;
        ExpiresAt = expiresAt;
        IsDeleted = isDeleted;
    }

    /// <summary>The key, relative to its namespace.</summary>
    public string Key { get; }

    /// <summary>The JSON value; <see cref="JsonValueKind.Undefined"/> for a tombstone.</summary>
    public JsonElement Value { get; }

    /// <summary>Per-key version: 1 on create, +1 on every write, deletes included (a tombstone keeps its version).</summary>
    public long Version { get; }

    /// <summary>Global commit sequence number of the write that produced this version (one transaction = one revision).</summary>
    public long Revision { get; }

    /// <summary>Revision at which the current incarnation of the key was created.</summary>
    public long CreateRevision { get; }

    /// <summary>Agent id of the writer, if the session carried one.</summary>
    public string? Writer { get; }

    /// <summary>Commit time from the store's hybrid logical clock (monotonic per store).</summary>
    public DateTimeOffset CommittedAt { get; }

    /// <summary>When the key expires, if it was written with a TTL.</summary>
    public DateTimeOffset? ExpiresAt { get; }

    /// <summary>True for the tombstone a delete (or expiry) leaves behind.</summary>
    public bool IsDeleted { get; }

    /// <summary>
    /// Causal metadata: the write's dot, the key's causal context (send it back to descend from this version), whether the
    /// write was concurrent with what it replaced, and whether the key keeps siblings. Null for versions written before
    /// causal stamps existed and for expiry tombstones. See docs/causality.md.
    /// </summary>
    public CausalStamp? Causal { get; init; }

    /// <summary>Deserializes <see cref="Value"/> to <typeparamref name="T"/>.</summary>
    public T? ValueAs<T>(JsonSerializerOptions? options = null) => Value.Deserialize<T>(options ?? JsonDefaults.Web);

    /// <inheritdoc />
    public override string ToString() => IsDeleted
        ? $"{Key}@v{Version} (deleted, rev {Revision})"
        : $"{Key}@v{Version} rev {Revision} by {Writer ?? "?"}: {Value.GetRawText()}";
}

/// <summary>Shared JSON settings.</summary>
public static class JsonDefaults
{
    /// <summary>camelCase web defaults used for (de)serializing user values.</summary>
    public static JsonSerializerOptions Web { get; } = new(JsonSerializerDefaults.Web);
}
