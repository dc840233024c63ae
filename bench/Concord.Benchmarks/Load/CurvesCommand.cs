using System.Diagnostics;
using System.Text.Json;

namespace Concord.Benchmarks.Load;

/// <summary>Runs the curve suites (<c>peers</c>, <c>goodput</c>, <c>lab</c>, or all of them as <c>curves</c>) and writes a <see cref="CurveResults"/> file.</summary>
internal static class CurvesCommand
{
    public static int Run(string suite, LoadSettings settings, bool servers, string output, string command, bool deleteWork)
    {
        var clock = Stopwatch.StartNew();
        var startedAt = DateTimeOffset.UtcNow;
        var loadAtStart = MachineInfo.LoadAverage();
        void Log(string line) => Console.WriteLine($"[{clock.Elapsed.TotalSeconds,6:0.0}s] {line}");
        var points = new List<CurvePoint>();
        var peers = new Dictionary<string, string>(StringComparer.Ordinal);
        var notes = new List<string>();
        try
        {
            if (suite is "peers" or "curves")
            {
                var (p, v, n) = PeersLoad.RunAsync(settings, servers, Log).GetAwaiter().GetResult();
                points.AddRange(p);
                foreach (var kv in v) peers[kv.Key] = kv.Value;
                notes.AddRange(n);
            }
            if (suite is "goodput" or "curves")
            {
                points.AddRange(GoodputLoad.RunAsync(settings, Log).GetAwaiter().GetResult());
                peers["think"] = GoodputLoad.Think.TotalMilliseconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
                peers["timing:goodput"] = GoodputLoad.Timing(settings);
            }
            if (suite is "lab" or "curves") points.AddRange(LabLoad.Run(settings, Log));
        }
        finally
        {
            if (deleteWork && Directory.Exists(settings.WorkDirectory)) Directory.Delete(settings.WorkDirectory, recursive: true);
        }
        var results = new CurveResults(command, startedAt, settings.Quick, settings.Runs, MachineInfo.Collect(settings.WorkDirectory), peers,
            loadAtStart, MachineInfo.LoadAverage(), points, notes);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        File.WriteAllText(output, JsonSerializer.Serialize(results, LoadCommand.Json));
        var unverified = points.Where(p => p.Metrics.TryGetValue("verified", out var v) && v.Any(x => x != 1)).ToList();
        foreach (var p in unverified) Console.Error.WriteLine($"UNVERIFIED: {p.Suite} {p.Series} at {p.X}: counters did not add up to the applied updates");
        Console.WriteLine($"\nwrote {output} in {clock.Elapsed.TotalSeconds:0.0} s");
        return unverified.Count == 0 ? 0 : 1;
    }
}
