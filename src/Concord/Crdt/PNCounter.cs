using System.Text.Json;

namespace Concord.Crdt;

/// <summary>
/// A counter that replicas increment and decrement independently: per replica, a grow-only total of increments (P) and
/// of decrements (N); the value is ΣP − ΣN. Joining takes the per-replica maximum.
/// </summary>
/// <remarks>
/// <para>Immutable and thread-safe. Each replica must use its own replica id: two writers sharing an id undercount.</para>
/// <para>State: <c>{"p":{"replica":total,…},"n":{…}}</c>. The delta of an increment carries one entry: the replica's new total.</para>
/// <para>The state holds one entry per replica that ever counted: prefer stable replica ids (per process or worker) over
/// one per short-lived task.</para>
/// </remarks>
public sealed class PNCounter : CrdtState, ICrdt<PNCounter>
{
    internal const string Type = "pncounter";

    private readonly Dictionary<string, long> _p;
    private readonly Dictionary<string, long> _n;

    private PNCounter(Dictionary<string, long> p, Dictionary<string, long> n)
    {
        _p = p;
        _n = n;
    }

    /// <summary>The zero counter.</summary>
    public static PNCounter Empty { get; } = new(new(StringComparer.Ordinal), new(StringComparer.Ordinal));

    /// <inheritdoc />
    public static string CrdtType => Type;

    /// <inheritdoc />
    public override string TypeName => Type;

    /// <inheritdoc />
    public override bool IsEmpty => _p.Count == 0 && _n.Count == 0;

    /// <summary>ΣP − ΣN.</summary>
    /// <exception cref="OverflowException">The value does not fit in 64 bits.</exception>
    public long Value
    {
        get
        {
            long sum = 0;
            foreach (var v in _p.Values) sum = checked(sum + v);
            foreach (var v in _n.Values) sum = checked(sum - v);
            return sum;
        }
    }

    /// <summary>Increment totals by replica.</summary>
    public IReadOnlyDictionary<string, long> Increments => _p.AsReadOnly();

    /// <summary>Decrement totals by replica.</summary>
    public IReadOnlyDictionary<string, long> Decrements => _n.AsReadOnly();

    /// <summary>The delta that adds <paramref name="amount"/> (≥ 0) on behalf of <paramref name="replica"/>.</summary>
    public PNCounter Increment(string replica, long amount = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(amount);
        Dot.ValidateActor(replica);
        return new PNCounter(Single(replica, checked(Get(_p, replica) + amount)), new(StringComparer.Ordinal));
    }

    /// <summary>The delta that subtracts <paramref name="amount"/> (≥ 0) on behalf of <paramref name="replica"/>.</summary>
    public PNCounter Decrement(string replica, long amount = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(amount);
        Dot.ValidateActor(replica);
        return new PNCounter(new(StringComparer.Ordinal), Single(replica, checked(Get(_n, replica) + amount)));
    }

    /// <summary>The delta that adds <paramref name="amount"/> (any sign) on behalf of <paramref name="replica"/>.</summary>
    public PNCounter Add(string replica, long amount) => amount >= 0 ? Increment(replica, amount) : Decrement(replica, -amount);

    /// <inheritdoc />
    public PNCounter Merge(PNCounter other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.IsEmpty) return this;
        if (IsEmpty) return other;
        return new PNCounter(Max(_p, other._p), Max(_n, other._n));
    }

    private protected override CrdtState JoinCore(CrdtState other) => Merge((PNCounter)other);

    /// <inheritdoc />
    public override JsonElement ToPlainJson() => CrdtJson.Build(w => w.WriteNumberValue(Value));

    private static Dictionary<string, long> Single(string replica, long total)
    {
        var map = new Dictionary<string, long>(StringComparer.Ordinal);
        if (total > 0) map[replica] = total; // zero entries are never stored: they would break canonical equality
        return map;
    }

    private static long Get(Dictionary<string, long> map, string replica) => map.TryGetValue(replica, out var v) ? v : 0;

    private static Dictionary<string, long> Max(Dictionary<string, long> a, Dictionary<string, long> b)
    {
        var result = new Dictionary<string, long>(a, StringComparer.Ordinal);
        foreach (var (k, v) in b)
        {
            if (!result.TryGetValue(k, out var mine) || mine < v) result[k] = v;
        }
        return result;
    }

    private protected override void WriteState(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        WriteMap(writer, "p", _p);
        WriteMap(writer, "n", _n);
        writer.WriteEndObject();
    }

    private static void WriteMap(Utf8JsonWriter w, string name, Dictionary<string, long> map)
    {
        w.WriteStartObject(name);
        foreach (var (k, v) in map.OrderBy(p => p.Key, StringComparer.Ordinal)) w.WriteNumber(k, v);
        w.WriteEndObject();
    }

    internal static PNCounter ReadState(JsonElement state)
    {
        CrdtJson.RequireObject(state, "a pncounter state");
        return new PNCounter(ReadMap(state, "p"), ReadMap(state, "n"));
    }

    private static Dictionary<string, long> ReadMap(JsonElement state, string name)
    {
        var map = new Dictionary<string, long>(StringComparer.Ordinal);
        if (!state.TryGetProperty(name, out var m)) return map;
        CrdtJson.RequireObject(m, $"pncounter \"{name}\"");
        foreach (var p in m.EnumerateObject())
        {
            Dot.ValidateActor(p.Name);
            var v = CrdtJson.ReadCount(p.Value, $"pncounter \"{name}\" entry '{p.Name}'");
            if (v > 0) map[p.Name] = Math.Max(v, map.TryGetValue(p.Name, out var existing) ? existing : 0);
        }
        return map;
    }
}
