using System.Buffers;
using System.Text.Json;

namespace Concord.Engine;

/// <summary>One committed revision, as logged and replayed.</summary>
internal sealed class CommitEntry
{
    public required long Revision { get; init; }
    public required string Namespace { get; init; }
    public required DateTimeOffset Time { get; init; }
    public required IReadOnlyList<ChangeEvent> Changes { get; init; }
    public IdempotencyEntry? Idempotency { get; init; }
    public IReadOnlyDictionary<string, long>? Fences { get; init; }
}

/// <summary>
/// The on-disk JSON encoding of records, commits and stored results. Frozen by golden tests:
/// change it only with a format version bump.
/// </summary>
internal static class Codec
{
    private static readonly JsonWriterOptions WriterOptions = new() { SkipValidation = true };

    public static void WriteCommit(IBufferWriter<byte> output, CommitEntry commit)
    {
        using var w = new Utf8JsonWriter(output, WriterOptions);
        w.WriteStartObject();
        w.WriteNumber("rev", commit.Revision);
        w.WriteString("ns", commit.Namespace);
        w.WriteNumber("t", commit.Time.UtcTicks);
        w.WriteStartArray("c");
        foreach (var change in commit.Changes)
        {
            w.WriteStartObject();
            w.WriteNumber("kind", (int)change.Kind);
            w.WritePropertyName("r");
            WriteRecord(w, change.Record);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        if (commit.Idempotency is { } idem)
        {
            w.WritePropertyName("i");
            WriteIdempotency(w, idem);
        }
        if (commit.Fences is { Count: > 0 } fences)
        {
            w.WriteStartObject("f");
            foreach (var (name, token) in fences) w.WriteNumber(name, token);
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    public static CommitEntry ReadCommit(ReadOnlySpan<byte> utf8)
    {
        using var doc = JsonDocument.Parse(utf8.ToArray());
        var root = doc.RootElement;
        var changes = new List<ChangeEvent>();
        var ns = root.GetProperty("ns").GetString()!;
        foreach (var c in root.GetProperty("c").EnumerateArray())
        {
            changes.Add(new ChangeEvent(ns, (ChangeKind)c.GetProperty("kind").GetInt32(), ReadRecord(c.GetProperty("r"))));
        }
        Dictionary<string, long>? fences = null;
        if (root.TryGetProperty("f", out var f))
        {
            fences = new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (var p in f.EnumerateObject()) fences[p.Name] = p.Value.GetInt64();
        }
        return new CommitEntry
        {
            Revision = root.GetProperty("rev").GetInt64(),
            Namespace = ns,
            Time = new DateTimeOffset(root.GetProperty("t").GetInt64(), TimeSpan.Zero),
            Changes = changes,
            Idempotency = root.TryGetProperty("i", out var i) ? ReadIdempotency(i) : null,
            Fences = fences,
        };
    }

    public static void WriteRecord(Utf8JsonWriter w, ConcordRecord r)
    {
        w.WriteStartObject();
        w.WriteString("k", r.Key);
        if (!r.IsDeleted)
        {
            w.WritePropertyName("v");
            r.Value.WriteTo(w);
        }
        w.WriteNumber("ver", r.Version);
        w.WriteNumber("rev", r.Revision);
        w.WriteNumber("crev", r.CreateRevision);
        if (r.Writer is not null) w.WriteString("w", r.Writer);
        w.WriteNumber("t", r.CommittedAt.UtcTicks);
        if (r.ExpiresAt is { } x) w.WriteNumber("x", x.UtcTicks);
        if (r.IsDeleted) w.WriteBoolean("d", true);
        if (r.Causal is { } causal)
        {
            // Optional (added with causality): absent in older data, which reads as "no stamp".
            w.WritePropertyName("cc");
            causal.WriteTo(w);
        }
        w.WriteEndObject();
    }

    public static ConcordRecord ReadRecord(JsonElement e)
    {
        var deleted = e.TryGetProperty("d", out var d) && d.GetBoolean();
        return new ConcordRecord(
            e.GetProperty("k").GetString()!,
            deleted ? default : e.GetProperty("v").Clone(),
            e.GetProperty("ver").GetInt64(),
            e.GetProperty("rev").GetInt64(),
            e.GetProperty("crev").GetInt64(),
            e.TryGetProperty("w", out var w) ? w.GetString() : null,
            new DateTimeOffset(e.GetProperty("t").GetInt64(), TimeSpan.Zero),
            e.TryGetProperty("x", out var x) ? new DateTimeOffset(x.GetInt64(), TimeSpan.Zero) : null,
            deleted)
        {
            Causal = e.TryGetProperty("cc", out var cc) ? CausalStamp.Read(cc) : null,
        };
    }

    public static void WriteIdempotency(Utf8JsonWriter w, IdempotencyEntry idem)
    {
        w.WriteStartObject();
        w.WriteString("key", idem.Key);
        w.WriteBase64String("fp", idem.Fingerprint);
        w.WriteNumber("exp", idem.ExpiresAt.UtcTicks);
        w.WriteBoolean("ok", idem.Result.Succeeded);
        w.WriteNumber("rev", idem.Result.Revision);
        w.WriteStartArray("ops");
        foreach (var op in idem.Result.Results)
        {
            w.WriteStartObject();
            w.WriteNumber("kind", (int)op.Kind);
            w.WriteString("key", op.Key);
            if (op.Record is not null)
            {
                w.WritePropertyName("r");
                WriteRecord(w, op.Record);
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    public static IdempotencyEntry ReadIdempotency(JsonElement e)
    {
        var ops = new List<TxnOpResult>();
        foreach (var op in e.GetProperty("ops").EnumerateArray())
        {
            ops.Add(new TxnOpResult((TxnOpKind)op.GetProperty("kind").GetInt32(), op.GetProperty("key").GetString()!,
                op.TryGetProperty("r", out var r) ? ReadRecord(r) : null));
        }
        var result = new TxnResult(e.GetProperty("ok").GetBoolean(), ops, e.GetProperty("rev").GetInt64(), conflict: null);
        return new IdempotencyEntry(e.GetProperty("key").GetString()!, e.GetProperty("fp").GetBytesFromBase64(),
            new DateTimeOffset(e.GetProperty("exp").GetInt64(), TimeSpan.Zero), result);
    }
}
