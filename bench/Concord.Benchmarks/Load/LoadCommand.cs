using System.Diagnostics;
using System.Text.Json;
using Concord.Benchmarks.Report;

namespace Concord.Benchmarks.Load;

/// <summary>
/// <c>load contention|durable|memory|all [--quick] [--runs N] [--dir DIR] [--out FILE]</c>: the multi-threaded figures
/// BenchmarkDotNet is awkward for. Prints progress, writes the results as JSON (default artifacts/bench/load.json).
/// </summary>
internal static class LoadCommand
{
    public static readonly JsonSerializerOptions Json = new() { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public const string Usage = "usage: load contention|durable|memory|all|backends|backends-cas|redis-cas|streams|redis-queue|pgqueue|peers|goodput|lab|curves [--quick] [--runs N] [--dir WORKDIR] [--out FILE.json] [--md FILE.md] [--no-servers] [--think MS]";

    public static int Run(string[] args)
    {
        string? suite = null, dir = null, output = null, markdown = null;
        int? runs = null;
        var quick = false;
        var servers = true;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--quick": quick = true; break;
                case "--runs" when i + 1 < args.Length && int.TryParse(args[i + 1], out var r) && r > 0: runs = r; i++; break;
                case "--dir" when i + 1 < args.Length: dir = args[++i]; break;
                case "--out" when i + 1 < args.Length: output = args[++i]; break;
                case "--md" when i + 1 < args.Length: markdown = args[++i]; break;
                case "--no-servers": servers = false; break;
                case "--think" when i + 1 < args.Length && double.TryParse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture, out var ms) && ms >= 0:
                    GoodputLoad.Think = TimeSpan.FromMilliseconds(ms); i++; break;
                case "contention" or "durable" or "memory" or "all" or "backends" or "backends-cas" or "redis-cas" or "streams" or "redis-queue" or "pgqueue" or "peers" or "goodput" or "lab" or "curves" when suite is null: suite = args[i]; break;
                default:
                    Console.Error.WriteLine($"unexpected argument '{args[i]}'\n{Usage}");
                    return 2;
            }
        }
        if (suite is null)
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }
        var settings = LoadSettings.Create(quick, runs, dir);
        Directory.CreateDirectory(settings.WorkDirectory);
        if (suite is "peers" or "goodput" or "lab" or "curves")
        {
            return CurvesCommand.Run(suite, settings, servers, output ?? Path.Combine("artifacts", "bench", quick ? "curves-quick.json" : "curves.json"), "load " + string.Join(' ', args), deleteWork: dir is null);
        }
        output ??= Path.Combine("artifacts", "bench", quick ? "load-quick.json" : "load.json");
        var clock = Stopwatch.StartNew();
        var startedAt = DateTimeOffset.UtcNow;
        var loadAtStart = MachineInfo.LoadAverage();
        void Log(string line) => Console.WriteLine($"[{clock.Elapsed.TotalSeconds,6:0.0}s] {line}");

        var comparisons = new List<Comparison>();
        try
        {
            if (suite is "contention" or "all") comparisons.AddRange(ContentionLoad.Run(settings, Log));
            if (suite is "durable" or "all") comparisons.AddRange(DurableLoad.Run(settings, Log));
            if (suite is "memory" or "all") comparisons.AddRange(MemoryLoad.Run(settings, Log));
            if (suite is "backends") comparisons.AddRange(BackendsLoad.Run(settings, Log));
            if (suite is "backends-cas") comparisons.AddRange(BackendsLoad.RunCas(settings, Log));
            if (suite is "redis-cas") comparisons.AddRange(BackendsLoad.RunRedisCas(settings, Log));
            if (suite is "redis-queue") comparisons.AddRange(BackendsLoad.RunRedisQueue(settings, Log));
            if (suite is "streams") comparisons.AddRange(StreamsLoad.Run(settings, Log));
            if (suite is "pgqueue") comparisons.AddRange(BackendsLoad.RunNativeQueue(settings, Log).GetAwaiter().GetResult());
        }
        finally
        {
            if (dir is null && Directory.Exists(settings.WorkDirectory)) Directory.Delete(settings.WorkDirectory, recursive: true);
        }

        var command = "load " + string.Join(' ', args);
        var results = new LoadResults(command, startedAt, quick, settings.Runs, MachineInfo.Collect(settings.WorkDirectory), loadAtStart, MachineInfo.LoadAverage(), comparisons);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        File.WriteAllText(output, JsonSerializer.Serialize(results, Json));
        Console.WriteLine();
        foreach (var c in comparisons)
        {
            var verdict = c.TargetMet is { } met ? $"  target {c.Target} {(met ? "met" : "MISSED")}" : "";
            Console.WriteLine($"{c.Suite,-10} {c.Scenario,-26} concord {c.Concord.Median,14:N0} {c.Unit,-9} peer {c.Peer.Median,14:N0}  ratio {c.Ratio,7:0.00}×{verdict}");
        }
        if (markdown is not null)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(markdown))!);
            File.WriteAllText(markdown, BackendsReport.Render(results, clock.Elapsed));
            Console.WriteLine($"wrote {markdown}");
        }
        Console.WriteLine($"\nwrote {output} in {clock.Elapsed.TotalSeconds:0.0} s");
        return 0;
    }
}
