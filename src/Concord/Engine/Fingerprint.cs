using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;

namespace Concord.Engine;

/// <summary>SHA-256 of a canonical encoding of a mutation, so a reused idempotency key with another payload is caught.</summary>
internal static class Fingerprint
{
    public static byte[] Compute(string ns, TxnRequest request, WriteOptions options)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartArray();
            w.WriteStringValue(ns);
            if (options.LogicalOperation is { } logical)
            {
                // One logical operation (e.g. UpdateAsync) may send different payloads across attempts.
                w.WriteStringValue("logical");
                w.WriteStringValue(logical);
            }
            else
            {
                w.WriteStringValue(options.Ttl?.Ticks.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "");
                w.WriteStartArray();
                foreach (var c in request.Compares)
                {
                    w.WriteStringValue(c.Key);
                    w.WriteNumberValue((int)c.Target);
                    w.WriteNumberValue((int)c.Op);
                    w.WriteNumberValue(c.Number);
                    WriteElement(w, c.Value);
                }
                w.WriteEndArray();
                WriteOps(w, request.Then);
                WriteOps(w, request.Else);
            }
            w.WriteEndArray();
        }
        return SHA256.HashData(buffer.WrittenSpan);
    }

    private static void WriteOps(Utf8JsonWriter w, IReadOnlyList<TxnOp> ops)
    {
        w.WriteStartArray();
        foreach (var op in ops)
        {
            w.WriteNumberValue((int)op.Kind);
            w.WriteStringValue(op.Key);
            WriteElement(w, op.Value);
            w.WriteStringValue(op.Patch?.ToString() ?? "");
            w.WriteStringValue(op.Expect.ToString());
            w.WriteNumberValue(op.Ttl?.Ticks ?? -1);
            // Written only when set, so fingerprints of requests without it are unchanged. The causal context is
            // deliberately not part of the fingerprint: sessions refresh it between attempts of one operation.
            if (op.AllowSiblings) w.WriteStringValue("siblings");
        }
        w.WriteEndArray();
    }

    private static void WriteElement(Utf8JsonWriter w, JsonElement e)
    {
        if (e.ValueKind == JsonValueKind.Undefined) w.WriteNullValue();
        else e.WriteTo(w);
    }
}
