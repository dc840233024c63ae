namespace Concord.Engine;

/// <summary>A version in a key's MVCC chain (newest first). Only the writer mutates <see cref="Older"/>.</summary>
internal sealed class VersionNode(ConcordRecord record, VersionNode? older)
{
    public readonly ConcordRecord Record = record;
    public VersionNode? Older = older;
}

/// <summary>All retained versions of one key. Readers walk the chain without locks; the single writer prepends.</summary>
internal sealed class KeyEntry(string key)
{
    public readonly string Key = key;
    private volatile VersionNode? _head;
    private int _length;
    private int _trimAt;

    /// <summary>Newest version, including versions not yet durable/visible and tombstones.</summary>
    public ConcordRecord? Latest => _head?.Record;

    /// <summary>Newest version with revision ≤ <paramref name="revision"/>; null when none is retained.</summary>
    public ConcordRecord? At(long revision)
    {
        // Acquire reads: a reader that sees a trimmed link also sees the oldest-readable revision published before it.
        for (var node = _head; node is not null; node = Volatile.Read(ref node.Older))
        {
            if (node.Record.Revision <= revision) return node.Record;
        }
        return null;
    }

    /// <summary>Prepends a version and trims versions no reader at revision ≥ <paramref name="compactRevision"/> can need.</summary>
    public void Prepend(ConcordRecord record, long compactRevision)
    {
        var head = new VersionNode(record, _head);
        // The walk costs the chain's length, and a hot key keeps every version of the retention window: trim only once
        // the chain grew by half since the last trim (amortized O(1) per write, at most ~1.5x the needed versions).
        if (++_length >= _trimAt)
        {
            var kept = 0;
            // Keep every version newer than the compaction point plus the one a reader at exactly that point sees.
            for (var node = head; node is not null; node = node.Older)
            {
                kept++;
                if (node.Record.Revision <= compactRevision)
                {
                    Volatile.Write(ref node.Older, null);
                    break;
                }
            }
            _length = kept;
            _trimAt = kept + kept / 2 + 1;
        }
        _head = head;
    }

    /// <summary>Replaces the chain with one version (recovery from a snapshot).</summary>
    public void Reset(ConcordRecord record)
    {
        _head = new VersionNode(record, null);
        _length = 1;
        _trimAt = 0;
    }
}
