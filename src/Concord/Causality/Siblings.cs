using System.Buffers;
using System.Text.Json;

namespace Concord;

/// <summary>Reading keys that keep concurrent writes side by side (siblings).</summary>
public static class SiblingExtensions
{
    /// <summary>Sibling accessors for a record.</summary>
    /// <param name="record">A record read from a store.</param>
    extension(ConcordRecord record)
    {
        /// <summary>
        /// True when the key holds two or more concurrent values. <see cref="ConcordRecord.Value"/> is then the envelope
        /// <c>{"$siblings":[{"dot":…,"writer":…,"value":…},…]}</c>; read them with <see cref="get_Siblings"/>, and resolve
        /// them by writing one value with the record's context (a session does that when it read the record).
        /// </summary>
        public bool HasSiblings => SiblingEnvelope.IsEnvelope(record.Value);

        /// <summary>
        /// The concurrent values in canonical dot order; a single entry (the value itself) when there are no siblings,
        /// none for a tombstone.
        /// </summary>
        public IReadOnlyList<Sibling> Siblings
        {
            get
            {
                ArgumentNullException.ThrowIfNull(record);
                if (record.IsDeleted) return [];
                if (SiblingEnvelope.IsEnvelope(record.Value)) return SiblingEnvelope.Read(record.Value);
                return [new Sibling(record.Causal?.Dot ?? default, record.Writer, record.Value)];
            }
        }
    }
}

/// <summary>The <c>$siblings</c> value envelope.</summary>
internal static class SiblingEnvelope
{
    public const string Property = "$siblings";

    public static bool IsEnvelope(JsonElement value) =>
        value.ValueKind == JsonValueKind.Object && value.TryGetProperty(Property, out var list) && list.ValueKind == JsonValueKind.Array;

    public static List<Sibling> Read(JsonElement value)
    {
        var result = new List<Sibling>();
        foreach (var item in value.GetProperty(Property).EnumerateArray())
        {
            var writer = item.TryGetProperty("writer", out var w) && w.ValueKind == JsonValueKind.String ? w.GetString() : null;
            result.Add(new Sibling(Dot.Read(item.GetProperty("dot")), writer, item.GetProperty("value").Clone()));
        }
        return result;
    }

    public static JsonElement Write(IEnumerable<Sibling> siblings)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartArray(Property);
            foreach (var s in siblings.OrderBy(s => s.Dot))
            {
                w.WriteStartObject();
                w.WritePropertyName("dot");
                s.Dot.WriteTo(w);
                if (s.Writer is not null) w.WriteString("writer", s.Writer);
                w.WritePropertyName("value");
                s.Value.WriteTo(w);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        using var doc = JsonDocument.Parse(buffer.WrittenMemory);
        return doc.RootElement.Clone();
    }
}
