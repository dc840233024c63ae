using System.Text.Json;

namespace Concord.Crdt;

/// <summary>What the engine does with a <see cref="TxnOpKind.Merge"/>: join a delta into the stored CRDT state, type-checked.</summary>
internal static class CrdtMerge
{
    /// <summary>Joins <paramref name="delta"/> into <paramref name="current"/> (null when the key is absent).</summary>
    /// <exception cref="InvalidRequestException">The delta is missing, not an envelope, or malformed.</exception>
    /// <exception cref="CrdtTypeMismatchException">The key holds a plain value or another CRDT type.</exception>
    public static JsonElement Merge(string key, JsonElement? current, JsonElement delta)
    {
        if (!CrdtState.TryGetTypeName(delta, out var type))
            throw new InvalidRequestException($"Merge into '{key}' needs a CRDT delta {{\"$crdt\":type,\"state\":{{…}}}}; got {Dot.Describe(delta)}");
        var parsed = CrdtState.Parse(delta);
        if (current is not { } value) return parsed.ToJson();
        if (!CrdtState.TryGetTypeName(value, out var currentType)) throw new CrdtTypeMismatchException(key, type, "json");
        if (currentType != type) throw new CrdtTypeMismatchException(key, type, currentType);
        return CrdtState.Parse(value).Join(parsed).ToJson();
    }

    /// <summary>A put may store a CRDT state (a reset), but only a well-formed one.</summary>
    public static void ValidatePut(JsonElement value)
    {
        if (CrdtState.TryGetTypeName(value, out _)) CrdtState.Parse(value);
    }

    /// <summary>CRDT state changes only by merge: a patch could break its invariants.</summary>
    public static void RefusePatch(string key, ConcordRecord? live)
    {
        if (live is not null && CrdtState.TryGetTypeName(live.Value, out var type)) throw new CrdtTypeMismatchException(key, "json", type);
    }
}
