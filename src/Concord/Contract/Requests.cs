namespace Concord;

/// <summary>Options for one mutating call.</summary>
public sealed record WriteOptions
{
    /// <summary>Shared instance with every option at its default.</summary>
    public static WriteOptions Default { get; } = new();

    /// <summary>The precondition. <value>Default: <see cref="Expect.Any"/> (blind).</value></summary>
    public Expectation Expect { get; init; } = Concord.Expect.Any;

    /// <summary>
    /// Operation id. A retry with the same id and the same request returns the original result marked
    /// <see cref="WriteResult.Replayed"/>; the same id with a different request throws
    /// <see cref="IdempotencyKeyReusedException"/>. Only applied writes are remembered: a conflict is not.
    /// <value>Default: null (no idempotency).</value>
    /// </summary>
    public string? IdempotencyKey { get; init; }

    /// <summary>
    /// For helpers whose payload legitimately changes between attempts of one logical operation (such as
    /// <c>UpdateAsync</c>): when set, the idempotency fingerprint is this string instead of the payload.
    /// </summary>
    public string? LogicalOperation { get; init; }

    /// <summary>Agent id recorded as the writer. Sessions set it. <value>Default: null.</value></summary>
    public string? Agent { get; init; }

    /// <summary>Time to live of the written value. <value>Default: null (never expires).</value></summary>
    public TimeSpan? Ttl { get; init; }

    /// <summary>
    /// The causal context the writer last read for this key (<see cref="CausalStamp.Context"/>); sessions fill it in.
    /// It tells the store whether the write descends from the current value or is concurrent with it
    /// (<see cref="CausalStamp.Concurrent"/>), and on a key with siblings which siblings the write replaces.
    /// It never relaxes an expectation or strict mode, and it is not part of the idempotency fingerprint.
    /// <value>Default: null (the writer has seen nothing: concurrent with any existing value).</value>
    /// </summary>
    public VersionVector? Context { get; init; }

    /// <summary>
    /// Opt the key into siblings: from this write on, a write whose context does not cover the current value(s) is kept
    /// next to them instead of replacing them, until a write carrying the merged context resolves them. Sticky for the
    /// key. <value>Default: false.</value>
    /// </summary>
    public bool AllowSiblings { get; init; }
}

/// <summary>Options for a point read.</summary>
public sealed record ReadOptions
{
    /// <summary>Read the value as of this revision (a snapshot read). <value>Default: null (latest).</value></summary>
    public long? AtRevision { get; init; }

    /// <summary>
    /// Agent id of the reader. Stores ignore it for the read itself; it attributes the read in journals and traces (the
    /// HTTP client sends it as <c>Concord-Agent</c>, so the server's dashboard can tell who read which version). Sessions set it.
    /// <value>Default: null.</value>
    /// </summary>
    public string? Agent { get; init; }
}

/// <summary>A prefix scan.</summary>
public sealed record ListRequest
{
    /// <summary>Key prefix; empty lists the whole namespace. <value>Default: empty.</value></summary>
    public string Prefix { get; init; } = "";

    /// <summary>Start after this key (exclusive), for paging. <value>Default: null.</value></summary>
    public string? After { get; init; }

    /// <summary>Maximum records in the page (1..10,000). <value>Default: 1,000.</value></summary>
    public int Limit { get; init; } = 1000;

    /// <summary>Read as of this revision. <value>Default: null (latest).</value></summary>
    public long? AtRevision { get; init; }
}

/// <summary>What to watch: one key or a prefix, from a revision.</summary>
public sealed record WatchRequest
{
    /// <summary>Exact key to watch; mutually exclusive with <see cref="Prefix"/>.</summary>
    public string? Key { get; init; }

    /// <summary>Prefix to watch (empty = whole namespace) when <see cref="Key"/> is null. <value>Default: empty.</value></summary>
    public string Prefix { get; init; } = "";

    /// <summary>
    /// Deliver every change with revision ≥ this one, then live changes. 0 means "from now".
    /// A revision older than the retained history throws <see cref="RevisionCompactedException"/>.
    /// </summary>
    public long FromRevision { get; init; }

    internal bool Matches(string key) => Key is not null ? key == Key : key.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>Throws for a malformed request; every backend calls it so they refuse the same inputs.</summary>
    internal void Validate()
    {
        if (Key is not null && Prefix.Length > 0)
            throw new InvalidRequestException($"Watch either a Key or a Prefix, not both (Key '{Key}', Prefix '{Prefix}')");
        if (Key is not null) Internal.KeyRules.ValidateKey(Key);
        else Internal.KeyRules.ValidatePrefix(Prefix);
        if (FromRevision < 0) throw new InvalidRequestException("FromRevision must not be negative");
    }
}
