using System.Text.Json;
using System.Text.Json.Nodes;

namespace Concord;

/// <summary>Patch operation names: RFC 6902 plus Concord's atomic field operations.</summary>
public enum PatchOp
{
    /// <summary>RFC 6902 add.</summary>
    Add,
    /// <summary>RFC 6902 remove.</summary>
    Remove,
    /// <summary>RFC 6902 replace.</summary>
    Replace,
    /// <summary>RFC 6902 move.</summary>
    Move,
    /// <summary>RFC 6902 copy.</summary>
    Copy,
    /// <summary>RFC 6902 test; a failure is a <see cref="ConflictKind.TestFailed"/> conflict.</summary>
    Test,
    /// <summary>Adds a number (default 1) to the number at the path; a missing target counts as 0.</summary>
    Increment,
    /// <summary>Appends the value as one element to the array at the path; a missing target starts as [].</summary>
    Append,
    /// <summary>Appends the value unless an equal element is present.</summary>
    AddToSet,
    /// <summary>Removes every element equal to the value.</summary>
    RemoveFromSet,
    /// <summary>Sets the target to the larger of itself and the value; a missing target takes the value.</summary>
    Max,
    /// <summary>Sets the target to the smaller of itself and the value; a missing target takes the value.</summary>
    Min,
}

/// <summary>One patch operation.</summary>
/// <param name="Op">The operation.</param>
/// <param name="Path">JSON Pointer (RFC 6901) of the target.</param>
/// <param name="Value">Operand, for operations that take one.</param>
/// <param name="From">Source pointer for move and copy.</param>
public sealed record PatchOperation(PatchOp Op, string Path, JsonNode? Value = null, string? From = null);

/// <summary>
/// An atomic patch: RFC 6902 JSON Patch plus <c>increment</c>, <c>append</c>, <c>addToSet</c>,
/// <c>removeFromSet</c>, <c>max</c>, <c>min</c>. Applied all-or-nothing. A patch to an absent key
/// applies to an empty object <c>{}</c>. The extension operations create missing parent objects;
/// the RFC operations follow RFC 6902 exactly.
/// </summary>
public sealed class JsonPatch
{
    /// <summary>Creates a patch from operations.</summary>
    public JsonPatch(IReadOnlyList<PatchOperation> operations)
    {
        ArgumentNullException.ThrowIfNull(operations);
        if (operations.Count == 0) throw new InvalidPatchException("A patch needs at least one operation");
        Operations = operations;
    }

    /// <summary>The operations, applied in order.</summary>
    public IReadOnlyList<PatchOperation> Operations { get; }

    /// <summary>Starts a fluent patch.</summary>
    public static JsonPatchBuilder Create() => new();

    /// <summary>Parses the JSON array form (<c>[{"op":"increment","path":"/n","value":1}]</c>).</summary>
    /// <exception cref="InvalidPatchException">The document is not a valid patch.</exception>
    public static JsonPatch Parse(string json)
    {
        JsonNode? node;
        try { node = JsonNode.Parse(json); }
        catch (JsonException e) { throw new InvalidPatchException($"Patch is not valid JSON: {e.Message}"); }
        return FromJson(node);
    }

    /// <summary>Reads the JSON array form.</summary>
    /// <exception cref="InvalidPatchException">The document is not a valid patch.</exception>
    public static JsonPatch FromJson(JsonNode? node)
    {
        if (node is not JsonArray array) throw new InvalidPatchException("A patch must be a JSON array of operations");
        var ops = new List<PatchOperation>(array.Count);
        for (var i = 0; i < array.Count; i++)
        {
            if (array[i] is not JsonObject o) throw new InvalidPatchException("operation must be an object", i);
            var opName = o["op"] is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw new InvalidPatchException("missing 'op'", i);
            if (!TryParseOp(opName, out var op)) throw new InvalidPatchException($"unknown op '{opName}'", i);
            var path = o["path"] is JsonValue p && p.TryGetValue<string>(out var ps) ? ps : throw new InvalidPatchException("missing 'path'", i);
            string? from = null;
            if (op is PatchOp.Move or PatchOp.Copy)
                from = o["from"] is JsonValue f && f.TryGetValue<string>(out var fs) ? fs : throw new InvalidPatchException($"'{opName}' needs 'from'", i);
            var hasValue = o.ContainsKey("value");
            if (!hasValue && op is not (PatchOp.Remove or PatchOp.Move or PatchOp.Copy or PatchOp.Increment))
                throw new InvalidPatchException($"'{opName}' needs 'value'", i);
            ops.Add(new PatchOperation(op, path, hasValue ? o["value"]?.DeepClone() : null, from));
        }
        return new JsonPatch(ops);
    }

    /// <summary>The JSON array form.</summary>
    public JsonArray ToJson()
    {
        var array = new JsonArray();
        foreach (var op in Operations)
        {
            var o = new JsonObject { ["op"] = OpName(op.Op), ["path"] = op.Path };
            if (op.From is not null) o["from"] = op.From;
            if (op.Value is not null || op.Op is PatchOp.Add or PatchOp.Replace or PatchOp.Test) o["value"] = op.Value?.DeepClone();
            array.Add(o);
        }
        return array;
    }

    /// <inheritdoc />
    public override string ToString() => ToJson().ToJsonString();

    /// <summary>The wire name of an operation (camelCase).</summary>
    public static string OpName(PatchOp op) => op switch
    {
        PatchOp.AddToSet => "addToSet",
        PatchOp.RemoveFromSet => "removeFromSet",
        _ => op.ToString().ToLowerInvariant(),
    };

    private static bool TryParseOp(string name, out PatchOp op)
    {
        foreach (var candidate in Enum.GetValues<PatchOp>())
        {
            if (string.Equals(OpName(candidate), name, StringComparison.Ordinal)) { op = candidate; return true; }
        }
        op = default;
        return false;
    }
}

/// <summary>Fluent builder for <see cref="JsonPatch"/>.</summary>
public sealed class JsonPatchBuilder
{
    private readonly List<PatchOperation> _ops = [];

    /// <summary>RFC 6902 add.</summary>
    public JsonPatchBuilder Add(string path, JsonNode? value) => Push(new(PatchOp.Add, path, value));
    /// <summary>RFC 6902 remove.</summary>
    public JsonPatchBuilder Remove(string path) => Push(new(PatchOp.Remove, path));
    /// <summary>RFC 6902 replace.</summary>
    public JsonPatchBuilder Replace(string path, JsonNode? value) => Push(new(PatchOp.Replace, path, value));
    /// <summary>RFC 6902 move.</summary>
    public JsonPatchBuilder Move(string from, string path) => Push(new(PatchOp.Move, path, null, from));
    /// <summary>RFC 6902 copy.</summary>
    public JsonPatchBuilder Copy(string from, string path) => Push(new(PatchOp.Copy, path, null, from));
    /// <summary>RFC 6902 test.</summary>
    public JsonPatchBuilder Test(string path, JsonNode? value) => Push(new(PatchOp.Test, path, value));
    /// <summary>Atomic increment by <paramref name="by"/>.</summary>
    public JsonPatchBuilder Increment(string path, double by = 1) => Push(new(PatchOp.Increment, path, NumberNode(by)));
    /// <summary>Atomic append of one element.</summary>
    public JsonPatchBuilder Append(string path, JsonNode? value) => Push(new(PatchOp.Append, path, value));
    /// <summary>Atomic add-to-set.</summary>
    public JsonPatchBuilder AddToSet(string path, JsonNode? value) => Push(new(PatchOp.AddToSet, path, value));
    /// <summary>Atomic remove-from-set.</summary>
    public JsonPatchBuilder RemoveFromSet(string path, JsonNode? value) => Push(new(PatchOp.RemoveFromSet, path, value));
    /// <summary>Atomic max.</summary>
    public JsonPatchBuilder Max(string path, JsonNode? value) => Push(new(PatchOp.Max, path, value));
    /// <summary>Atomic min.</summary>
    public JsonPatchBuilder Min(string path, JsonNode? value) => Push(new(PatchOp.Min, path, value));

    /// <summary>Builds the patch.</summary>
    public JsonPatch Build() => new(_ops.ToArray());

    /// <summary>Builds the patch.</summary>
    public static implicit operator JsonPatch(JsonPatchBuilder builder) => builder.Build();

    private JsonPatchBuilder Push(PatchOperation op)
    {
        _ops.Add(op);
        return this;
    }

    private static JsonNode NumberNode(double by) =>
        by == Math.Floor(by) && Math.Abs(by) < 9e15 ? JsonValue.Create((long)by) : JsonValue.Create(by);
}

internal static class JsonElementExtensions
{
    public static JsonNode? ToNode(this JsonElement e) => e.ValueKind == JsonValueKind.Undefined ? null : JsonNode.Parse(e.GetRawText());
}
