namespace Concord.Benchmarks.Load;

/// <summary>Everything one <c>load</c> invocation measured, as written to its JSON file.</summary>
/// <remarks>The load averages show how busy the (shared) machine was while the figures were taken.</remarks>
public sealed record LoadResults(string Command, DateTimeOffset StartedAt, bool Quick, int Runs, MachineInfo Machine, string LoadAverageAtStart, string LoadAverageAtEnd, List<Comparison> Comparisons);

/// <summary>Concord and its peer measured on the same scenario in the same process, runs interleaved.</summary>
/// <param name="Suite">contention, durable or memory.</param>
/// <param name="Scenario">Human-readable scenario, e.g. "64 writers, 1 key".</param>
/// <param name="Unit">Unit of the runs, e.g. "CAS/s".</param>
/// <param name="HigherIsBetter">True for throughputs, false for sizes and latencies.</param>
/// <param name="Concord">Concord's runs.</param>
/// <param name="Peer">The peer's runs.</param>
/// <param name="Target">The target for Concord ÷ peer, if any (e.g. "≥ 5×").</param>
public sealed record Comparison(string Suite, string Scenario, string Unit, bool HigherIsBetter, Sample Concord, Sample Peer, Target? Target = null)
{
    /// <summary>Concord's median divided by the peer's median.</summary>
    public double Ratio => Peer.Median == 0 ? double.NaN : Concord.Median / Peer.Median;

    /// <summary>Null without a target; otherwise whether the median ratio meets it.</summary>
    public bool? TargetMet => Target is null ? null : Target.IsMet(Ratio);
}

/// <summary>A target on the ratio Concord ÷ peer.</summary>
/// <param name="AtLeast">Ratio must be ≥ this (throughput targets); null when only <paramref name="AtMost"/> applies.</param>
/// <param name="AtMost">Ratio must be ≤ this (time and size targets).</param>
public sealed record Target(double? AtLeast, double? AtMost)
{
    public bool IsMet(double ratio) => (AtLeast is not { } lo || ratio >= lo) && (AtMost is not { } hi || ratio <= hi);

    public override string ToString() => AtLeast is { } lo ? $"≥ {lo:0.##}×" : $"≤ {AtMost:0.##}×";
}

/// <summary>The runs of one subject, with secondary per-run figures (e.g. conflict rate).</summary>
public sealed record Sample(string Subject, double[] Runs, Dictionary<string, double[]> Extras)
{
    public double Median => Stats.Median(Runs);
    public double Min => Runs.Length == 0 ? double.NaN : Runs.Min();
    public double Max => Runs.Length == 0 ? double.NaN : Runs.Max();

    /// <summary>Half the min–max range relative to the median, in percent.</summary>
    public double SpreadPercent => Median == 0 ? 0 : (Max - Min) / 2 / Median * 100;
}

public static class Stats
{
    public static double Median(IReadOnlyCollection<double> values)
    {
        if (values.Count == 0) return double.NaN;
        var sorted = values.Order().ToArray();
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
