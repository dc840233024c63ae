using System.Text.Json;

namespace Concord.Lab.History;

/// <summary>
/// One micro-operation of a <c>txn</c> operation, with Elle's conventions: <c>["r", key, value]</c> reads,
/// <c>["w", key, value]</c> writes (rw-register) and <c>["append", key, element]</c> appends (list-append).
/// An optional fourth element is the exact version: for a read, the version observed (0 when the key was
/// absent); for a write or append, the version it created.
/// </summary>
/// <remarks>Instances are immutable and safe to share between threads.</remarks>
public sealed class MicroOp
{
    /// <summary>Micro-op function name of a read.</summary>
    public const string ReadName = "r";

    /// <summary>Micro-op function name of a register write.</summary>
    public const string WriteName = "w";

    /// <summary>Micro-op function name of a list append.</summary>
    public const string AppendName = "append";

    private MicroOp(string f, string key, JsonElement value, long? version)
    {
        F = f;
        Key = key;
        Value = value;
        Version = version;
    }

    /// <summary><c>r</c>, <c>w</c> or <c>append</c>.</summary>
    public string F { get; }

    /// <summary>The key read or written.</summary>
    public string Key { get; }

    /// <summary>The value read (a list for list-append), the value written, or the element appended. Undefined or <c>null</c> for a read not yet completed.</summary>
    public JsonElement Value { get; }

    /// <summary>The exact version observed (reads) or created (writes, appends), when recorded.</summary>
    public long? Version { get; }

    /// <summary>True for <c>r</c>.</summary>
    public bool IsRead => F == ReadName;

    /// <summary>True for <c>w</c> and <c>append</c>.</summary>
    public bool IsWrite => F != ReadName;

    /// <summary>A read of <paramref name="key"/>; pass the observed value (and version) on completion.</summary>
    public static MicroOp Read(string key, JsonElement value = default, long? version = null) => new(ReadName, key, value, version);

    /// <summary>A register write of <paramref name="value"/> to <paramref name="key"/>, optionally with the version it created.</summary>
    public static MicroOp Write(string key, JsonElement value, long? version = null) => new(WriteName, key, value, version);

    /// <summary>An append of <paramref name="element"/> to the list at <paramref name="key"/>, optionally with the version it created.</summary>
    public static MicroOp Append(string key, JsonElement element, long? version = null) => new(AppendName, key, element, version);

    /// <summary>Encodes micro-operations as the JSON value of a <c>txn</c> operation.</summary>
    public static JsonElement ToJson(IEnumerable<MicroOp> ops)
    {
        ArgumentNullException.ThrowIfNull(ops);
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, HistoryWriter.WriterOptions))
        {
            writer.WriteStartArray();
            foreach (var op in ops)
            {
                op.WriteTo(writer);
            }

            writer.WriteEndArray();
        }

        using var document = JsonDocument.Parse(buffer.ToArray());
        return document.RootElement.Clone();
    }

    /// <summary>Decodes the JSON value of a <c>txn</c> operation.</summary>
    /// <exception cref="FormatException">The value is not a list of well-formed micro-operations.</exception>
    public static IReadOnlyList<MicroOp> ParseList(JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Array)
        {
            throw new FormatException($"a txn value must be a list of micro-ops like [\"r\",\"x\",null], not {Describe(value)}");
        }

        var result = new List<MicroOp>(value.GetArrayLength());
        var position = 0;
        foreach (var item in value.EnumerateArray())
        {
            result.Add(Parse(item, position++));
        }

        return result;
    }

    private static MicroOp Parse(JsonElement item, int position)
    {
        if (item.ValueKind != JsonValueKind.Array || item.GetArrayLength() is < 2 or > 4)
        {
            throw new FormatException($"micro-op {position} must be [f, key, value] or [f, key, value, version], not {Describe(item)}");
        }

        var f = item[0];
        if (f.ValueKind != JsonValueKind.String || f.GetString() is not (ReadName or WriteName or AppendName))
        {
            throw new FormatException($"micro-op {position} has function {f.GetRawText()}; expected \"r\", \"w\" or \"append\"");
        }

        var key = item[1];
        var keyText = key.ValueKind switch
        {
            JsonValueKind.String => key.GetString()!,
            JsonValueKind.Number => key.GetRawText(),
            _ => throw new FormatException($"micro-op {position} has key {key.GetRawText()}; keys are strings (or integers)"),
        };
        var length = item.GetArrayLength();
        var element = length > 2 ? item[2].Clone() : default;
        long? version = null;
        if (length == 4 && item[3].ValueKind != JsonValueKind.Null)
        {
            if (item[3].ValueKind != JsonValueKind.Number || !item[3].TryGetInt64(out var v) || v < 0)
            {
                throw new FormatException($"micro-op {position} has version {item[3].GetRawText()}; a version is a non-negative integer");
            }

            version = v;
        }

        var name = f.GetString()!;
        if (name != ReadName && length < 3)
        {
            throw new FormatException($"micro-op {position} ({name} {keyText}) has no value");
        }

        return new MicroOp(name, keyText, element, version);
    }

    internal void WriteTo(Utf8JsonWriter writer)
    {
        writer.WriteStartArray();
        writer.WriteStringValue(F);
        writer.WriteStringValue(Key);
        HistoryWriter.WriteValue(writer, Value);
        if (Version is { } version)
        {
            writer.WriteNumberValue(version);
        }

        writer.WriteEndArray();
    }

    private static string Describe(JsonElement element) =>
        element.ValueKind == JsonValueKind.Undefined ? "nothing" : element.GetRawText();

    /// <inheritdoc />
    public override string ToString()
    {
        var value = Value.ValueKind is JsonValueKind.Undefined ? "null" : Value.GetRawText();
        return Version is { } v ? $"[{F} {Key} {value} v{v}]" : $"[{F} {Key} {value}]";
    }
}
