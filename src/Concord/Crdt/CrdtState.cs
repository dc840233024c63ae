using System.Buffers;
using System.Text;
using System.Text.Json;

namespace Concord.Crdt;

/// <summary>
/// Base of Concord's delta-state CRDTs: <see cref="PNCounter"/>, <see cref="LwwRegister"/>, <see cref="MVRegister"/>,
/// <see cref="ORSet"/>, <see cref="ORMap"/>. A state is a join-semilattice: <see cref="Join"/> is commutative, associative
/// and idempotent, so replicas that have seen the same deltas, in any order and any number of times, are equal.
/// </summary>
/// <remarks>
/// <para>
/// States are immutable and thread-safe. Mutators (<c>Increment</c>, <c>Add</c>, <c>Assign</c>, …) do not change the
/// state: they return a small <em>delta</em>, itself a state of the same type. <c>state.Merge(delta)</c> is the mutated
/// state; the delta is what travels (to the store with <c>ConcordSession.MergeAsync</c>, or to another replica).
/// Deltas join with each other into batches.
/// </para>
/// <para>
/// Stored values use a typed JSON envelope so a key's type is visible: <c>{"$crdt":"orset","state":{…}}</c>.
/// The encoding of each type is documented in docs/crdt.md and is stable; it is canonical (sorted members and dots),
/// so equal states have equal text.
/// </para>
/// </remarks>
public abstract class CrdtState : IEquatable<CrdtState>
{
    /// <summary>The <c>$crdt</c> member of the envelope.</summary>
    public const string TypeProperty = "$crdt";

    private string? _canonical;

    private protected CrdtState() { }

    /// <summary>The type name in the envelope: <c>pncounter</c>, <c>lww</c>, <c>mvreg</c>, <c>orset</c> or <c>ormap</c>.</summary>
    public abstract string TypeName { get; }

    /// <summary>True for the bottom state (nothing has happened).</summary>
    public abstract bool IsEmpty { get; }

    /// <summary>The value a reader usually wants, as plain JSON: a number, the register value, an array of values or elements, an object.</summary>
    public abstract JsonElement ToPlainJson();

    private protected abstract void WriteState(Utf8JsonWriter writer);

    private protected abstract CrdtState JoinCore(CrdtState other);

    /// <summary>Joins two states of the same type.</summary>
    /// <exception cref="CrdtTypeMismatchException">The states have different types.</exception>
    public CrdtState Join(CrdtState other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.TypeName != TypeName) throw new CrdtTypeMismatchException(null, TypeName, other.TypeName);
        return JoinCore(other);
    }

    /// <summary>Writes the envelope <c>{"$crdt":type,"state":{…}}</c>.</summary>
    public void WriteTo(Utf8JsonWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStartObject();
        writer.WriteString(TypeProperty, TypeName);
        writer.WritePropertyName("state");
        WriteState(writer);
        writer.WriteEndObject();
    }

    internal void WriteStateTo(Utf8JsonWriter writer) => WriteState(writer);

    /// <summary>The envelope as a detached JSON element (what the store keeps).</summary>
    public JsonElement ToJson()
    {
        if (_canonical is { } cached) return CrdtJson.Detach(Encoding.UTF8.GetBytes(cached));
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer)) WriteTo(w);
        return CrdtJson.Detach(buffer.WrittenMemory);
    }

    /// <summary>The envelope as canonical JSON text.</summary>
    public string ToJsonString()
    {
        if (_canonical is { } cached) return cached;
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var w = new Utf8JsonWriter(buffer)) WriteTo(w);
        return _canonical = Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>True when <paramref name="value"/> is a CRDT envelope (an object with a string <c>$crdt</c> member).</summary>
    public static bool IsCrdt(JsonElement value) => TryGetTypeName(value, out _);

    /// <summary>Reads the <c>$crdt</c> type name of an envelope.</summary>
    public static bool TryGetTypeName(JsonElement value, out string typeName)
    {
        typeName = "";
        if (value.ValueKind != JsonValueKind.Object || !value.TryGetProperty(TypeProperty, out var t) || t.ValueKind != JsonValueKind.String) return false;
        typeName = t.GetString()!;
        return true;
    }

    /// <summary>Parses an envelope into the matching CRDT type.</summary>
    /// <exception cref="InvalidRequestException">Not an envelope, an unknown type, or a malformed state.</exception>
    public static CrdtState Parse(JsonElement envelope)
    {
        if (!TryGetTypeName(envelope, out var type))
            throw new InvalidRequestException($"A CRDT value is {{\"$crdt\":type,\"state\":{{…}}}}; got {Dot.Describe(envelope)}");
        if (!envelope.TryGetProperty("state", out var state))
            throw new InvalidRequestException($"The {type} CRDT envelope has no \"state\"");
        return ParseState(type, state);
    }

    /// <summary>Parses an envelope that must hold a <typeparamref name="T"/>.</summary>
    /// <exception cref="CrdtTypeMismatchException">The envelope holds another type (or is not a CRDT).</exception>
    /// <exception cref="InvalidRequestException">Malformed state.</exception>
    public static T Parse<T>(JsonElement envelope) where T : CrdtState, ICrdt<T>
    {
        if (!TryGetTypeName(envelope, out var type)) throw new CrdtTypeMismatchException(null, T.CrdtType, "json");
        if (type != T.CrdtType) throw new CrdtTypeMismatchException(null, T.CrdtType, type);
        return (T)Parse(envelope);
    }

    internal static CrdtState ParseState(string type, JsonElement state) => type switch
    {
        PNCounter.Type => PNCounter.ReadState(state),
        LwwRegister.Type => LwwRegister.ReadState(state),
        MVRegister.Type => MVRegister.ReadState(state),
        ORSet.Type => ORSet.ReadState(state),
        ORMap.Type => ORMap.ReadState(state),
        _ => throw new InvalidRequestException($"Unknown CRDT type '{type}' (known: pncounter, lww, mvreg, orset, ormap)"),
    };

    internal static bool IsKnownType(string type) => type is PNCounter.Type or LwwRegister.Type or MVRegister.Type or ORSet.Type or ORMap.Type;

    /// <summary>Equal when the types and canonical encodings are equal.</summary>
    public bool Equals(CrdtState? other) => other is not null && TypeName == other.TypeName && ToJsonString() == other.ToJsonString();

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as CrdtState);

    /// <inheritdoc />
    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(ToJsonString());

    /// <summary>The canonical envelope text.</summary>
    public override string ToString() => ToJsonString();
}

/// <summary>Static members every CRDT type provides, for generic code such as <see cref="CrdtReplica{T}"/>.</summary>
/// <typeparam name="TSelf">The CRDT type.</typeparam>
public interface ICrdt<TSelf> where TSelf : CrdtState, ICrdt<TSelf>
{
    /// <summary>The envelope type name.</summary>
    static abstract string CrdtType { get; }

    /// <summary>The bottom state.</summary>
    static abstract TSelf Empty { get; }

    /// <summary>Joins this state with <paramref name="other"/> (commutative, associative, idempotent).</summary>
    TSelf Merge(TSelf other);
}

/// <summary>JSON reading helpers with uniform error messages.</summary>
internal static class CrdtJson
{
    public static void RequireObject(JsonElement e, string what)
    {
        if (e.ValueKind != JsonValueKind.Object) throw new InvalidRequestException($"Expected {what} to be an object; got {Dot.Describe(e)}");
    }

    public static void RequireArray(JsonElement e, string what)
    {
        if (e.ValueKind != JsonValueKind.Array) throw new InvalidRequestException($"Expected {what} to be an array; got {Dot.Describe(e)}");
    }

    public static long ReadCount(JsonElement e, string what)
    {
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out var n) || n < 0)
            throw new InvalidRequestException($"Expected {what} to be a non-negative integer; got {Dot.Describe(e)}");
        return n;
    }

    public static JsonElement Property(JsonElement e, string name, string what)
    {
        if (!e.TryGetProperty(name, out var value)) throw new InvalidRequestException($"{what} has no \"{name}\"");
        return value;
    }

    public static JsonElement Detach(ReadOnlyMemory<byte> utf8)
    {
        using var doc = JsonDocument.Parse(utf8);
        return doc.RootElement.Clone();
    }

    public static JsonElement Build(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var w = new Utf8JsonWriter(buffer)) write(w);
        return Detach(buffer.WrittenMemory);
    }
}
