namespace Concord;

/// <summary>
/// Base of every fault Concord raises. Expected outcomes (conflicts) are results, not exceptions;
/// exceptions mean bad input, misuse or an I/O failure. <see cref="IsTransient"/> says whether a retry may help.
/// </summary>
public abstract class ConcordException : Exception
{
    /// <summary>Creates the exception.</summary>
    protected ConcordException(string message, Exception? inner = null) : base(message, inner) { }

    /// <summary>True when retrying the same call may succeed.</summary>
    public virtual bool IsTransient => false;

    /// <summary>Stable machine-readable error code (used as the problem+json <c>type</c> suffix over HTTP).</summary>
    public abstract string Code { get; }
}

/// <summary>A key or namespace is not valid.</summary>
public sealed class InvalidKeyException(string key, string reason)
    : ConcordException($"Invalid key '{Truncate(key)}': {reason}")
{
    /// <summary>The rejected key.</summary>
    public string Key { get; } = key;

    /// <summary>Why it was rejected.</summary>
    public string Reason { get; } = reason;

    /// <inheritdoc />
    public override string Code => "invalid-key";

    private static string Truncate(string s) => s.Length > 80 ? s[..80] + "…" : s;
}

/// <summary>A value exceeds the configured size limit.</summary>
public sealed class ValueTooLargeException(string key, long size, long limit)
    : ConcordException($"Value for '{key}' is {size} bytes; the limit is {limit} bytes")
{
    /// <summary>The key whose value was rejected.</summary>
    public string Key { get; } = key;

    /// <summary>Size of the rejected value in UTF-8 bytes.</summary>
    public long Size { get; } = size;

    /// <summary>The configured limit.</summary>
    public long Limit { get; } = limit;

    /// <inheritdoc />
    public override string Code => "value-too-large";
}

/// <summary>A patch is malformed or cannot apply to the current value (a failed <c>test</c> is a conflict instead).</summary>
public sealed class InvalidPatchException(string message, int operationIndex = -1)
    : ConcordException(operationIndex >= 0 ? $"Patch operation {operationIndex}: {message}" : message)
{
    /// <summary>Index of the failing operation, or -1 when the patch as a whole is malformed.</summary>
    public int OperationIndex { get; } = operationIndex;

    /// <inheritdoc />
    public override string Code => "invalid-patch";
}

/// <summary>The idempotency key was already used for a different request.</summary>
public sealed class IdempotencyKeyReusedException(string idempotencyKey)
    : ConcordException($"Idempotency key '{idempotencyKey}' was already used for a different request; use a new key for a new operation")
{
    /// <summary>The reused key.</summary>
    public string IdempotencyKey { get; } = idempotencyKey;

    /// <inheritdoc />
    public override string Code => "idempotency-key-reused";
}

/// <summary>A read asked for a revision older than the retained history.</summary>
public sealed class RevisionCompactedException(long requested, long compacted)
    : ConcordException($"Revision {requested} has been compacted; the oldest readable revision is {compacted + 1}")
{
    /// <summary>The requested revision.</summary>
    public long Requested { get; } = requested;

    /// <summary>Revisions up to and including this one are compacted.</summary>
    public long CompactedRevision { get; } = compacted;

    /// <inheritdoc />
    public override string Code => "revision-compacted";
}

/// <summary>A read asked for a revision the store has not reached.</summary>
public sealed class UnknownRevisionException(long requested, long current)
    : ConcordException($"Revision {requested} does not exist yet; the current revision is {current}")
{
    /// <summary>The requested revision.</summary>
    public long Requested { get; } = requested;

    /// <summary>The store's current revision.</summary>
    public long Current { get; } = current;

    /// <inheritdoc />
    public override string Code => "unknown-revision";
}

/// <summary>A request is malformed (bad arguments, limits, options).</summary>
public sealed class InvalidRequestException(string message) : ConcordException(message)
{
    /// <inheritdoc />
    public override string Code => "invalid-request";
}

/// <summary>A watch consumer fell too far behind and was disconnected; resume from <see cref="ResumeRevision"/>.</summary>
public sealed class WatchOverflowException(long resumeRevision)
    : ConcordException($"Watch consumer fell behind and was disconnected; resume from revision {resumeRevision}")
{
    /// <summary>Revision to resume watching from.</summary>
    public long ResumeRevision { get; } = resumeRevision;

    /// <inheritdoc />
    public override bool IsTransient => true;

    /// <inheritdoc />
    public override string Code => "watch-overflow";
}

/// <summary>The durable log or a snapshot is corrupt in a way recovery must not paper over.</summary>
public sealed class CorruptDataException(string path, long offset, string reason)
    : ConcordException($"Corrupt data in '{path}' at offset {offset}: {reason}")
{
    /// <summary>File that failed validation.</summary>
    public string Path { get; } = path;

    /// <summary>Byte offset of the bad record.</summary>
    public long Offset { get; } = offset;

    /// <inheritdoc />
    public override string Code => "corrupt-data";
}

/// <summary>The store cannot serve requests: it is closed, or it stopped after a storage failure.</summary>
public sealed class StoreUnavailableException(string message, Exception? inner = null, bool isTransient = false)
    : ConcordException(message, inner)
{
    private readonly bool _transient = isTransient;

    /// <inheritdoc />
    public override bool IsTransient => _transient;

    /// <inheritdoc />
    public override string Code => "store-unavailable";
}
