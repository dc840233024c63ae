namespace Concord.Engine;

/// <summary>Settings of the embedded engine. Validated by <see cref="Validate"/> when the engine opens.</summary>
public sealed class ConcordEngineOptions
{
    /// <summary>
    /// Directory for the durable log and snapshots. Null runs the engine in <c>memory</c> mode (nothing on disk).
    /// <value>Default: null.</value>
    /// </summary>
    public string? DataDirectory { get; set; }

    /// <summary>Refuse blind overwrites of existing keys in every namespace not listed in <see cref="StrictNamespaces"/>. <value>Default: false (the server turns it on).</value></summary>
    public bool StrictMode { get; set; }

    /// <summary>Per-namespace overrides of <see cref="StrictMode"/>. <value>Default: empty.</value></summary>
    public IDictionary<string, bool> StrictNamespaces { get; } = new Dictionary<string, bool>(StringComparer.Ordinal);

    /// <summary>Largest accepted value, in UTF-8 bytes of its JSON text. <value>Default: 1 MiB.</value></summary>
    public int MaxValueBytes { get; set; } = 1024 * 1024;

    /// <summary>How long idempotency records are kept. <value>Default: 24 hours.</value></summary>
    public TimeSpan IdempotencyRetention { get; set; } = TimeSpan.FromHours(24);

    /// <summary>
    /// Estimated memory the engine may spend on idempotency records (key, fingerprint and the stored result). When a
    /// write rate would need more within <see cref="IdempotencyRetention"/>, the oldest records are forgotten early, so a
    /// retry older than the shortened window runs again instead of replaying; <see cref="ConcordEngine.GetIdempotencyStats"/>
    /// and the <c>concord.idempotency.evictions</c> counter show when that happens. Size it as write rate × wanted window
    /// × record size (about 300 bytes plus the written values). <value>Default: 256 MiB.</value>
    /// </summary>
    public long IdempotencyMemoryLimit { get; set; } = 256L * 1024 * 1024;

    /// <summary>
    /// How many recent revisions stay readable (snapshot reads, watch from a revision). Older versions are
    /// compacted automatically. <value>Default: 10,000.</value>
    /// </summary>
    public long RetainedRevisions { get; set; } = 10_000;

    /// <summary>How often expired keys are swept (turned into tombstones visible to watchers). <value>Default: 1 second.</value></summary>
    public TimeSpan ExpirySweepInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Write a snapshot and drop old log segments once this many log bytes accumulated. <value>Default: 64 MiB.</value></summary>
    public long SnapshotEveryBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>Events buffered per watcher before a slow watcher is disconnected. <value>Default: 10,000.</value></summary>
    public int WatchBufferSize { get; set; } = 10_000;

    /// <summary>Clock for commit times, TTLs and idempotency retention. <value>Default: <see cref="TimeProvider.System"/>.</value></summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>
    /// This store's actor id in causal contexts (the <c>n1</c> of <c>{"n1":42}</c>). Contexts hold one entry per store
    /// replica, not per agent. Keep it stable for a data directory; give each replica of a replicated deployment its own.
    /// <value>Default: <c>n1</c>.</value>
    /// </summary>
    public string ReplicaId { get; set; } = "n1";

    /// <summary>True when <paramref name="ns"/> refuses blind overwrites.</summary>
    public bool IsStrict(string ns) => StrictNamespaces.TryGetValue(ns, out var strict) ? strict : StrictMode;

    /// <summary>Throws <see cref="ArgumentException"/> for out-of-range settings.</summary>
    public void Validate()
    {
        if (MaxValueBytes is < 16 or > 256 * 1024 * 1024) throw new ArgumentException("MaxValueBytes must be between 16 B and 256 MiB", nameof(MaxValueBytes));
        if (IdempotencyRetention <= TimeSpan.Zero) throw new ArgumentException("IdempotencyRetention must be positive", nameof(IdempotencyRetention));
        if (IdempotencyMemoryLimit < 64 * 1024) throw new ArgumentException("IdempotencyMemoryLimit must be at least 64 KiB", nameof(IdempotencyMemoryLimit));
        if (RetainedRevisions < 1) throw new ArgumentException("RetainedRevisions must be at least 1", nameof(RetainedRevisions));
        if (ExpirySweepInterval <= TimeSpan.Zero) throw new ArgumentException("ExpirySweepInterval must be positive", nameof(ExpirySweepInterval));
        if (SnapshotEveryBytes < 4096) throw new ArgumentException("SnapshotEveryBytes must be at least 4 KiB", nameof(SnapshotEveryBytes));
        if (WatchBufferSize < 16) throw new ArgumentException("WatchBufferSize must be at least 16", nameof(WatchBufferSize));
        ArgumentNullException.ThrowIfNull(TimeProvider);
        if (string.IsNullOrWhiteSpace(ReplicaId) || ReplicaId.Length > 64) throw new ArgumentException("ReplicaId must be 1 to 64 characters", nameof(ReplicaId));
    }
}
