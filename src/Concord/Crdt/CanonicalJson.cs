using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Concord.Crdt;

/// <summary>
/// Deterministic JSON: object members in ordinal order, numbers in one normal form (integers as integers, other
/// decimals without trailing zeros). Two values that are equal as JSON get the same text, so CRDT states (and set
/// elements) compare and serialize identically on every replica.
/// </summary>
internal static class CanonicalJson
{
    public static void Write(Utf8JsonWriter w, JsonElement e)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                w.WriteStartObject();
                var props = new List<JsonProperty>();
                foreach (var p in e.EnumerateObject()) props.Add(p);
                props.Sort(static (a, b) => string.CompareOrdinal(a.Name, b.Name));
                foreach (var p in props)
                {
                    w.WritePropertyName(p.Name);
                    Write(w, p.Value);
                }
                w.WriteEndObject();
                break;
            case JsonValueKind.Array:
                w.WriteStartArray();
                foreach (var item in e.EnumerateArray()) Write(w, item);
                w.WriteEndArray();
                break;
            case JsonValueKind.Number:
                if (e.TryGetInt64(out var l)) w.WriteNumberValue(l);
                else if (e.TryGetDecimal(out var d)) WriteDecimal(w, d);
                else w.WriteNumberValue(e.GetDouble());
                break;
            case JsonValueKind.Undefined:
                w.WriteNullValue();
                break;
            default:
                e.WriteTo(w);
                break;
        }
    }

    private static void WriteDecimal(Utf8JsonWriter w, decimal d)
    {
        // Dividing by 1.000…0 strips trailing zeros (1.50 → 1.5, 1.0 → 1), so 1.0 and 1 encode alike.
        var normal = d / 1.0000000000000000000000000000m;
        if (normal == decimal.Truncate(normal) && normal is >= long.MinValue and <= long.MaxValue) w.WriteNumberValue((long)normal);
        else w.WriteRawValue(normal.ToString(CultureInfo.InvariantCulture), skipInputValidation: true);
    }

    /// <summary>The canonical text of <paramref name="e"/>: the identity of a set element.</summary>
    public static string Text(JsonElement e)
    {
        // Parsing a large state computes this for every element: reuse one buffer and writer per thread.
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(256);
        var writer = t_writer ??= new Utf8JsonWriter(buffer);
        buffer.ResetWrittenCount();
        writer.Reset(buffer);
        Write(writer, e);
        writer.Flush();
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    [ThreadStatic] private static ArrayBufferWriter<byte>? t_buffer;
    [ThreadStatic] private static Utf8JsonWriter? t_writer;

    /// <summary>The canonical form of <paramref name="e"/> as a detached element, and its text.</summary>
    public static JsonElement Normalize(JsonElement e, out string text)
    {
        text = Text(e);
        // Stored states are already canonical: then a copy of the element will do, without re-parsing the text.
        if (e.ValueKind is not (JsonValueKind.Object or JsonValueKind.Array or JsonValueKind.Number) || text == e.GetRawText()) return e.Clone();
        using var doc = JsonDocument.Parse(text);
        return doc.RootElement.Clone();
    }

    /// <summary>The canonical form of <paramref name="e"/> as a detached element.</summary>
    public static JsonElement Normalize(JsonElement e)
    {
        var buffer = new ArrayBufferWriter<byte>(64);
        using (var w = new Utf8JsonWriter(buffer)) Write(w, e);
        using var doc = JsonDocument.Parse(buffer.WrittenMemory);
        return doc.RootElement.Clone();
    }
}
