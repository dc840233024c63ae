using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.AI;

namespace Concord.Agents.Tools;

/// <summary>
/// Reads a tool call's arguments strictly, collecting every problem so the model gets one clear message listing them all.
/// Values may arrive as <see cref="JsonElement"/>s (parsed from a model's JSON) or as CLR objects (built in code).
/// </summary>
internal sealed class ToolArgs
{
    private readonly Dictionary<string, JsonElement> _values = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<string> _problems = [];

    public ToolArgs(AIFunctionArguments? arguments)
    {
        if (arguments is null) return;
        foreach (var (name, value) in arguments)
        {
            _values[name] = value switch
            {
                null => default,
                JsonElement e => e,
                JsonDocument d => d.RootElement,
                _ => SafeSerialize(value),
            };
        }
    }

    public IReadOnlyList<string> Problems => _problems;

    public bool IsValid => _problems.Count == 0;

    private static JsonElement SafeSerialize(object value)
    {
        try
        {
            return JsonSerializer.SerializeToElement(value, value.GetType(), JsonDefaults.Web);
        }
        catch (NotSupportedException)
        {
            return JsonSerializer.SerializeToElement(value.ToString(), JsonDefaults.Web);
        }
    }

    private bool TryGet(string name, out JsonElement value) =>
        _values.TryGetValue(name, out value) && value.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null);

    public string? String(string name, bool required, string what)
    {
        if (!TryGet(name, out var value))
        {
            if (required) _problems.Add($"'{name}' is required: {what}");
            return null;
        }
        if (value.ValueKind != JsonValueKind.String)
        {
            _problems.Add($"'{name}' must be a string ({what}); got {Show(value)}");
            return null;
        }
        var s = value.GetString()!;
        if (required && s.Trim().Length == 0)
        {
            _problems.Add($"'{name}' must not be empty: {what}");
            return null;
        }
        return s;
    }

    /// <summary>A whole number in [min, max]; numeric strings ("3") are accepted, anything else is a problem.</summary>
    public long? Integer(string name, bool required, string what, long min = 0, long max = long.MaxValue)
    {
        if (!TryGet(name, out var value))
        {
            if (required) _problems.Add($"'{name}' is required: {what}");
            return null;
        }
        long n;
        if (value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var i)) n = i;
        else if (value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out var d) && d == Math.Floor(d) && Math.Abs(d) < 9e15) n = (long)d;
        else if (value.ValueKind == JsonValueKind.String && long.TryParse(value.GetString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var p)) n = p;
        else
        {
            _problems.Add($"'{name}' must be a whole number ({what}); got {Show(value)}");
            return null;
        }
        if (n < min || n > max)
        {
            _problems.Add($"'{name}' must be between {min} and {(max == long.MaxValue ? "any larger number" : max.ToString(CultureInfo.InvariantCulture))} ({what}); got {n}");
            return null;
        }
        return n;
    }

    public double? Number(string name, bool required, string what)
    {
        if (!TryGet(name, out var value))
        {
            if (required) _problems.Add($"'{name}' is required: {what}");
            return null;
        }
        if (value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out var d) && double.IsFinite(d)) return d;
        if (value.ValueKind == JsonValueKind.String && double.TryParse(value.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var p) && double.IsFinite(p)) return p;
        _problems.Add($"'{name}' must be a number ({what}); got {Show(value)}");
        return null;
    }

    /// <summary>Any JSON value (required means present; JSON null counts as present only when <paramref name="allowNull"/>).</summary>
    public JsonElement? Json(string name, bool required, string what, bool allowNull = false)
    {
        if (_values.TryGetValue(name, out var value) && value.ValueKind == JsonValueKind.Null && allowNull) return value;
        if (!TryGet(name, out value))
        {
            if (required) _problems.Add($"'{name}' is required: {what}");
            return null;
        }
        return value.Clone();
    }

    public JsonElement? Array(string name, bool required, string what)
    {
        var value = Json(name, required, what);
        if (value is { } v && v.ValueKind != JsonValueKind.Array)
        {
            // Models sometimes send a JSON array as a string: accept it when it parses as one.
            if (v.ValueKind == JsonValueKind.String)
            {
                try
                {
                    using var doc = JsonDocument.Parse(v.GetString()!);
                    if (doc.RootElement.ValueKind == JsonValueKind.Array) return doc.RootElement.Clone();
                }
                catch (JsonException)
                {
                }
            }
            _problems.Add($"'{name}' must be a JSON array ({what}); got {Show(v)}");
            return null;
        }
        return value;
    }

    public void Problem(string message) => _problems.Add(message);

    private static string Show(JsonElement value)
    {
        var text = value.GetRawText();
        return text.Length > 60 ? text[..60] + "…" : text;
    }
}
