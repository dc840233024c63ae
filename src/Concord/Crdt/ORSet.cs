using System.Text.Json;

namespace Concord.Crdt;

/// <summary>
/// An observed-remove set with add-wins semantics, in its optimized form: each add tags the element with a fresh dot,
/// a remove drops the dots it has observed, and a causal context records every dot seen — so a removed element leaves no
/// tombstone behind, and an add concurrent with a remove survives it.
/// </summary>
/// <remarks>
/// <para>Immutable and thread-safe. Elements are JSON values compared by canonical form (<c>1</c> equals <c>1.0</c>,
/// object members in any order).</para>
/// <para>State: <c>{"entries":[{"element":…,"dots":[["a",1],…]},…],"ctx":{"vv":{…},"dc":[…]}}</c>, entries in
/// canonical element order.</para>
/// </remarks>
public sealed class ORSet : CrdtState, ICrdt<ORSet>
{
    internal const string Type = "orset";

    // Canonical element text → its dots. Elements are kept as canonical text (their identity) and parsed on access:
    // merging a large stored set then costs no per-element JSON document.
    private readonly Dictionary<string, Entry> _entries;
    private readonly DotContext _context;

    private sealed record Entry(string Text, HashSet<Dot> Dots)
    {
        public JsonElement Element => CrdtJson.Detach(System.Text.Encoding.UTF8.GetBytes(Text));
    }

    private ORSet(Dictionary<string, Entry> entries, DotContext context)
    {
        _entries = entries;
        _context = context;
    }

    /// <summary>The empty set.</summary>
    public static ORSet Empty { get; } = new(new(StringComparer.Ordinal), new DotContext());

    /// <inheritdoc />
    public static string CrdtType => Type;

    /// <inheritdoc />
    public override string TypeName => Type;

    /// <inheritdoc />
    public override bool IsEmpty => _entries.Count == 0 && _context.IsEmpty;

    /// <summary>Number of elements.</summary>
    public int Count => _entries.Count;

    /// <summary>The elements in canonical order.</summary>
    public IReadOnlyList<JsonElement> Elements => [.. _entries.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => e.Value.Element)];

    /// <summary>Deserializes every element.</summary>
    public IReadOnlyList<T?> ElementsAs<T>(JsonSerializerOptions? options = null) => [.. Elements.Select(e => e.Deserialize<T>(options ?? JsonDefaults.Web))];

    /// <summary>True when <paramref name="element"/> is in the set.</summary>
    public bool Contains(JsonElement element) => _entries.ContainsKey(CanonicalJson.Text(element));

    /// <summary>True when the serialized <paramref name="element"/> is in the set.</summary>
    public bool Contains<T>(T element) => Contains(JsonSerializer.SerializeToElement(element, JsonDefaults.Web));

    /// <summary>The delta that adds <paramref name="element"/> on behalf of <paramref name="replica"/> (it also supersedes the element's older dots).</summary>
    public ORSet Add(string replica, JsonElement element)
    {
        if (element.ValueKind == JsonValueKind.Undefined) throw new ArgumentException("A set element must be a JSON value", nameof(element));
        var dot = _context.Next(replica);
        var key = CanonicalJson.Text(element);
        var context = new DotContext();
        if (_entries.TryGetValue(key, out var existing))
        {
            foreach (var d in existing.Dots) context.Add(d);
        }
        context.Add(dot);
        var entries = new Dictionary<string, Entry>(StringComparer.Ordinal) { [key] = new Entry(key, [dot]) };
        return new ORSet(entries, context);
    }

    /// <summary>Serializes and adds <paramref name="element"/>.</summary>
    public ORSet Add<T>(string replica, T element) => Add(replica, JsonSerializer.SerializeToElement(element, JsonDefaults.Web));

    /// <summary>The delta that removes <paramref name="element"/> as observed here (a concurrent add elsewhere wins). Empty when absent.</summary>
    public ORSet Remove(JsonElement element)
    {
        var context = new DotContext();
        if (_entries.TryGetValue(CanonicalJson.Text(element), out var existing))
        {
            foreach (var d in existing.Dots) context.Add(d);
        }
        return new ORSet(new(StringComparer.Ordinal), context);
    }

    /// <summary>Serializes and removes <paramref name="element"/>.</summary>
    public ORSet Remove<T>(T element) => Remove(JsonSerializer.SerializeToElement(element, JsonDefaults.Web));

    /// <summary>The delta that removes every element observed here.</summary>
    public ORSet Clear()
    {
        var context = new DotContext();
        foreach (var entry in _entries.Values)
        {
            foreach (var d in entry.Dots) context.Add(d);
        }
        return new ORSet(new(StringComparer.Ordinal), context);
    }

    /// <inheritdoc />
    public ORSet Merge(ORSet other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (ReferenceEquals(this, other) || other.IsEmpty) return this;
        if (IsEmpty) return other;
        var entries = new Dictionary<string, Entry>(StringComparer.Ordinal);
        foreach (var (key, entry) in _entries)
        {
            if (!other._entries.TryGetValue(key, out var o))
            {
                // The common case when merging a small delta into a large state: keep the entry as it is.
                if (!entry.Dots.Any(other._context.Contains)) entries[key] = entry;
                else if (DotKernel.Join(entry.Dots, _context, [], other._context) is { Count: > 0 } kept) entries[key] = entry with { Dots = kept };
                continue;
            }
            var dots = DotKernel.Join(entry.Dots, _context, o.Dots, other._context);
            if (dots.Count > 0) entries[key] = entry with { Dots = dots };
        }
        foreach (var (key, entry) in other._entries)
        {
            if (_entries.ContainsKey(key)) continue;
            var dots = DotKernel.Join([], _context, entry.Dots, other._context);
            if (dots.Count > 0) entries[key] = entry with { Dots = dots };
        }
        return new ORSet(entries, DotKernel.JoinContexts(_context, other._context));
    }

    private protected override CrdtState JoinCore(CrdtState other) => Merge((ORSet)other);

    /// <inheritdoc />
    public override JsonElement ToPlainJson() => CrdtJson.Build(w =>
    {
        w.WriteStartArray();
        foreach (var (key, _) in _entries.OrderBy(e => e.Key, StringComparer.Ordinal)) w.WriteRawValue(key, skipInputValidation: true);
        w.WriteEndArray();
    });

    private protected override void WriteState(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WriteStartArray("entries");
        foreach (var (_, entry) in _entries.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            writer.WriteStartObject();
            writer.WritePropertyName("element");
            writer.WriteRawValue(entry.Text, skipInputValidation: true);
            writer.WriteStartArray("dots");
            if (entry.Dots.Count == 1) entry.Dots.First().WriteTo(writer);
            else foreach (var d in entry.Dots.Order()) d.WriteTo(writer);
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        writer.WritePropertyName("ctx");
        _context.WriteTo(writer);
        writer.WriteEndObject();
    }

    internal static ORSet ReadState(JsonElement state)
    {
        CrdtJson.RequireObject(state, "an orset state");
        var context = state.TryGetProperty("ctx", out var c) ? DotContext.Read(c) : new DotContext();
        var entries = new Dictionary<string, Entry>(StringComparer.Ordinal);
        if (state.TryGetProperty("entries", out var list))
        {
            CrdtJson.RequireArray(list, "orset \"entries\"");
            foreach (var item in list.EnumerateArray())
            {
                CrdtJson.RequireObject(item, "an orset entry");
                var key = CanonicalJson.Text(CrdtJson.Property(item, "element", "An orset entry"));
                var dotsJson = CrdtJson.Property(item, "dots", "An orset entry");
                CrdtJson.RequireArray(dotsJson, "orset entry \"dots\"");
                if (!entries.TryGetValue(key, out var entry)) entries[key] = entry = new Entry(key, []);
                foreach (var d in dotsJson.EnumerateArray())
                {
                    var dot = Dot.Read(d);
                    entry.Dots.Add(dot);
                    context.Add(dot);
                }
                if (entry.Dots.Count == 0) entries.Remove(key);
            }
        }
        return new ORSet(entries, context);
    }
}
