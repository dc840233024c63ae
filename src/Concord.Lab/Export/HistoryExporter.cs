using System.Globalization;
using System.Text;
using System.Text.Json;
using Concord.Lab.History;

namespace Concord.Lab.Export;

/// <summary>Formats a history can be exported to.</summary>
public enum ExportFormat
{
    /// <summary>Knossos EDN: one operation map per line; keyed values become Jepsen <c>independent</c> tuples <c>[key value]</c>.</summary>
    Knossos,

    /// <summary>Elle EDN: like Knossos, with <c>txn</c> micro-ops as <c>[:r "x" [1 2]]</c>, <c>[:w "y" 5]</c>, <c>[:append "x" 3]</c> (versions dropped).</summary>
    Elle,

    /// <summary>
    /// Porcupine-style JSONL: one completed-or-pending operation per line,
    /// <c>{"clientId":3,"key":"k","input":{"f":…,"value":…},"call":C,"output":{"type":…,"value":…},"return":R}</c>.
    /// <c>call</c> and <c>return</c> are history indices, which order events exactly; an operation of unknown outcome
    /// returns at <see cref="long.MaxValue"/>; failed operations are left out (they did not happen).
    /// </summary>
    Porcupine,
}

/// <summary>Converts histories to the formats of Jepsen's Knossos and Elle and of Porcupine.</summary>
/// <remarks>Thread-safe: the methods keep no shared state.</remarks>
public static class HistoryExporter
{
    /// <summary>Parses <c>knossos</c>, <c>elle</c> or <c>porcupine</c> (case-insensitive).</summary>
    public static bool TryParseFormat(string? name, out ExportFormat format)
    {
        switch (name?.Trim().ToLowerInvariant())
        {
            case "knossos": format = ExportFormat.Knossos; return true;
            case "elle": format = ExportFormat.Elle; return true;
            case "porcupine": format = ExportFormat.Porcupine; return true;
            default: format = default; return false;
        }
    }

    /// <summary>Writes <paramref name="history"/> in <paramref name="format"/>.</summary>
    public static void Export(OperationHistory history, ExportFormat format, TextWriter writer)
    {
        ArgumentNullException.ThrowIfNull(history);
        ArgumentNullException.ThrowIfNull(writer);
        switch (format)
        {
            case ExportFormat.Knossos:
            case ExportFormat.Elle:
                foreach (var op in history.Operations)
                {
                    writer.Write(ToEdn(op, format));
                    writer.Write('\n');
                }

                break;
            case ExportFormat.Porcupine:
                WritePorcupine(history, writer);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(format), format, "Unknown export format.");
        }
    }

    /// <summary>Writes <paramref name="history"/> to a file in <paramref name="format"/> (UTF-8, LF line endings).</summary>
    public static void ExportFile(OperationHistory history, ExportFormat format, string path)
    {
        using var writer = new StreamWriter(path, append: false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        Export(history, format, writer);
    }

    private static string ToEdn(Operation op, ExportFormat format)
    {
        var text = new StringBuilder("{");
        text.Append(CultureInfo.InvariantCulture, $":index {op.Index}, :time {op.Time}, :process {op.Process}, :type :{op.Type.ToWireName()}, :f :{op.F}, :value ");
        if (op.F == Functions.Txn && format == ExportFormat.Elle && !op.HasNullValue && op.Value.ValueKind == JsonValueKind.Array)
        {
            text.Append('[');
            var first = true;
            foreach (var micro in MicroOp.ParseList(op.Value))
            {
                text.Append(first ? "[:" : " [:").Append(micro.F).Append(' ').Append(EdnString(micro.Key)).Append(' ');
                AppendEdn(text, micro.Value);
                text.Append(']');
                first = false;
            }

            text.Append(']');
        }
        else if (op.Key is { } key && Functions.IsSingleKey(op.F))
        {
            text.Append('[').Append(EdnString(key)).Append(' ');
            AppendEdn(text, op.Value);
            text.Append(']');
        }
        else
        {
            AppendEdn(text, op.Value);
        }

        if (op.Agent is not null)
        {
            text.Append(", :agent ").Append(EdnString(op.Agent));
        }

        if (op.Version is { } version)
        {
            text.Append(CultureInfo.InvariantCulture, $", :version {version}");
        }

        if (op.Revision is { } revision)
        {
            text.Append(CultureInfo.InvariantCulture, $", :revision {revision}");
        }

        if (op.Error is not null)
        {
            text.Append(", :error ").Append(EdnString(op.Error));
        }

        return text.Append('}').ToString();
    }

    private static void AppendEdn(StringBuilder text, JsonElement value)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Undefined:
            case JsonValueKind.Null:
                text.Append("nil");
                break;
            case JsonValueKind.True:
                text.Append("true");
                break;
            case JsonValueKind.False:
                text.Append("false");
                break;
            case JsonValueKind.Number:
                text.Append(value.GetRawText());
                break;
            case JsonValueKind.String:
                text.Append(EdnString(value.GetString()!));
                break;
            case JsonValueKind.Array:
                text.Append('[');
                var first = true;
                foreach (var item in value.EnumerateArray())
                {
                    if (!first)
                    {
                        text.Append(' ');
                    }

                    AppendEdn(text, item);
                    first = false;
                }

                text.Append(']');
                break;
            case JsonValueKind.Object:
                text.Append('{');
                var firstProperty = true;
                foreach (var property in value.EnumerateObject())
                {
                    if (!firstProperty)
                    {
                        text.Append(", ");
                    }

                    text.Append(EdnString(property.Name)).Append(' ');
                    AppendEdn(text, property.Value);
                    firstProperty = false;
                }

                text.Append('}');
                break;
        }
    }

    private static string EdnString(string value)
    {
        var text = new StringBuilder(value.Length + 2).Append('"');
        foreach (var c in value)
        {
            text.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                < ' ' => string.Create(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}"),
                _ => c.ToString(),
            });
        }

        return text.Append('"').ToString();
    }

    private static void WritePorcupine(OperationHistory history, TextWriter writer)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using var json = new Utf8JsonWriter(buffer, HistoryWriter.WriterOptions);
        foreach (var pair in history.Pairs.Where(p => p.Outcome != OperationType.Fail))
        {
            json.WriteStartObject();
            json.WriteNumber("clientId", pair.Process);
            if (pair.Key is { } key)
            {
                json.WriteString("key", key);
            }

            json.WriteStartObject("input");
            json.WriteString("f", pair.F);
            json.WritePropertyName("value");
            HistoryWriter.WriteValue(json, pair.Invoke.Value);
            json.WriteEndObject();
            json.WriteNumber("call", pair.Invoke.Index);
            json.WriteStartObject("output");
            json.WriteString("type", pair.Outcome.ToWireName());
            json.WritePropertyName("value");
            HistoryWriter.WriteValue(json, pair.Outcome == OperationType.Ok ? pair.Completion!.Value : default);
            if (pair.Completion?.Version is { } version)
            {
                json.WriteNumber("version", version);
            }

            json.WriteEndObject();
            json.WriteNumber("return", pair.Outcome == OperationType.Ok ? pair.Completion!.Index : long.MaxValue);
            json.WriteEndObject();
            json.Flush();
            writer.Write(Encoding.UTF8.GetString(buffer.WrittenSpan));
            writer.Write('\n');
            buffer.Clear();
            json.Reset();
        }
    }
}
