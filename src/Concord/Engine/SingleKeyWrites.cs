using System.Text.Json;

namespace Concord.Engine;

/// <summary>
/// Put, delete and patch are one-operation transactions in every backend: one code path decides every mutation.
/// </summary>
internal static class SingleKeyWrites
{
    public static TxnRequest Put(string key, JsonElement value, WriteOptions options) => new()
    {
        Then = [new TxnOp(TxnOpKind.Put, key, value, null, options.Expect, options.Ttl) { Context = options.Context, AllowSiblings = options.AllowSiblings }],
    };

    public static TxnRequest Delete(string key, WriteOptions options) => new()
    {
        Then = [new TxnOp(TxnOpKind.Delete, key, default, null, options.Expect) { Context = options.Context, AllowSiblings = options.AllowSiblings }],
    };

    public static TxnRequest Patch(string key, JsonPatch patch, WriteOptions options)
    {
        ArgumentNullException.ThrowIfNull(patch);
        return new() { Then = [new TxnOp(TxnOpKind.Patch, key, default, patch, options.Expect, options.Ttl) { Context = options.Context }] };
    }

    /// <summary>The single operation's outcome.</summary>
    public static WriteResult ToWriteResult(string key, TxnResult result)
    {
        if (result.Conflict is { } conflict) return result.Replayed ? conflict.AsReplay() : conflict;
        var op = result.Results[0];
        return new WriteResult(key, ConflictKind.None, op.Record, result.Revision, result.Replayed);
    }
}

/// <summary>An <see cref="ITxnView"/> over rows a distributed backend loaded for one evaluation.</summary>
internal sealed class PreloadedView : ITxnView
{
    public Dictionary<string, ConcordRecord> Rows { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, long> Prefixes { get; } = new(StringComparer.Ordinal);
    public IdempotencyEntry? Idempotency { get; set; }

    public ConcordRecord? Latest(string key) => Rows.TryGetValue(key, out var r) ? r : null;
    public long PrefixModRevision(string prefix) => Prefixes.TryGetValue(prefix, out var r) ? r : 0;
    public IdempotencyEntry? FindIdempotency(string key) => Idempotency?.Key == key ? Idempotency : null;
}
