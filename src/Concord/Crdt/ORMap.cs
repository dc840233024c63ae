using System.Text.Json;

namespace Concord.Crdt;

/// <summary>A field of an <see cref="ORMap"/>: a name and the CRDT type stored under it (Riak-style: the pair is the identity).</summary>
/// <param name="Name">Field name.</param>
/// <param name="Type">CRDT type name of the field's value.</param>
public readonly record struct MapField(string Name, string Type);

/// <summary>
/// An observed-remove map whose values are CRDTs (nested to any depth): fields are updated by nested deltas and
/// removed by observed-remove; an update concurrent with a remove wins (the field stays, with the updater's state).
/// </summary>
/// <remarks>
/// <para>Immutable and thread-safe. A field is identified by (name, type), as in Riak maps, so two replicas that
/// concurrently store different types under one name both keep their field instead of failing to merge.</para>
/// <para>
/// Each update tags the field with a fresh dot holding the field's whole new state (the state the updater saw, joined
/// with its nested delta) and supersedes the dots it saw; concurrent updates leave several dots whose states are joined
/// on read. A remove drops the dots it observed. An update's delta is therefore as large as the field's state: keep
/// nested values small, or use separate keys for big sets.
/// </para>
/// <para>State: <c>{"entries":{"name":{"type":[{"dot":["a",1],"state":{…}}]}},"ctx":{"vv":{…},"dc":[…]}}</c>, names, types and
/// dots in canonical order; <c>state</c> is the nested type's state (without its envelope).</para>
/// </remarks>
public sealed class ORMap : CrdtState, ICrdt<ORMap>
{
    internal const string Type = "ormap";

    private readonly Dictionary<MapField, Dictionary<Dot, CrdtState>> _entries;
    private readonly DotContext _context;

    private ORMap(Dictionary<MapField, Dictionary<Dot, CrdtState>> entries, DotContext context)
    {
        _entries = entries;
        _context = context;
    }

    /// <summary>The empty map.</summary>
    public static ORMap Empty { get; } = new([], new DotContext());

    /// <inheritdoc />
    public static string CrdtType => Type;

    /// <inheritdoc />
    public override string TypeName => Type;

    /// <inheritdoc />
    public override bool IsEmpty => _entries.Count == 0 && _context.IsEmpty;

    /// <summary>Number of fields.</summary>
    public int Count => _entries.Count;

    /// <summary>The fields, ordered by name then type.</summary>
    public IReadOnlyList<MapField> Fields => [.. _entries.Keys.Order(FieldOrder.Instance)];

    /// <summary>Distinct field names in ordinal order.</summary>
    public IReadOnlyList<string> Keys => [.. _entries.Keys.Select(f => f.Name).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];

    /// <summary>True when some field is named <paramref name="name"/>.</summary>
    public bool ContainsKey(string name) => _entries.Keys.Any(f => f.Name == name);

    /// <summary>The value of field (<paramref name="name"/>, <typeparamref name="T"/>); null when absent.</summary>
    public T? Get<T>(string name) where T : CrdtState, ICrdt<T> => (T?)Get(name, T.CrdtType);

    /// <summary>The value of field (<paramref name="name"/>, <paramref name="type"/>); null when absent.</summary>
    public CrdtState? Get(string name, string type)
    {
        if (!_entries.TryGetValue(new MapField(name, type), out var dots)) return null;
        CrdtState? value = null;
        foreach (var (_, state) in dots.OrderBy(d => d.Key)) value = value is null ? state : value.Join(state);
        return value;
    }

    /// <summary>
    /// The delta that updates field (<paramref name="name"/>, <typeparamref name="T"/>): <paramref name="mutate"/> receives
    /// the field's current value (empty when absent) and returns a nested delta (e.g. <c>c =&gt; c.Increment(replica)</c>).
    /// </summary>
    public ORMap Update<T>(string replica, string name, Func<T, T> mutate) where T : CrdtState, ICrdt<T>
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(mutate);
        var current = Get<T>(name) ?? T.Empty;
        var next = current.Merge(mutate(current));
        var field = new MapField(name, T.CrdtType);
        var dot = _context.Next(replica);
        var context = new DotContext();
        if (_entries.TryGetValue(field, out var old))
        {
            foreach (var d in old.Keys) context.Add(d);
        }
        context.Add(dot);
        return new ORMap(new() { [field] = new Dictionary<Dot, CrdtState> { [dot] = next } }, context);
    }

    /// <summary>The delta that removes every field named <paramref name="name"/> as observed here (concurrent updates win).</summary>
    public ORMap Remove(string name)
    {
        var context = new DotContext();
        foreach (var (field, dots) in _entries)
        {
            if (field.Name != name) continue;
            foreach (var d in dots.Keys) context.Add(d);
        }
        return new ORMap([], context);
    }

    /// <inheritdoc />
    public ORMap Merge(ORMap other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (ReferenceEquals(this, other) || other.IsEmpty) return this;
        if (IsEmpty) return other;
        var entries = new Dictionary<MapField, Dictionary<Dot, CrdtState>>();
        foreach (var field in _entries.Keys.Union(other._entries.Keys))
        {
            var mine = _entries.TryGetValue(field, out var a) ? a : [];
            var theirs = other._entries.TryGetValue(field, out var b) ? b : [];
            var dots = DotKernel.Join(mine, _context, theirs, other._context, static (x, y) => x.Join(y));
            if (dots.Count > 0) entries[field] = dots;
        }
        return new ORMap(entries, DotKernel.JoinContexts(_context, other._context));
    }

    private protected override CrdtState JoinCore(CrdtState other) => Merge((ORMap)other);

    /// <summary>
    /// An object of field name → the nested value's plain JSON. When several types share a name, each appears as
    /// <c>name#type</c>.
    /// </summary>
    public override JsonElement ToPlainJson() => CrdtJson.Build(w =>
    {
        w.WriteStartObject();
        var fields = Fields;
        foreach (var field in fields)
        {
            var shared = fields.Count(f => f.Name == field.Name) > 1;
            w.WritePropertyName(shared ? $"{field.Name}#{field.Type}" : field.Name);
            CanonicalJson.Write(w, Get(field.Name, field.Type)!.ToPlainJson());
        }
        w.WriteEndObject();
    });

    private protected override void WriteState(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WriteStartObject("entries");
        foreach (var byName in _entries.GroupBy(e => e.Key.Name, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            writer.WriteStartObject(byName.Key);
            foreach (var (field, dots) in byName.OrderBy(e => e.Key.Type, StringComparer.Ordinal))
            {
                writer.WriteStartArray(field.Type);
                foreach (var (dot, state) in dots.OrderBy(d => d.Key))
                {
                    writer.WriteStartObject();
                    writer.WritePropertyName("dot");
                    dot.WriteTo(writer);
                    writer.WritePropertyName("state");
                    state.WriteStateTo(writer);
                    writer.WriteEndObject();
                }
                writer.WriteEndArray();
            }
            writer.WriteEndObject();
        }
        writer.WriteEndObject();
        writer.WritePropertyName("ctx");
        _context.WriteTo(writer);
        writer.WriteEndObject();
    }

    internal static ORMap ReadState(JsonElement state)
    {
        CrdtJson.RequireObject(state, "an ormap state");
        var context = state.TryGetProperty("ctx", out var c) ? DotContext.Read(c) : new DotContext();
        var entries = new Dictionary<MapField, Dictionary<Dot, CrdtState>>();
        if (state.TryGetProperty("entries", out var byName))
        {
            CrdtJson.RequireObject(byName, "ormap \"entries\"");
            foreach (var name in byName.EnumerateObject())
            {
                CrdtJson.RequireObject(name.Value, $"ormap field '{name.Name}'");
                foreach (var type in name.Value.EnumerateObject())
                {
                    if (!IsKnownType(type.Name)) throw new InvalidRequestException($"ormap field '{name.Name}' has unknown CRDT type '{type.Name}'");
                    CrdtJson.RequireArray(type.Value, $"ormap field '{name.Name}'/{type.Name}");
                    var field = new MapField(name.Name, type.Name);
                    if (!entries.TryGetValue(field, out var dots)) entries[field] = dots = [];
                    foreach (var item in type.Value.EnumerateArray())
                    {
                        CrdtJson.RequireObject(item, "an ormap entry");
                        var dot = Dot.Read(CrdtJson.Property(item, "dot", "An ormap entry"));
                        var value = ParseState(type.Name, CrdtJson.Property(item, "state", "An ormap entry"));
                        dots[dot] = dots.TryGetValue(dot, out var existing) ? existing.Join(value) : value;
                        context.Add(dot);
                    }
                    if (dots.Count == 0) entries.Remove(field);
                }
            }
        }
        return new ORMap(entries, context);
    }

    private sealed class FieldOrder : IComparer<MapField>
    {
        public static readonly FieldOrder Instance = new();

        public int Compare(MapField x, MapField y)
        {
            var c = string.CompareOrdinal(x.Name, y.Name);
            return c != 0 ? c : string.CompareOrdinal(x.Type, y.Type);
        }
    }
}
