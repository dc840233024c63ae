namespace Concord.Benchmarks.Load;

/// <summary>
/// Curves measured by <c>load peers|goodput|lab</c>: every point is one series (Concord or a peer, or a strategy) at
/// one x (clients, hot keys, history size), with each metric's runs. Written as JSON, rendered by <c>report</c>.
/// </summary>
public sealed record CurveResults(string Command, DateTimeOffset StartedAt, bool Quick, int Runs, MachineInfo Machine,
    Dictionary<string, string> Peers, string LoadAverageAtStart, string LoadAverageAtEnd, List<CurvePoint> Points, List<string> Notes);

/// <summary>One measured point.</summary>
/// <param name="Suite">Which figure it belongs to, e.g. "cas-clients", "cas-keys", "goodput-16", "etcd-txn", "lab-register".</param>
/// <param name="Series">Concord or the peer's name, or the strategy.</param>
/// <param name="X">Clients, hot keys, history size…</param>
/// <param name="Metrics">Runs per metric, e.g. "ops/s", "p50 ms", "p99 ms", "wasted/success", "verified".</param>
public sealed record CurvePoint(string Suite, string Series, double X, Dictionary<string, double[]> Metrics)
{
    public double Median(string metric) => Metrics.TryGetValue(metric, out var runs) ? Stats.Median(runs) : double.NaN;

    public double Min(string metric) => Metrics.TryGetValue(metric, out var runs) && runs.Length > 0 ? runs.Min() : double.NaN;

    public double Max(string metric) => Metrics.TryGetValue(metric, out var runs) && runs.Length > 0 ? runs.Max() : double.NaN;
}

/// <summary>Collects the runs of one point, metric by metric.</summary>
internal sealed class PointBuilder(string suite, string series, double x)
{
    private readonly Dictionary<string, List<double>> _metrics = [];

    public void Add(string metric, double value)
    {
        if (!_metrics.TryGetValue(metric, out var list)) _metrics[metric] = list = [];
        list.Add(value);
    }

    public void Add(RunFigures run)
    {
        Add("ops/s", run.Rate);
        Add("p50 ms", run.P50Ms);
        Add("p99 ms", run.P99Ms);
        Add("wasted/success", run.WastedPerSuccess);
    }

    public bool HasRuns => _metrics.Count > 0;

    public CurvePoint Build() => new(suite, series, x, _metrics.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray()));
}

/// <summary>What one timed run measured: successes per second, latency percentiles of successful operations, and wasted attempts per success.</summary>
public readonly record struct RunFigures(double Rate, double P50Ms, double P99Ms, double WastedPerSuccess, double Seconds = double.NaN);
