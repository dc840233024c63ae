using System.Collections.Concurrent;
using System.Collections.Immutable;

namespace Concord.Engine;

/// <summary>A stored idempotency record: the request fingerprint and the original result.</summary>
internal sealed record IdempotencyEntry(string Key, byte[] Fingerprint, DateTimeOffset ExpiresAt, TxnResult Result);

/// <summary>Everything the engine keeps for one namespace.</summary>
internal sealed class NamespaceState(string name) : ITxnView
{
    public readonly string Name = name;

    /// <summary>Point lookups; readers are lock-free.</summary>
    public readonly ConcurrentDictionary<string, KeyEntry> Keys = new(StringComparer.Ordinal);

    /// <summary>
    /// Every key ever written, tombstones included, in key order: prefix-change checks and reads older than the
    /// live-key history. Immutable, so readers use the current reference without locking; only the writer (engine write
    /// lock, or recovery) replaces it.
    /// </summary>
    private ImmutableSortedSet<string> _allKeys = ImmutableSortedSet.Create<string>(StringComparer.Ordinal);

    /// <summary>The writer's set of keys whose latest version is not a tombstone (writer-owned).</summary>
    private ImmutableSortedSet<string> _live = ImmutableSortedSet.Create<string>(StringComparer.Ordinal);
    private bool _liveChanged;

    /// <summary>
    /// The live-key set after each recent commit that created or deleted a key, oldest first (guarded by
    /// <see cref="_indexGate"/>). A list at revision r scans the newest set at or before r: deleted keys cost nothing,
    /// and a reader at an older revision still sees the keys that were live then. Sets share structure.
    /// </summary>
    private readonly List<(long Revision, ImmutableSortedSet<string> Keys)> _liveVersions = [];
    private readonly Lock _indexGate = new();

    /// <summary>Idempotency records; writer-owned (accessed only under the engine's write lock).</summary>
    public readonly Dictionary<string, IdempotencyEntry> Idempotency = new(StringComparer.Ordinal);

    /// <summary>Newest fencing token per lock; writer-owned.</summary>
    public readonly Dictionary<string, long> Fences = new(StringComparer.Ordinal);

    public ConcordRecord? Latest(string key) => Keys.TryGetValue(key, out var entry) ? entry.Latest : null;

    public IdempotencyEntry? FindIdempotency(string key) => Idempotency.TryGetValue(key, out var entry) ? entry : null;

    public KeyEntry GetOrAddEntry(string key)
    {
        if (Keys.TryGetValue(key, out var entry)) return entry;
        entry = new KeyEntry(key);
        Keys[key] = entry;
        lock (_indexGate) _allKeys = _allKeys.Add(key);
        return entry;
    }

    /// <summary>Installs a new version of a key and tracks its liveness (writer side). Call <see cref="PublishLive"/> after the commit's changes.</summary>
    public void Install(ConcordRecord record, long compactRevision)
    {
        var entry = GetOrAddEntry(record.Key);
        var wasLive = entry.Latest is { IsDeleted: false };
        entry.Prepend(record, compactRevision);
        TrackLive(record.Key, wasLive, !record.IsDeleted);
    }

    /// <summary>Replaces a key's versions with one (recovery from a snapshot). Call <see cref="PublishLive"/> afterwards.</summary>
    public void Reset(ConcordRecord record)
    {
        var entry = GetOrAddEntry(record.Key);
        var wasLive = entry.Latest is { IsDeleted: false };
        entry.Reset(record);
        TrackLive(record.Key, wasLive, !record.IsDeleted);
    }

    private void TrackLive(string key, bool wasLive, bool isLive)
    {
        if (wasLive == isLive) return;
        _live = isLive ? _live.Add(key) : _live.Remove(key);
        _liveChanged = true;
    }

    /// <summary>
    /// Makes the live-key set as of <paramref name="revision"/> available to readers (writer side), and forgets sets no
    /// reader can need: those older than the newest one at or before <paramref name="oldestReadable"/>.
    /// </summary>
    public void PublishLive(long revision, long oldestReadable)
    {
        if (!_liveChanged) return;
        _liveChanged = false;
        lock (_indexGate)
        {
            _liveVersions.Add((revision, _live));
            var obsolete = 0;
            while (obsolete + 1 < _liveVersions.Count && _liveVersions[obsolete + 1].Revision <= oldestReadable) obsolete++;
            // Trim in chunks so the cost is amortized.
            if (obsolete >= 256) _liveVersions.RemoveRange(0, obsolete);
        }
    }

    /// <summary>The live-key set as of <paramref name="revision"/>; null when that revision is older than the retained sets.</summary>
    private ImmutableSortedSet<string>? LiveAt(long revision)
    {
        lock (_indexGate)
        {
            int lo = 0, hi = _liveVersions.Count - 1, found = -1;
            while (lo <= hi)
            {
                var mid = (lo + hi) >>> 1;
                if (_liveVersions[mid].Revision <= revision)
                {
                    found = mid;
                    lo = mid + 1;
                }
                else hi = mid - 1;
            }
            if (found >= 0) return _liveVersions[found].Keys;
            // No set yet: no key was ever live. Older than the retained sets: the caller scans every key instead.
            return _liveVersions.Count == 0 ? ImmutableSortedSet<string>.Empty.WithComparer(StringComparer.Ordinal) : null;
        }
    }

    public void RemoveEntry(string key)
    {
        Keys.TryRemove(key, out _);
        lock (_indexGate) _allKeys = _allKeys.Remove(key);
        if (_live.Contains(key))
        {
            _live = _live.Remove(key);
            _liveChanged = true;
        }
    }

    /// <summary>
    /// Up to <paramref name="max"/> keys under <paramref name="prefix"/> strictly after <paramref name="after"/>, in order.
    /// With <paramref name="liveAt"/>, only keys live at that revision (plus, for revisions older than the retained
    /// live-key history, deleted ones the caller filters out); without it, every key ever written. O(log n + k).
    /// </summary>
    public List<string> KeysInRange(string prefix, string? after, int max, long? liveAt = null)
    {
        var result = new List<string>(Math.Min(max, 256));
        var set = (liveAt is { } revision ? LiveAt(revision) : null) ?? Volatile.Read(ref _allKeys);
        var lower = after is not null && string.CompareOrdinal(after, prefix) >= 0 ? after : prefix;
        var i = set.IndexOf(lower);
        if (i < 0) i = ~i;
        else if (lower == after) i++; // `after` is exclusive
        for (; i < set.Count && result.Count < max; i++)
        {
            var key = set[i];
            // Keys with a common prefix are contiguous in ordinal order: the first one without it ends the range.
            if (!key.StartsWith(prefix, StringComparison.Ordinal)) break;
            result.Add(key);
        }
        return result;
    }

    /// <summary>Highest revision of any change (tombstones included) under a prefix; writer-side.</summary>
    public long PrefixModRevision(string prefix)
    {
        long max = 0;
        string? after = null;
        while (true)
        {
            var page = KeysInRange(prefix, after, 4096);
            foreach (var key in page)
            {
                if (Keys.TryGetValue(key, out var entry) && entry.Latest is { } latest && latest.Revision > max) max = latest.Revision;
            }
            if (page.Count < 4096) return max;
            after = page[^1];
        }
    }
}
