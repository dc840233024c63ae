using System.Text.Json;

namespace Concord.Lab.History;

/// <summary>
/// Reads JSONL histories. Every problem is reported as a <see cref="HistoryFormatException"/> carrying the
/// 1-based line number and the reason.
/// </summary>
/// <remarks>
/// A single-key operation names its key either with a <c>"key"</c> field, or Jepsen's way, as a
/// <c>[key, value]</c> tuple in <c>"value"</c> (what <see cref="HistoryWriter"/> writes). Without a <c>"key"</c>
/// field, a two-element value whose first element is a string is read as such a tuple. Unknown fields are ignored.
/// Thread-safe: the methods keep no shared state.
/// </remarks>
public static class HistoryReader
{
    /// <summary>Reads a history file.</summary>
    /// <exception cref="HistoryFormatException">The file is malformed.</exception>
    public static OperationHistory ReadFile(string path)
    {
        using var reader = new StreamReader(path);
        return Read(reader);
    }

    /// <summary>Reads a history from JSONL text.</summary>
    /// <exception cref="HistoryFormatException">The text is malformed.</exception>
    public static OperationHistory Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        using var reader = new StringReader(text);
        return Read(reader);
    }

    /// <summary>Reads a history from a JSONL reader, to its end.</summary>
    /// <exception cref="HistoryFormatException">The input is malformed.</exception>
    public static OperationHistory Read(TextReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var meta = HistoryMeta.Empty;
        var operations = new List<Operation>();
        var validator = new HistoryValidator();
        var lineNumber = 0;
        var sawContent = false;
        long nextIndex = 0;
        long lastTime = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            JsonDocument document;
            try
            {
                document = JsonDocument.Parse(line);
            }
            catch (JsonException e)
            {
                throw new HistoryFormatException(lineNumber, $"invalid JSON ({e.Message})");
            }

            using (document)
            {
                var root = document.RootElement;
                if (root.ValueKind != JsonValueKind.Object)
                {
                    throw new HistoryFormatException(lineNumber, $"expected a JSON object, found {root.ValueKind.ToString().ToLowerInvariant()}");
                }

                if (root.TryGetProperty("meta", out var metaElement))
                {
                    if (sawContent)
                    {
                        throw new HistoryFormatException(lineNumber, "the meta line must be the first line of the history");
                    }

                    meta = ParseMeta(metaElement, lineNumber);
                    sawContent = true;
                    continue;
                }

                sawContent = true;
                var op = ParseOperation(root, lineNumber, nextIndex, lastTime);
                if (validator.Accept(op) is { } problem)
                {
                    throw new HistoryFormatException(lineNumber, problem);
                }

                operations.Add(op);
                nextIndex = op.Index + 1;
                lastTime = op.Time;
            }
        }

        return new OperationHistory(meta, operations, validate: false);
    }

    private static HistoryMeta ParseMeta(JsonElement element, int lineNumber)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw new HistoryFormatException(lineNumber, "\"meta\" must be an object");
        }

        string? seed = null, strategy = null, workload = null, model = null;
        var fields = new List<KeyValuePair<string, JsonElement>>();
        foreach (var property in element.EnumerateObject())
        {
            var isString = property.Value.ValueKind == JsonValueKind.String;
            switch (property.Name)
            {
                case "seed" when isString: seed = property.Value.GetString(); break;
                case "strategy" when isString: strategy = property.Value.GetString(); break;
                case "workload" when isString: workload = property.Value.GetString(); break;
                case "model" when isString: model = property.Value.GetString(); break;
                default: fields.Add(new(property.Name, property.Value.Clone())); break;
            }
        }

        return new HistoryMeta { Seed = seed, Strategy = strategy, Workload = workload, Model = model, Fields = fields };
    }

    private static Operation ParseOperation(JsonElement root, int lineNumber, long defaultIndex, long defaultTime)
    {
        var index = OptionalInt64(root, "index", lineNumber) ?? defaultIndex;
        var time = OptionalInt64(root, "time", lineNumber) ?? defaultTime;

        if (!root.TryGetProperty("process", out var processElement))
        {
            throw new HistoryFormatException(lineNumber, "missing \"process\"");
        }

        if (processElement.ValueKind != JsonValueKind.Number || !processElement.TryGetInt32(out var process))
        {
            throw new HistoryFormatException(lineNumber, $"\"process\" must be an integer, not {processElement.GetRawText()}");
        }

        var typeText = RequiredString(root, "type", lineNumber);
        if (!OperationTypes.TryParse(typeText, out var type))
        {
            throw new HistoryFormatException(lineNumber, $"\"type\" must be invoke, ok, fail or info, not \"{typeText}\"");
        }

        var f = RequiredString(root, "f", lineNumber);
        var agent = OptionalString(root, "agent", lineNumber);
        var value = root.TryGetProperty("value", out var valueElement) ? valueElement.Clone() : default;
        string? key;
        if (root.TryGetProperty("key", out var keyElement))
        {
            key = keyElement.ValueKind switch
            {
                JsonValueKind.Null => null,
                JsonValueKind.String => keyElement.GetString(),
                _ => throw new HistoryFormatException(lineNumber, $"\"key\" must be a string, not {keyElement.GetRawText()}"),
            };
        }
        else if (Functions.IsSingleKey(f) && IsKeyTuple(value))
        {
            key = value[0].GetString();
            value = value[1].Clone();
        }
        else
        {
            key = null;
        }

        string? error = null;
        if (root.TryGetProperty("error", out var errorElement) && errorElement.ValueKind != JsonValueKind.Null)
        {
            error = errorElement.ValueKind == JsonValueKind.String ? errorElement.GetString() : errorElement.GetRawText();
        }

        return new Operation
        {
            Index = index,
            Time = time,
            Process = process,
            Type = type,
            F = f,
            Agent = agent,
            Key = key,
            Value = value,
            Version = OptionalInt64(root, "version", lineNumber),
            Revision = OptionalInt64(root, "revision", lineNumber),
            Error = error,
            Clock = OptionalClock(root, lineNumber),
        };
    }

    private static VersionVector? OptionalClock(JsonElement root, int lineNumber)
    {
        if (!root.TryGetProperty("clock", out var element) || element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        try
        {
            return VersionVector.FromJson(element);
        }
        catch (InvalidRequestException e)
        {
            throw new HistoryFormatException(lineNumber, $"\"clock\" must be a version vector: {e.Message}");
        }
    }

    internal static bool IsKeyTuple(JsonElement value) =>
        value.ValueKind == JsonValueKind.Array && value.GetArrayLength() == 2 && value[0].ValueKind == JsonValueKind.String;

    private static string RequiredString(JsonElement root, string name, int lineNumber)
    {
        if (!root.TryGetProperty(name, out var element))
        {
            throw new HistoryFormatException(lineNumber, $"missing \"{name}\"");
        }

        return element.ValueKind == JsonValueKind.String
            ? element.GetString()!
            : throw new HistoryFormatException(lineNumber, $"\"{name}\" must be a string, not {element.GetRawText()}");
    }

    private static string? OptionalString(JsonElement root, string name, int lineNumber)
    {
        if (!root.TryGetProperty(name, out var element) || element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return element.ValueKind == JsonValueKind.String
            ? element.GetString()
            : throw new HistoryFormatException(lineNumber, $"\"{name}\" must be a string, not {element.GetRawText()}");
    }

    private static long? OptionalInt64(JsonElement root, string name, int lineNumber)
    {
        if (!root.TryGetProperty(name, out var element) || element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return element.ValueKind == JsonValueKind.Number && element.TryGetInt64(out var value)
            ? value
            : throw new HistoryFormatException(lineNumber, $"\"{name}\" must be an integer, not {element.GetRawText()}");
    }
}
