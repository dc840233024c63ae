using System.Text.Json;
using System.Text.Json.Nodes;

namespace Concord.Agents.Tools;

/// <summary>The JSON shapes tools answer with: <c>{"ok":true,…}</c>, a conflict, or an error, always with words a model can act on.</summary>
internal static class ToolResult
{
    public static JsonElement Ok(JsonObject body) => Build(true, body);

    public static JsonElement NotOk(string conflict, JsonObject body)
    {
        body["conflict"] = conflict;
        return Build(false, body);
    }

    public static JsonElement Error(string code, string message, string? hint = null, bool transient = false)
    {
        var body = new JsonObject { ["error"] = code, ["message"] = message };
        if (hint is not null) body["hint"] = hint;
        if (transient) body["transient"] = true;
        return Build(false, body);
    }

    public static JsonElement InvalidArguments(ToolArgs args, string hint) =>
        Error("invalid_arguments", "Invalid arguments: " + string.Join("; ", args.Problems) + ".", hint);

    public static JsonElement Written(WriteResult result) =>
        Ok(new JsonObject { ["key"] = result.Key, ["version"] = result.Version, ["revision"] = result.Revision });

    /// <summary>A refused write: the current record (so the model can redo its change without another read) and what to do.</summary>
    public static JsonElement Conflict(WriteResult result, long? expected, string retryTool, string? lockName)
    {
        var current = result.Record is { IsDeleted: false } r ? r : null;
        var body = new JsonObject
        {
            ["key"] = result.Key,
            ["expectedVersion"] = expected,
            ["currentVersion"] = current?.Version ?? 0,
            ["currentValue"] = current is null ? null : JsonNode.Parse(current.Value.GetRawText()),
            ["currentWriter"] = current?.Writer,
            ["message"] = result.Message,
        };
        body["hint"] = result.Conflict switch
        {
            ConflictKind.VersionMismatch when current is null =>
                $"Not written: the key does not exist (any more), so it is not at version {expected}. To create it, call {retryTool} with expectedVersion 0.",
            ConflictKind.VersionMismatch =>
                $"Not written: the record changed after you read it (you expected version {expected}; it is now version {current.Version}, written by {current.Writer ?? "another agent"}). " +
                $"Apply your change again to currentValue and call {retryTool} with expectedVersion {current.Version}.",
            ConflictKind.StaleFence =>
                $"Not written: your lease on lock '{lockName}' was lost (it expired and someone else may hold the lock now). Acquire the lock again, read the key again, then write.",
            ConflictKind.TestFailed => "Not applied: a test operation did not hold. Read the key again and rebuild the patch from what it holds now.",
            ConflictKind.NotFound => $"Not applied: the key does not exist. Create it with {retryTool} and expectedVersion 0.",
            ConflictKind.AlreadyExists => "Not written: the key already exists. Read it and write with its version.",
            _ => "Not written. Read the key again and retry with the version you read.",
        };
        return NotOk(Snake(result.Conflict), body);
    }

    private static JsonElement Build(bool ok, JsonObject body)
    {
        var result = new JsonObject { ["ok"] = ok };
        foreach (var (name, value) in body.ToList())
        {
            if (value is null && name is "hint" or "currentWriter") continue;
            body.Remove(name);
            result[name] = value;
        }
        return JsonSerializer.SerializeToElement(result);
    }

    private static string Snake(ConflictKind kind) => kind switch
    {
        ConflictKind.VersionMismatch => "version_mismatch",
        ConflictKind.AlreadyExists => "already_exists",
        ConflictKind.NotFound => "not_found",
        ConflictKind.StaleFence => "stale_fence",
        ConflictKind.TestFailed => "test_failed",
        ConflictKind.BlindWriteRefused => "blind_write_refused",
        ConflictKind.ReadSetChanged => "read_set_changed",
        _ => kind.ToString(),
    };
}
