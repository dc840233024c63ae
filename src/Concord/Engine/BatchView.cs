namespace Concord.Engine;

/// <summary>
/// An <see cref="ITxnView"/> for group commit in distributed backends: what one read of a batch loaded for one namespace,
/// plus the effects of the commits evaluated before the current request (<see cref="Apply"/>), so requests of a batch
/// can be evaluated one after another and written as consecutive revisions.
/// </summary>
internal sealed class BatchView : ITxnView
{
    public Dictionary<string, ConcordRecord> Rows { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, long> Prefixes { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, IdempotencyEntry> Idempotency { get; } = new(StringComparer.Ordinal);

    public ConcordRecord? Latest(string key) => Rows.TryGetValue(key, out var r) ? r : null;
    public long PrefixModRevision(string prefix) => Prefixes.TryGetValue(prefix, out var r) ? r : 0;
    public IdempotencyEntry? FindIdempotency(string key) => Idempotency.TryGetValue(key, out var e) ? e : null;

    /// <summary>Makes an evaluated (not yet written) commit visible to the next evaluations of the batch.</summary>
    public void Apply(CommitEntry commit)
    {
        foreach (var change in commit.Changes)
        {
            Rows[change.Record.Key] = change.Record;
            foreach (var prefix in Prefixes.Keys.ToList())
            {
                if (change.Record.Key.StartsWith(prefix, StringComparison.Ordinal)) Prefixes[prefix] = commit.Revision;
            }
        }
        if (commit.Idempotency is { } idem) Idempotency[idem.Key] = idem;
    }
}
