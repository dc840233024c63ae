namespace Concord.Server;

/// <summary>Rights an API key can grant within its namespaces.</summary>
[Flags]
public enum ApiRights
{
    /// <summary>Nothing.</summary>
    None = 0,
    /// <summary>Reads, lists, watches.</summary>
    Read = 1,
    /// <summary>Writes, patches, transactions, locks.</summary>
    Write = 2,
    /// <summary>Everything, including reserved <c>_sys/</c> keys.</summary>
    Admin = 4,
}

/// <summary>One API key (sent as <c>Authorization: Bearer KEY</c> or <c>X-Api-Key: KEY</c>).</summary>
public sealed class ApiKeyOptions
{
    /// <summary>The secret. Never logged.</summary>
    public string Key { get; set; } = "";

    /// <summary>Display name used as the default agent id. <value>Default: "client".</value></summary>
    public string Name { get; set; } = "client";

    /// <summary>Namespaces the key may touch; <c>*</c> means all. <value>Default: none.</value></summary>
    public List<string> Namespaces { get; set; } = [];

    /// <summary>Rights within those namespaces. <value>Default: read.</value></summary>
    public ApiRights Rights { get; set; } = ApiRights.Read;

    internal bool Allows(string ns) => Namespaces.Contains("*") || Namespaces.Contains(ns);
}

/// <summary>Settings of <c>concord serve</c> (configuration section <c>Concord</c>; env vars <c>Concord__Backend</c>, …).</summary>
public sealed class ConcordServerOptions
{
    /// <summary>memory | embedded | postgres | redis. <value>Default: embedded.</value></summary>
    public string Backend { get; set; } = "embedded";

    /// <summary>Data directory for the embedded engine. <value>Default: ./concord-data.</value></summary>
    public string DataDirectory { get; set; } = "concord-data";

    /// <summary>Connection string for external backends.</summary>
    public string? Connection { get; set; }

    /// <summary>Refuse blind overwrites (HTTP 428). <value>Default: true.</value></summary>
    public bool Strict { get; set; } = true;

    /// <summary>Largest accepted request body. <value>Default: 2 MiB.</value></summary>
    public long MaxRequestBodyBytes { get; set; } = 2 * 1024 * 1024;

    /// <summary>Largest accepted value. <value>Default: 1 MiB.</value></summary>
    public int MaxValueBytes { get; set; } = 1024 * 1024;

    /// <summary>Recent revisions kept readable for snapshot reads and watch-from-revision. <value>Default: 10,000.</value></summary>
    public long RetainedRevisions { get; set; } = 10_000;

    /// <summary>How long an Idempotency-Key's stored result is replayed. <value>Default: 24 h.</value></summary>
    public TimeSpan IdempotencyRetention { get; set; } = TimeSpan.FromHours(24);

    /// <summary>
    /// Memory the embedded engine may spend on idempotency records; beyond it the oldest are forgotten before their
    /// retention ends (see <see cref="Concord.Engine.ConcordEngineOptions.IdempotencyMemoryLimit"/>). <value>Default: 256 MiB.</value>
    /// </summary>
    public long IdempotencyMemoryLimit { get; set; } = 256L * 1024 * 1024;

    /// <summary>How often expired (TTL) keys become tombstones that watchers see. <value>Default: 1 s.</value></summary>
    public TimeSpan ExpirySweepInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Concurrent watch (SSE) streams allowed. <value>Default: 1,000.</value></summary>
    public int MaxWatchers { get; set; } = 1000;

    /// <summary>
    /// Open client connections allowed; a connection beyond it gets HTTP 503 <c>too-many-connections</c> (with
    /// <c>Retry-After</c>) and is closed. Zero disables the limit. <value>Default: 10,000.</value>
    /// </summary>
    public int MaxConnections { get; set; } = 10_000;

    /// <summary>
    /// Unfinished tasks (dead letters included) one queue may hold; an enqueue beyond it gets HTTP 429 <c>queue-full</c>.
    /// <value>Default: 1,000,000.</value>
    /// </summary>
    public int MaxQueueTasks { get; set; } = 1_000_000;

    /// <summary>
    /// Largest task payload (serialized JSON) a queue accepts; a larger enqueue gets HTTP 400 naming the limit, and
    /// nothing is created. <value>Default: 256 KiB.</value>
    /// </summary>
    public int MaxQueuePayloadBytes { get; set; } = 256 * 1024;

    /// <summary>Waiters allowed in one lock's queue; more get HTTP 429 <c>too-many-waiters</c>. <value>Default: 1,000.</value></summary>
    public int MaxLockWaitersPerKey { get; set; } = 1000;

    /// <summary>API keys. Empty means authentication is off (development only; a warning is logged). <value>Default: empty.</value></summary>
    public List<ApiKeyOptions> ApiKeys { get; set; } = [];

    /// <summary>Console log format: <c>simple</c> or <c>json</c> (one JSON object per line). <value>Default: simple.</value></summary>
    public string LogFormat { get; set; } = "simple";

    /// <summary>
    /// How long a graceful shutdown waits for in-flight requests before aborting them (watch streams are ended at once).
    /// <value>Default: 10 s.</value>
    /// </summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Throws <see cref="InvalidRequestException"/> when a setting is out of range.</summary>
    public void Validate()
    {
        if (MaxRequestBodyBytes < 1024) throw new InvalidRequestException($"Concord:MaxRequestBodyBytes must be at least 1024 (got {MaxRequestBodyBytes})");
        if (MaxValueBytes < 16) throw new InvalidRequestException($"Concord:MaxValueBytes must be at least 16 (got {MaxValueBytes})");
        if (MaxWatchers < 0) throw new InvalidRequestException($"Concord:MaxWatchers must not be negative (got {MaxWatchers})");
        if (MaxConnections < 0) throw new InvalidRequestException($"Concord:MaxConnections must not be negative (got {MaxConnections})");
        if (MaxQueueTasks < 1) throw new InvalidRequestException($"Concord:MaxQueueTasks must be at least 1 (got {MaxQueueTasks})");
        if (MaxQueuePayloadBytes < 1) throw new InvalidRequestException($"Concord:MaxQueuePayloadBytes must be at least 1 (got {MaxQueuePayloadBytes})");
        if (MaxLockWaitersPerKey < 1) throw new InvalidRequestException($"Concord:MaxLockWaitersPerKey must be at least 1 (got {MaxLockWaitersPerKey})");
        if (ShutdownTimeout < TimeSpan.Zero) throw new InvalidRequestException("Concord:ShutdownTimeout must not be negative");
        if (LogFormat is not ("simple" or "json")) throw new InvalidRequestException($"Concord:LogFormat must be 'simple' or 'json' (got '{LogFormat}')");
        foreach (var key in ApiKeys)
        {
            if (string.IsNullOrEmpty(key.Key)) throw new InvalidRequestException($"API key '{key.Name}' has an empty Key");
            if (key.Namespaces.Count == 0) throw new InvalidRequestException($"API key '{key.Name}' has no Namespaces (use [\"*\"] for all)");
        }
        if (ApiKeys.Select(k => k.Key).Distinct(StringComparer.Ordinal).Count() != ApiKeys.Count) throw new InvalidRequestException("Two API keys have the same Key");
    }
}
