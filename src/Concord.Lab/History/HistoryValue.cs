using System.Text.Json;

namespace Concord.Lab.History;

/// <summary>Builds the <see cref="JsonElement"/> values that operations carry.</summary>
public static class HistoryValue
{
    /// <summary>JSON <c>null</c>.</summary>
    public static JsonElement Null { get; } = Parse("null");

    /// <summary>Serializes <paramref name="value"/> with web defaults (camelCase).</summary>
    public static JsonElement Of<T>(T value) => JsonSerializer.SerializeToElement(value, JsonDefaults.Web);

    /// <summary>A JSON array of the given elements.</summary>
    public static JsonElement List(params long[] elements) => JsonSerializer.SerializeToElement(elements);

    /// <summary>Parses JSON text into a detached element.</summary>
    public static JsonElement Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    /// <summary>Canonical compact text of a value (<c>null</c> when undefined); equal values of the same shape give equal text.</summary>
    public static string Canonical(JsonElement value) =>
        value.ValueKind == JsonValueKind.Undefined ? "null" : value.GetRawText();
}
