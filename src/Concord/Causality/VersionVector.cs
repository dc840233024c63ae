using System.Text;
using System.Text.Json;

namespace Concord;

/// <summary>How two causal contexts relate.</summary>
public enum CausalOrder
{
    /// <summary>Both contexts have seen exactly the same events.</summary>
    Equal,

    /// <summary>The first context is strictly older: the second has seen everything it has, and more.</summary>
    Before,

    /// <summary>The first context is strictly newer: it has seen everything the second has, and more.</summary>
    After,

    /// <summary>Each has seen an event the other has not.</summary>
    Concurrent,
}

/// <summary>
/// A version vector: for each actor, how many of its events (on one key) are known. The causal context of a key.
/// JSON: an object <c>{"actor": counter, …}</c> with actors in ordinal order.
/// </summary>
/// <remarks>
/// <para>
/// Actors are <em>store replicas</em> (an embedded engine, a server node), never agents: the vector has one entry
/// per replica that ever wrote the key (one for the embedded engine), however many agents come and go. Agents
/// carry the vector they read and send it back with their writes (see docs/causality.md).
/// </para>
/// <para>Immutable and thread-safe. Entries with counter 0 are never stored.</para>
/// </remarks>
[System.Text.Json.Serialization.JsonConverter(typeof(VersionVectorJsonConverter))]
public sealed class VersionVector : IEquatable<VersionVector>
{
    private readonly KeyValuePair<string, long>[] _entries; // sorted by actor, ordinal; counters > 0

    private VersionVector(KeyValuePair<string, long>[] entries) => _entries = entries;

    /// <summary>The empty vector: has seen nothing.</summary>
    public static VersionVector Empty { get; } = new([]);

    /// <summary>Creates a vector from (actor, counter) pairs; zero counters are dropped, duplicate actors take the max.</summary>
    /// <exception cref="InvalidRequestException">An empty actor or a negative counter.</exception>
    public static VersionVector Create(IEnumerable<KeyValuePair<string, long>> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var map = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var (actor, counter) in entries)
        {
            Dot.ValidateActor(actor);
            if (counter < 0) throw new InvalidRequestException($"Version vector counters must not be negative (got {counter} for '{actor}')");
            if (counter == 0) continue;
            map[actor] = map.TryGetValue(actor, out var existing) ? Math.Max(existing, counter) : counter;
        }
        return map.Count == 0 ? Empty : new VersionVector([.. map]);
    }

    /// <summary>A vector that has seen exactly the events up to <paramref name="dot"/> of its actor.</summary>
    public static VersionVector Of(Dot dot) => Empty.With(dot);

    /// <summary>Number of actors with a non-zero counter.</summary>
    public int Count => _entries.Length;

    /// <summary>True when nothing has been seen.</summary>
    public bool IsEmpty => _entries.Length == 0;

    /// <summary>(actor, counter) pairs in ordinal actor order.</summary>
    public IReadOnlyList<KeyValuePair<string, long>> Entries => _entries;

    /// <summary>The counter of <paramref name="actor"/> (0 when unknown).</summary>
    public long this[string actor]
    {
        get
        {
            var i = IndexOf(actor);
            return i >= 0 ? _entries[i].Value : 0;
        }
    }

    /// <summary>True when the event <paramref name="dot"/> is part of this context (its writer had seen it).</summary>
    public bool Covers(Dot dot) => this[dot.Actor] >= dot.Counter;

    /// <summary>True when this context has seen everything <paramref name="other"/> has (≥, pointwise).</summary>
    public bool Descends(VersionVector other)
    {
        ArgumentNullException.ThrowIfNull(other);
        foreach (var (actor, counter) in other._entries)
        {
            if (this[actor] < counter) return false;
        }
        return true;
    }

    /// <summary>How this context relates to <paramref name="other"/>.</summary>
    public CausalOrder CompareTo(VersionVector other)
    {
        var ge = Descends(other);
        var le = other.Descends(this);
        return (ge, le) switch
        {
            (true, true) => CausalOrder.Equal,
            (true, false) => CausalOrder.After,
            (false, true) => CausalOrder.Before,
            _ => CausalOrder.Concurrent,
        };
    }

    /// <summary>The pointwise maximum: a context that has seen everything either has (the merged context).</summary>
    public VersionVector Join(VersionVector other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other._entries.Length == 0 || ReferenceEquals(this, other)) return this;
        if (_entries.Length == 0) return other;
        var result = new List<KeyValuePair<string, long>>(_entries.Length + other._entries.Length);
        int i = 0, j = 0;
        while (i < _entries.Length || j < other._entries.Length)
        {
            var c = i == _entries.Length ? 1 : j == other._entries.Length ? -1 : string.CompareOrdinal(_entries[i].Key, other._entries[j].Key);
            if (c < 0) result.Add(_entries[i++]);
            else if (c > 0) result.Add(other._entries[j++]);
            else
            {
                result.Add(new(_entries[i].Key, Math.Max(_entries[i].Value, other._entries[j].Value)));
                i++;
                j++;
            }
        }
        return new VersionVector([.. result]);
    }

    /// <summary>This context plus the event <paramref name="dot"/> (and, for a version vector, every earlier event of its actor).</summary>
    public VersionVector With(Dot dot)
    {
        Dot.ValidateActor(dot.Actor);
        if (Covers(dot)) return this;
        var i = IndexOf(dot.Actor);
        if (i >= 0)
        {
            var copy = (KeyValuePair<string, long>[])_entries.Clone();
            copy[i] = new(dot.Actor, dot.Counter);
            return new VersionVector(copy);
        }
        var list = new List<KeyValuePair<string, long>>(_entries) { new(dot.Actor, dot.Counter) };
        list.Sort(static (a, b) => string.CompareOrdinal(a.Key, b.Key));
        return new VersionVector([.. list]);
    }

    private int IndexOf(string actor)
    {
        int lo = 0, hi = _entries.Length - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            var c = string.CompareOrdinal(_entries[mid].Key, actor);
            if (c == 0) return mid;
            if (c < 0) lo = mid + 1;
            else hi = mid - 1;
        }
        return -1;
    }

    /// <summary>Writes the JSON object form.</summary>
    public void WriteTo(Utf8JsonWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStartObject();
        foreach (var (actor, counter) in _entries) writer.WriteNumber(actor, counter);
        writer.WriteEndObject();
    }

    /// <summary>The JSON object form, e.g. <c>{"n1":42}</c>.</summary>
    public JsonElement ToJson()
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(64);
        using (var w = new Utf8JsonWriter(buffer)) WriteTo(w);
        using var doc = JsonDocument.Parse(buffer.WrittenMemory);
        return doc.RootElement.Clone();
    }

    /// <summary>Reads the JSON object form.</summary>
    /// <exception cref="InvalidRequestException">Not an object of non-negative integer counters.</exception>
    public static VersionVector FromJson(JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Object)
            throw new InvalidRequestException($"A version vector is an object {{\"actor\": counter}}; got {Dot.Describe(element)}");
        var pairs = new List<KeyValuePair<string, long>>();
        foreach (var p in element.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt64(out var n))
                throw new InvalidRequestException($"Version vector counter for '{p.Name}' must be an integer; got {Dot.Describe(p.Value)}");
            pairs.Add(new(p.Name, n));
        }
        return Create(pairs);
    }

    /// <summary>
    /// The compact text form used in HTTP headers and logs: <c>actor:counter</c> pairs separated by commas
    /// (<c>n1:42,n2:7</c>); empty for <see cref="Empty"/>. Actors must not contain <c>,</c> or <c>:</c> to round-trip.
    /// </summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        foreach (var (actor, counter) in _entries)
        {
            if (sb.Length > 0) sb.Append(',');
            sb.Append(actor).Append(':').Append(counter.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    /// <summary>Parses the text form of <see cref="ToString"/>.</summary>
    /// <exception cref="InvalidRequestException">Malformed text.</exception>
    public static VersionVector Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var pairs = new List<KeyValuePair<string, long>>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var colon = part.LastIndexOf(':');
            if (colon <= 0 || !long.TryParse(part.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n))
                throw new InvalidRequestException($"A version vector is 'actor:counter,…'; got '{(text.Length > 80 ? text[..80] + "…" : text)}'");
            pairs.Add(new(part[..colon], n));
        }
        return Create(pairs);
    }

    /// <inheritdoc />
    public bool Equals(VersionVector? other)
    {
        if (other is null) return false;
        if (ReferenceEquals(this, other)) return true;
        return _entries.AsSpan().SequenceEqual(other._entries);
    }

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as VersionVector);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var (actor, counter) in _entries)
        {
            h.Add(actor, StringComparer.Ordinal);
            h.Add(counter);
        }
        return h.ToHashCode();
    }
}
