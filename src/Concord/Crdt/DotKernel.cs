namespace Concord.Crdt;

/// <summary>The join of dot stores under causal contexts (Almeida et al., "Delta State Replicated Data Types").</summary>
internal static class DotKernel
{
    /// <summary>
    /// A dot survives when both sides have it, or one side has it and the other side's context has not seen it
    /// (had it been seen and is now absent, it was removed). Values of a dot on both sides are joined with <paramref name="both"/>.
    /// </summary>
    public static Dictionary<Dot, TValue> Join<TValue>(Dictionary<Dot, TValue> a, DotContext contextA, Dictionary<Dot, TValue> b, DotContext contextB,
        Func<TValue, TValue, TValue> both)
    {
        var result = new Dictionary<Dot, TValue>(a.Count + b.Count);
        foreach (var (dot, value) in a)
        {
            if (b.TryGetValue(dot, out var other)) result[dot] = both(value, other);
            else if (!contextB.Contains(dot)) result[dot] = value;
        }
        foreach (var (dot, value) in b)
        {
            if (!a.ContainsKey(dot) && !contextA.Contains(dot)) result[dot] = value;
        }
        return result;
    }

    public static HashSet<Dot> Join(HashSet<Dot> a, DotContext contextA, HashSet<Dot> b, DotContext contextB)
    {
        var result = new HashSet<Dot>();
        foreach (var dot in a)
        {
            if (b.Contains(dot) || !contextB.Contains(dot)) result.Add(dot);
        }
        foreach (var dot in b)
        {
            if (!a.Contains(dot) && !contextA.Contains(dot)) result.Add(dot);
        }
        return result;
    }

    public static DotContext JoinContexts(DotContext a, DotContext b)
    {
        var c = a.Clone();
        c.Join(b);
        return c;
    }
}
