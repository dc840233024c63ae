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
        // Keep every version newer than the compaction point plus the one a reader at exactly that point sees.
        for (var node = head; node is not null; node = node.Older)
        {
            if (node.Record.Revision <= compactRevision)
            {
                Volatile.Write(ref node.Older, null);
                break;
            }
        }
        _head = head;
    }

    /// <summary>Replaces the chain with one version (recovery from a snapshot).</summary>
    public void Reset(ConcordRecord record) => _head = new VersionNode(record, null);
}
