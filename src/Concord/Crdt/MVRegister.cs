using System.Text.Json;

namespace Concord.Crdt;

/// <summary>
/// A multi-value register: an assignment replaces every value its replica had seen; concurrent assignments are all
/// kept, side by side, until an assignment that has seen them all replaces them.
/// </summary>
/// <remarks>
/// <para>Immutable and thread-safe.</para>
/// <para>State: <c>{"entries":[{"dot":["a",3],"value":…},…],"ctx":{"vv":{…},"dc":[…]}}</c>, entries in dot order.</para>
/// </remarks>
public sealed class MVRegister : CrdtState, ICrdt<MVRegister>
{
    internal const string Type = "mvreg";

    private readonly Dictionary<Dot, JsonElement> _entries;
    private readonly DotContext _context;

    private MVRegister(Dictionary<Dot, JsonElement> entries, DotContext context)
    {
        _entries = entries;
        _context = context;
    }

    /// <summary>The unassigned register.</summary>
    public static MVRegister Empty { get; } = new([], new DotContext());

    /// <inheritdoc />
    public static string CrdtType => Type;

    /// <inheritdoc />
    public override string TypeName => Type;

    /// <inheritdoc />
    public override bool IsEmpty => _entries.Count == 0 && _context.IsEmpty;

    /// <summary>The concurrent values (one after a sequential history, several after concurrent assignments), in dot order.</summary>
    public IReadOnlyList<JsonElement> Values => [.. _entries.OrderBy(e => e.Key).Select(e => e.Value)];

    /// <summary>The values with the assignments (dots) that produced them, in dot order.</summary>
    public IReadOnlyList<KeyValuePair<Dot, JsonElement>> Entries => [.. _entries.OrderBy(e => e.Key)];

    /// <summary>Deserializes every value.</summary>
    public IReadOnlyList<T?> ValuesAs<T>(JsonSerializerOptions? options = null) => [.. Values.Select(v => v.Deserialize<T>(options ?? JsonDefaults.Web))];

    /// <summary>The delta that assigns <paramref name="value"/>, replacing every value this state has seen.</summary>
    public MVRegister Assign(string replica, JsonElement value)
    {
        if (value.ValueKind == JsonValueKind.Undefined) throw new ArgumentException("A register value must be a JSON value", nameof(value));
        var dot = _context.Next(replica);
        var context = new DotContext();
        foreach (var d in _entries.Keys) context.Add(d);
        context.Add(dot);
        return new MVRegister(new Dictionary<Dot, JsonElement> { [dot] = CanonicalJson.Normalize(value) }, context);
    }

    /// <summary>Serializes and assigns <paramref name="value"/>.</summary>
    public MVRegister Assign<T>(string replica, T value) => Assign(replica, JsonSerializer.SerializeToElement(value, JsonDefaults.Web));

    /// <summary>The delta that removes every value this state has seen (concurrent assignments survive).</summary>
    public MVRegister Clear()
    {
        var context = new DotContext();
        foreach (var d in _entries.Keys) context.Add(d);
        return new MVRegister([], context);
    }

    /// <inheritdoc />
    public MVRegister Merge(MVRegister other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (ReferenceEquals(this, other) || other.IsEmpty) return this;
        if (IsEmpty) return other;
        // The same dot is the same assignment; if a misbehaving replica reused a dot, keep a deterministic value.
        var entries = DotKernel.Join(_entries, _context, other._entries, other._context,
            static (x, y) => string.CompareOrdinal(CanonicalJson.Text(x), CanonicalJson.Text(y)) >= 0 ? x : y);
        return new MVRegister(entries, DotKernel.JoinContexts(_context, other._context));
    }

    private protected override CrdtState JoinCore(CrdtState other) => Merge((MVRegister)other);

    /// <inheritdoc />
    public override JsonElement ToPlainJson() => CrdtJson.Build(w =>
    {
        w.WriteStartArray();
        foreach (var v in Values) CanonicalJson.Write(w, v);
        w.WriteEndArray();
    });

    private protected override void WriteState(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WriteStartArray("entries");
        foreach (var (dot, value) in _entries.OrderBy(e => e.Key))
        {
            writer.WriteStartObject();
            writer.WritePropertyName("dot");
            dot.WriteTo(writer);
            writer.WritePropertyName("value");
            CanonicalJson.Write(writer, value);
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        writer.WritePropertyName("ctx");
        _context.WriteTo(writer);
        writer.WriteEndObject();
    }

    internal static MVRegister ReadState(JsonElement state)
    {
        CrdtJson.RequireObject(state, "an mvreg state");
        var context = state.TryGetProperty("ctx", out var c) ? DotContext.Read(c) : new DotContext();
        var entries = new Dictionary<Dot, JsonElement>();
        if (state.TryGetProperty("entries", out var list))
        {
            CrdtJson.RequireArray(list, "mvreg \"entries\"");
            foreach (var item in list.EnumerateArray())
            {
                CrdtJson.RequireObject(item, "an mvreg entry");
                var dot = Dot.Read(CrdtJson.Property(item, "dot", "An mvreg entry"));
                var value = CanonicalJson.Normalize(CrdtJson.Property(item, "value", "An mvreg entry"));
                if (entries.TryGetValue(dot, out var existing) && string.CompareOrdinal(CanonicalJson.Text(existing), CanonicalJson.Text(value)) >= 0) continue;
                entries[dot] = value;
                context.Add(dot); // a well-formed state has seen its own dots
            }
        }
        return new MVRegister(entries, context);
    }
}
