namespace Concord;

/// <summary>Why a write was not applied. Conflicts are expected outcomes, returned as values.</summary>
public enum ConflictKind
{
    /// <summary>No conflict: the write was applied.</summary>
    None,

    /// <summary>The key's version differs from the expected one (a compare-and-swap lost the race).</summary>
    VersionMismatch,

    /// <summary>Create-only write, but the key exists.</summary>
    AlreadyExists,

    /// <summary>The write required the key to exist, but it is absent.</summary>
    NotFound,

    /// <summary>The fencing token is older than the lock's newest token (or was never issued).</summary>
    StaleFence,

    /// <summary>A JSON Patch <c>test</c> operation did not hold.</summary>
    TestFailed,

    /// <summary>Strict mode: a blind overwrite of an existing key was refused. State the version you read.</summary>
    BlindWriteRefused,

    /// <summary>An optimistic transaction's read set or prefix ranges changed before commit.</summary>
    ReadSetChanged,
}

/// <summary>The outcome of a single-key write.</summary>
/// <remarks>
/// On success <see cref="Record"/> is the new version (a tombstone for deletes). On conflict it is the
/// current record (null when the key is absent) so the caller can recompute without another read.
/// </remarks>
public sealed class WriteResult
{
    /// <summary>Creates a result.</summary>
    public WriteResult(string key, ConflictKind conflict, ConcordRecord? record, long revision, bool replayed = false, string? message = null)
    {
        Key = key;
        Conflict = conflict;
        Record = record;
        Revision = revision;
        Replayed = replayed;
        Message = message;
    }

    /// <summary>The key written.</summary>
    public string Key { get; }

    /// <summary><see cref="ConflictKind.None"/> when applied.</summary>
    public ConflictKind Conflict { get; }

    /// <summary>True when the write was applied.</summary>
    public bool IsApplied => Conflict == ConflictKind.None;

    /// <summary>The new record when applied; the current record (or null if absent) on conflict.</summary>
    public ConcordRecord? Record { get; }

    /// <summary>The key's version after the write, or its current version on conflict (0 = absent).</summary>
    public long Version => Record?.Version ?? 0;

    /// <summary>Revision that committed the write, or the revision the conflict was decided at.</summary>
    public long Revision { get; }

    /// <summary>True when this is the stored result of an earlier call with the same idempotency key.</summary>
    public bool Replayed { get; }

    /// <summary>Human-readable explanation of a conflict.</summary>
    public string? Message { get; }

    internal WriteResult AsReplay() => new(Key, Conflict, Record, Revision, replayed: true, Message);

    /// <inheritdoc />
    public override string ToString() => IsApplied
        ? $"applied {Key}@v{Version} rev {Revision}{(Replayed ? " (replayed)" : "")}"
        : $"conflict {Conflict} on {Key}: {Message}";
}

/// <summary>A page of records under a prefix, read at one revision.</summary>
public sealed class ListResult
{
    /// <summary>Creates a page.</summary>
    public ListResult(IReadOnlyList<ConcordRecord> records, long revision, string? nextAfter)
    {
        Records = records;
        Revision = revision;
        NextAfter = nextAfter;
    }

    /// <summary>Live records in key order.</summary>
    public IReadOnlyList<ConcordRecord> Records { get; }

    /// <summary>Revision the page was read at; pass it as <see cref="ListRequest.AtRevision"/> for consistent paging.</summary>
    public long Revision { get; }

    /// <summary>Continuation: pass as <see cref="ListRequest.After"/> for the next page; null when done.</summary>
    public string? NextAfter { get; }
}

/// <summary>What kind of change a <see cref="ChangeEvent"/> reports.</summary>
public enum ChangeKind
{
    /// <summary>A put or patch.</summary>
    Put,

    /// <summary>An explicit delete.</summary>
    Delete,

    /// <summary>The key's TTL elapsed.</summary>
    Expire,
}

/// <summary>One key change, as delivered by watch.</summary>
/// <param name="Namespace">Namespace of the key.</param>
/// <param name="Kind">Put, delete or expiry.</param>
/// <param name="Record">The new version (a tombstone for deletes and expiries).</param>
public sealed record ChangeEvent(string Namespace, ChangeKind Kind, ConcordRecord Record)
{
    /// <summary>The revision that committed the change.</summary>
    public long Revision => Record.Revision;

    /// <summary>The key changed.</summary>
    public string Key => Record.Key;
}
