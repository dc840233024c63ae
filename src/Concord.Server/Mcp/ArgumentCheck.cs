using System.Text.Json;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Concord.Server.Mcp;

/// <summary>
/// Checks tool arguments against the tool's input schema before the tool runs, so a model that omits an argument or
/// sends the wrong type gets a precise tool error ("expectedVersion must be an integer, got the string …") instead of
/// the SDK's generic "an error occurred", and nothing is executed.
/// </summary>
internal static class ArgumentCheck
{
    public static McpRequestHandler<CallToolRequestParams, CallToolResult> Filter(McpRequestHandler<CallToolRequestParams, CallToolResult> next) =>
        async (context, cancellationToken) =>
        {
            if (context.MatchedPrimitive is McpServerTool tool && Problem(tool.ProtocolTool.InputSchema, context.Params?.Arguments) is { } problem)
            {
                return new CallToolResult
                {
                    IsError = true,
                    Content = [new TextContentBlock { Text = $"Invalid arguments for '{tool.ProtocolTool.Name}': {problem}. Nothing was changed." }],
                };
            }
            return await next(context, cancellationToken).ConfigureAwait(false);
        };

    /// <summary>Null when the arguments fit the schema's required list and property types; otherwise what is wrong.</summary>
    public static string? Problem(JsonElement schema, IEnumerable<KeyValuePair<string, JsonElement>>? arguments)
    {
        var args = arguments?.ToDictionary(a => a.Key, a => a.Value, StringComparer.Ordinal) ?? [];
        var properties = schema.TryGetProperty("properties", out var p) && p.ValueKind == JsonValueKind.Object ? p : default;
        if (schema.TryGetProperty("required", out var required) && required.ValueKind == JsonValueKind.Array)
        {
            foreach (var name in required.EnumerateArray().Select(r => r.GetString()!))
            {
                if (!args.TryGetValue(name, out var value) || value.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
                    return $"'{name}' is required";
            }
        }
        if (properties.ValueKind != JsonValueKind.Object) return null;
        foreach (var (name, value) in args)
        {
            if (!properties.TryGetProperty(name, out var property))
                return $"unknown argument '{name}' (this tool takes: {string.Join(", ", properties.EnumerateObject().Select(x => x.Name))})";
            if (!property.TryGetProperty("type", out var type)) continue; // any JSON
            var allowed = type.ValueKind == JsonValueKind.Array ? type.EnumerateArray().Select(t => t.GetString()).ToList() : [type.GetString()];
            if (!allowed.Any(t => Fits(t, value)))
                return $"'{name}' must be {string.Join(" or ", allowed.Where(t => t != "null"))}, got {Describe(value)}";
        }
        return null;
    }

    private static bool Fits(string? type, JsonElement value) => type switch
    {
        "integer" => value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out _),
        "number" => value.ValueKind == JsonValueKind.Number,
        "string" => value.ValueKind == JsonValueKind.String,
        "boolean" => value.ValueKind is JsonValueKind.True or JsonValueKind.False,
        "object" => value.ValueKind == JsonValueKind.Object,
        "array" => value.ValueKind == JsonValueKind.Array,
        "null" => value.ValueKind == JsonValueKind.Null,
        _ => true,
    };

    private static string Describe(JsonElement value)
    {
        var text = value.GetRawText();
        if (text.Length > 60) text = text[..60] + "…";
        return value.ValueKind switch
        {
            JsonValueKind.String => $"the string {text}",
            JsonValueKind.Number => $"the number {text}",
            JsonValueKind.Object => "an object",
            JsonValueKind.Array => "an array",
            _ => text,
        };
    }
}
