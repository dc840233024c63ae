namespace Concord.Engine;

/// <summary>A version in a key's MVCC chain (newest first). Only the writer mutates <see cref="Older"/>.</summary>
internal sealed class VersionNode(ConcordRecord record, VersionNode? older)
{
    public readonly ConcordRecord Record = record;
    public VersionNode? Older = older;

    /// <summary>The next newer version; writer-only, so trimming can start from the old end of the chain.</summary>
    public VersionNode? Newer;
}

/// <summary>All retained versions of one key. Readers walk the chain without locks; the single writer prepends.</summary>
internal sealed class KeyEntry(string key)
{
    public readonly string Key = key;
    private volatile VersionNode? _head;

    /// <summary>Oldest retained version; writer-only.</summary>
    private VersionNode? _tail;

    /// <summary>Newest version, including versions not yet durable/visible and tombstones.</summary>
    public ConcordRecord? Latest => _head?.Record;

    /// <summary>Newest version with revision ≤ <paramref name="revision"/>; null when none is retained.</summary>
    public ConcordRecord? At(long revision)
    {
        for (var node = _head; node is not null; node = node.Older)
        {
            if (node.Record.Revision <= revision) return node.Record;
        }
        return null;
    }

    /// <summary>Prepends a version and trims versions no reader at revision ≥ <paramref name="compactRevision"/> can need.</summary>
    /// <remarks>
    /// Trims from the old end, so a write costs O(versions dropped), amortized O(1): walking from the head made every
    /// write to a hot key cost O(retained versions), 10,000 by default.
    /// </remarks>
    public void Prepend(ConcordRecord record, long compactRevision)
    {
        var previous = _head;
        var head = new VersionNode(record, previous);
        if (previous is null) _tail = head;
        else previous.Newer = head;
        // Keep every version newer than the compaction point plus the one a reader at exactly that point sees.
        var tail = _tail!;
        while (tail.Newer is { } newer && newer.Record.Revision <= compactRevision) tail = newer;
        if (!ReferenceEquals(tail, _tail))
        {
            tail.Older = null;
            _tail = tail;
        }
        _head = head;
    }

    /// <summary>Replaces the chain with one version (recovery from a snapshot).</summary>
    public void Reset(ConcordRecord record)
    {
        var head = new VersionNode(record, null);
        _tail = head;
        _head = head;
    }
}
