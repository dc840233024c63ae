using System.Collections.Concurrent;

namespace Concord.Engine;

/// <summary>A stored idempotency record: the request fingerprint and the original result.</summary>
internal sealed record IdempotencyEntry(string Key, byte[] Fingerprint, DateTimeOffset ExpiresAt, TxnResult Result);

/// <summary>Everything the engine keeps for one namespace.</summary>
internal sealed class NamespaceState(string name) : ITxnView
{
    public readonly string Name = name;

    /// <summary>Point lookups; readers are lock-free.</summary>
    public readonly ConcurrentDictionary<string, KeyEntry> Keys = new(StringComparer.Ordinal);

    /// <summary>Ordered key index for prefix scans; guarded by its own lock (readers copy a page under it).</summary>
    private readonly SortedSet<string> _index = new(StringComparer.Ordinal);
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
        lock (_indexGate) _index.Add(key);
        return entry;
    }

    public void RemoveEntry(string key)
    {
        Keys.TryRemove(key, out _);
        lock (_indexGate) _index.Remove(key);
    }

    /// <summary>Up to <paramref name="max"/> keys under <paramref name="prefix"/> strictly after <paramref name="after"/>, in order.</summary>
    public List<string> KeysInRange(string prefix, string? after, int max)
    {
        var result = new List<string>(Math.Min(max, 256));
        var lower = after is not null && string.CompareOrdinal(after, prefix) >= 0 ? after : prefix;
        lock (_indexGate)
        {
            if (_index.Count == 0) return result;
            var max_ = _index.Max!;
            if (string.CompareOrdinal(lower, max_) > 0) return result;
            foreach (var key in _index.GetViewBetween(lower, max_))
            {
                if (!key.StartsWith(prefix, StringComparison.Ordinal))
                {
                    if (string.CompareOrdinal(key, prefix) > 0) break;
                    continue;
                }
                if (after is not null && string.CompareOrdinal(key, after) <= 0) continue;
                result.Add(key);
                if (result.Count >= max) break;
            }
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
