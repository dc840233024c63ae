using System.Text.Json;

namespace Concord.Crdt;

/// <summary>
/// The causal context of a causal CRDT (OR-set, MV-register, OR-map): every dot the state has seen, as a compact
/// version vector plus a "cloud" of dots that arrived out of order. A dot in the context but absent from the state's
/// entries was removed — which is why removes need no per-element tombstones.
/// JSON: <c>{"vv":{"a":3},"dc":[["b",5]]}</c>.
/// </summary>
/// <remarks>Mutated only while a new state is being built; immutable once the state is published.</remarks>
internal sealed class DotContext
{
    private readonly Dictionary<string, long> _vv;
    private readonly HashSet<Dot> _cloud;

    private DotContext(Dictionary<string, long> vv, HashSet<Dot> cloud)
    {
        _vv = vv;
        _cloud = cloud;
    }

    public DotContext() : this(new Dictionary<string, long>(StringComparer.Ordinal), []) { }

    public bool IsEmpty => _vv.Count == 0 && _cloud.Count == 0;

    public bool Contains(Dot dot) => (_vv.TryGetValue(dot.Actor, out var n) && dot.Counter <= n) || _cloud.Contains(dot);

    /// <summary>The next dot <paramref name="actor"/> issues: one past the highest it has seen.</summary>
    public Dot Next(string actor)
    {
        Dot.ValidateActor(actor);
        var max = _vv.TryGetValue(actor, out var n) ? n : 0;
        foreach (var d in _cloud)
        {
            if (d.Actor == actor && d.Counter > max) max = d.Counter;
        }
        return new Dot(actor, checked(max + 1));
    }

    public DotContext Clone() => new(new Dictionary<string, long>(_vv, StringComparer.Ordinal), [.. _cloud]);

    public void Add(Dot dot)
    {
        if (Contains(dot)) return;
        var n = _vv.TryGetValue(dot.Actor, out var v) ? v : 0;
        if (dot.Counter == n + 1)
        {
            _vv[dot.Actor] = dot.Counter;
            Compact(dot.Actor);
        }
        else
        {
            _cloud.Add(dot);
        }
    }

    public void Join(DotContext other)
    {
        foreach (var (actor, n) in other._vv)
        {
            if (!_vv.TryGetValue(actor, out var mine) || mine < n) _vv[actor] = n;
        }
        foreach (var d in other._cloud) _cloud.Add(d);
        CompactAll();
    }

    private void Compact(string actor)
    {
        if (_cloud.Count == 0) return;
        var n = _vv.TryGetValue(actor, out var v) ? v : 0;
        while (_cloud.Remove(new Dot(actor, n + 1))) n++;
        if (n > 0) _vv[actor] = n;
        _cloud.RemoveWhere(d => d.Actor == actor && d.Counter <= n);
    }

    private void CompactAll()
    {
        if (_cloud.Count == 0) return;
        foreach (var actor in _cloud.Select(d => d.Actor).Distinct(StringComparer.Ordinal).ToList()) Compact(actor);
    }

    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteStartObject("vv");
        foreach (var (actor, n) in _vv.OrderBy(p => p.Key, StringComparer.Ordinal)) w.WriteNumber(actor, n);
        w.WriteEndObject();
        w.WriteStartArray("dc");
        foreach (var d in _cloud.Order()) d.WriteTo(w);
        w.WriteEndArray();
        w.WriteEndObject();
    }

    public static DotContext Read(JsonElement e)
    {
        CrdtJson.RequireObject(e, "a causal context");
        var ctx = new DotContext();
        if (e.TryGetProperty("vv", out var vv))
        {
            CrdtJson.RequireObject(vv, "a causal context's vv");
            foreach (var p in vv.EnumerateObject())
            {
                var n = CrdtJson.ReadCount(p.Value, "a causal context counter");
                Dot.ValidateActor(p.Name);
                if (n > 0) ctx._vv[p.Name] = n;
            }
        }
        if (e.TryGetProperty("dc", out var dc))
        {
            CrdtJson.RequireArray(dc, "a causal context's dc");
            foreach (var d in dc.EnumerateArray()) ctx._cloud.Add(Dot.Read(d));
        }
        ctx.CompactAll();
        return ctx;
    }
}
