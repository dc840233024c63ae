using System.Text.Json;

namespace Concord;

/// <summary>
/// The causal metadata a store stamps on every version it writes (<see cref="ConcordRecord.Causal"/>).
/// </summary>
/// <remarks>
/// <para>
/// <see cref="Context"/> is what a reader sends back with its next write (sessions do it automatically): a write whose
/// context covers <see cref="Dot"/> <em>descends</em> from this version; one that does not is <em>concurrent</em> with it.
/// </para>
/// <para>Immutable and thread-safe. Encoded on disk and on the wire as
/// <c>{"dot":["n1",42],"ctx":{"n1":42},"concurrent":true,"siblings":true}</c> (false flags omitted).</para>
/// </remarks>
[System.Text.Json.Serialization.JsonConverter(typeof(CausalStampJsonConverter))]
public sealed class CausalStamp : IEquatable<CausalStamp>
{
    /// <summary>Creates a stamp. Stores create stamps; user code reads them.</summary>
    public CausalStamp(Dot dot, VersionVector context, bool concurrent = false, bool siblingMode = false)
    {
        ArgumentNullException.ThrowIfNull(context);
        Dot = dot;
        Context = context;
        Concurrent = concurrent;
        SiblingMode = siblingMode;
    }

    /// <summary>The event that produced this version: (store replica, counter).</summary>
    public Dot Dot { get; }

    /// <summary>
    /// The causal context of the key after this write: every event the version reflects. Send it with the next write
    /// (<see cref="WriteOptions.Context"/>) to say "I have seen this"; for a key with siblings it is the merged context
    /// that resolves them.
    /// </summary>
    public VersionVector Context { get; }

    /// <summary>
    /// True when the write that produced this version did not descend from the value it replaced: its writer neither
    /// carried a context covering the previous version nor stated its exact version. On a key without siblings that means
    /// the previous value was overwritten by someone who had not seen it (the write was allowed by the expectation rules,
    /// and this flag reports it); on a key with siblings it means concurrent values are now kept side by side.
    /// </summary>
    public bool Concurrent { get; }

    /// <summary>True when the key keeps concurrent writes as siblings (see <see cref="WriteOptions.AllowSiblings"/>).</summary>
    public bool SiblingMode { get; }

    /// <summary>Writes the JSON encoding.</summary>
    public void WriteTo(Utf8JsonWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStartObject();
        writer.WritePropertyName("dot");
        Dot.WriteTo(writer);
        writer.WritePropertyName("ctx");
        Context.WriteTo(writer);
        if (Concurrent) writer.WriteBoolean("concurrent", true);
        if (SiblingMode) writer.WriteBoolean("siblings", true);
        writer.WriteEndObject();
    }

    /// <summary>Reads the JSON encoding.</summary>
    /// <exception cref="InvalidRequestException">Malformed stamp.</exception>
    public static CausalStamp Read(JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty("dot", out var dot) || !element.TryGetProperty("ctx", out var ctx))
            throw new InvalidRequestException($"A causal stamp is {{\"dot\":…,\"ctx\":…}}; got {Dot.Describe(element)}");
        return new CausalStamp(Dot.Read(dot), VersionVector.FromJson(ctx),
            element.TryGetProperty("concurrent", out var c) && c.ValueKind == JsonValueKind.True,
            element.TryGetProperty("siblings", out var s) && s.ValueKind == JsonValueKind.True);
    }

    /// <inheritdoc />
    public bool Equals(CausalStamp? other) =>
        other is not null && Dot == other.Dot && Context.Equals(other.Context) && Concurrent == other.Concurrent && SiblingMode == other.SiblingMode;

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as CausalStamp);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Dot, Context, Concurrent, SiblingMode);

    /// <inheritdoc />
    public override string ToString() => $"dot {Dot} ctx {{{Context}}}{(Concurrent ? " concurrent" : "")}{(SiblingMode ? " siblings" : "")}";
}

/// <summary>One of the concurrent values a key with siblings holds.</summary>
/// <param name="Dot">The write that produced it.</param>
/// <param name="Writer">Agent id of that write, when known.</param>
/// <param name="Value">The value written.</param>
public sealed record Sibling(Dot Dot, string? Writer, JsonElement Value);
