using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Concord.Lab.History;

/// <summary>
/// Writes histories as JSONL in the canonical form: the meta line first, then one event per line with fields in
/// the order <c>index, time, process, agent, type, f, value, version, revision, error</c>; a single-key
/// operation's value is Jepsen's <c>[key, value]</c> tuple.
/// </summary>
/// <remarks>The canonical form is frozen by golden tests: change it only with a format version bump. Thread-safe.</remarks>
public static class HistoryWriter
{
    internal static readonly JsonWriterOptions WriterOptions = new()
    {
        // Keys and agent names stay readable ("acct/42", not "acct\u002F42"); the output is still valid JSON.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Indented = false,
    };

    /// <summary>Writes <paramref name="history"/> to a file (UTF-8, LF line endings).</summary>
    public static void WriteFile(OperationHistory history, string path)
    {
        using var writer = new StreamWriter(path, append: false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        Write(history, writer);
    }

    /// <summary>Writes <paramref name="history"/> as JSONL. The meta line is written unless it is empty.</summary>
    public static void Write(OperationHistory history, TextWriter writer)
    {
        ArgumentNullException.ThrowIfNull(history);
        ArgumentNullException.ThrowIfNull(writer);
        var buffer = new ArrayBufferWriter<byte>(256);
        using var json = new Utf8JsonWriter(buffer, WriterOptions);
        if (!history.Meta.IsEmpty)
        {
            WriteMeta(json, history.Meta);
            Flush(json, buffer, writer);
        }

        foreach (var op in history.Operations)
        {
            WriteOperation(json, op);
            Flush(json, buffer, writer);
        }
    }

    /// <summary>Formats <paramref name="history"/> as a JSONL string.</summary>
    public static string Format(OperationHistory history)
    {
        using var writer = new StringWriter();
        writer.NewLine = "\n";
        Write(history, writer);
        return writer.ToString();
    }

    /// <summary>Formats one event as a single JSON line (no newline).</summary>
    public static string FormatOperation(Operation operation)
    {
        ArgumentNullException.ThrowIfNull(operation);
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var json = new Utf8JsonWriter(buffer, WriterOptions))
        {
            WriteOperation(json, operation);
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void Flush(Utf8JsonWriter json, ArrayBufferWriter<byte> buffer, TextWriter writer)
    {
        json.Flush();
        writer.Write(Encoding.UTF8.GetString(buffer.WrittenSpan));
        writer.Write('\n');
        buffer.Clear();
        json.Reset();
    }

    private static void WriteMeta(Utf8JsonWriter json, HistoryMeta meta)
    {
        json.WriteStartObject();
        json.WriteStartObject("meta");
        WriteOptional(json, "seed", meta.Seed);
        WriteOptional(json, "strategy", meta.Strategy);
        WriteOptional(json, "workload", meta.Workload);
        WriteOptional(json, "model", meta.Model);
        foreach (var (name, value) in meta.Fields)
        {
            json.WritePropertyName(name);
            WriteValue(json, value);
        }

        json.WriteEndObject();
        json.WriteEndObject();
    }

    private static void WriteOperation(Utf8JsonWriter json, Operation op)
    {
        json.WriteStartObject();
        json.WriteNumber("index", op.Index);
        json.WriteNumber("time", op.Time);
        json.WriteNumber("process", op.Process);
        WriteOptional(json, "agent", op.Agent);
        json.WriteString("type", op.Type.ToWireName());
        json.WriteString("f", op.F);
        if (op.Key is { } key && Functions.IsSingleKey(op.F))
        {
            json.WriteStartArray("value");
            json.WriteStringValue(key);
            WriteValue(json, op.Value);
            json.WriteEndArray();
        }
        else
        {
            if (op.Key is not null)
            {
                json.WriteString("key", op.Key);
            }
            else if (Functions.IsSingleKey(op.F) && HistoryReader.IsKeyTuple(op.Value))
            {
                // Without this, the reader would take the value for a [key, value] tuple.
                json.WriteNull("key");
            }

            json.WritePropertyName("value");
            WriteValue(json, op.Value);
        }

        if (op.Version is { } version)
        {
            json.WriteNumber("version", version);
        }

        if (op.Revision is { } revision)
        {
            json.WriteNumber("revision", revision);
        }

        WriteOptional(json, "error", op.Error);
        if (op.Clock is { } clock)
        {
            json.WritePropertyName("clock");
            clock.WriteTo(json);
        }

        json.WriteEndObject();
    }

    internal static void WriteValue(Utf8JsonWriter json, JsonElement value)
    {
        if (value.ValueKind == JsonValueKind.Undefined)
        {
            json.WriteNullValue();
        }
        else
        {
            value.WriteTo(json);
        }
    }

    private static void WriteOptional(Utf8JsonWriter json, string name, string? value)
    {
        if (value is not null)
        {
            json.WriteString(name, value);
        }
    }
}
