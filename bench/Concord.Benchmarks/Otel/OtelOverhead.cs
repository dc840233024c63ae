using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Concord.Client;
using Concord.Diagnostics;
using Concord.Engine;
using Concord.OpenTelemetry;
using Concord.Server;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Concord.Benchmarks.Otel;

/// <summary>
/// <c>otel [--ops N] [--rounds R]</c>: the cost of tracing. Embedded: the in-memory engine bare, wrapped in
/// <see cref="InstrumentedStore"/> with nobody listening, and wrapped with an OpenTelemetry SDK that samples every span
/// (AlwaysOn) and exports it to a no-op exporter, plus the meter. Server: in-process Kestrel on loopback driven by
/// <see cref="ConcordHttpStore"/> over HttpClient, with OpenTelemetry disabled (<c>OTEL_SDK_DISABLED=true</c>) and
/// enabled (ASP.NET Core, HttpClient and Concord spans, AlwaysOn, no-op exporter). Rounds alternate the modes; the
/// figure is the median throughput per mode.
/// </summary>
internal static class OtelOverhead
{
    private static readonly JsonElement Value = JsonDocument.Parse("""{"owner":"agent-7","status":"running","progress":42}""").RootElement.Clone();

    public static int Run(string[] args)
    {
        var ops = 100_000;
        var rounds = 5;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--ops" when i + 1 < args.Length: ops = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--rounds" when i + 1 < args.Length: rounds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                default:
                    Console.Error.WriteLine("usage: otel [--ops N] [--rounds R]");
                    return 2;
            }
        }
        Console.WriteLine($"{Environment.ProcessorCount} cores, {RuntimeInfo()}; {ops} embedded ops and {ops / 10} server ops per round, {rounds} rounds, 50% put / 50% get over 1,000 keys");
        EmbeddedAsync(ops, rounds).GetAwaiter().GetResult();
        ServerAsync(ops / 10, rounds).GetAwaiter().GetResult();
        return 0;
    }

    private static string RuntimeInfo() => System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription;

    private static async Task EmbeddedAsync(int ops, int rounds)
    {
        var results = new Dictionary<string, List<(double Rate, double CpuMicros)>> { ["bare"] = [], ["off"] = [], ["on"] = [] };
        long exported = 0;
        for (var r = 0; r < rounds + 1; r++) // round 0 warms up
        {
            foreach (var mode in results.Keys)
            {
                await using IConcordStore engine = ConcordEngine.CreateInMemory();
                IConcordStore store = mode == "bare" ? engine : new InstrumentedStore(engine);
                var exporter = new CountingExporter();
                using var tracer = mode == "on" ? TracerWith(exporter) : null;
                using var meter = mode == "on" ? MeterWith() : null;
                var measured = await LoopAsync(store, ops, 1);
                tracer?.ForceFlush();
                if (r > 0) results[mode].Add(measured);
                if (mode == "on") exported = exporter.Count;
            }
        }
        Print("embedded (memory)", results, "bare", exported, ops);
    }

    private static async Task ServerAsync(int ops, int rounds)
    {
        var results = new Dictionary<string, List<(double Rate, double CpuMicros)>> { ["off"] = [], ["on"] = [] };
        long exported = 0, exportedOff = 0;
        for (var r = 0; r < rounds + 1; r++)
        {
            foreach (var mode in results.Keys)
            {
                var exporter = new CountingExporter();
                await using var engine = ConcordEngine.CreateInMemory();
                var app = await ConcordServer.CreateAsync(mode == "off" ? ["--OTEL_SDK_DISABLED=true"] : [], o => o.Backend = "memory", engine, b =>
                {
                    b.WebHost.UseUrls("http://127.0.0.1:0");
                    b.Logging.ClearProviders();
                    b.Services.ConfigureOpenTelemetryTracerProvider(t => t.SetSampler(new AlwaysOnSampler()).AddProcessor(new SimpleActivityExportProcessor(exporter)));
                });
                await app.StartAsync();
                try
                {
                    using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };
                    var store = new InstrumentedStore(new ConcordHttpStore(http));
                    var measured = await LoopAsync(store, ops, 2);
                    if (r > 0) results[mode].Add(measured);
                }
                finally
                {
                    await app.StopAsync();
                    await app.DisposeAsync();
                }
                if (mode == "on") exported = exporter.Count;
                else exportedOff = exporter.Count;
            }
        }
        if (exportedOff != 0) throw new InvalidOperationException($"tracing was meant to be off but {exportedOff} spans were exported");
        Print("server (HTTP loopback)", results, "off", exported, ops);
    }

    private static TracerProvider TracerWith(CountingExporter exporter) => Sdk.CreateTracerProviderBuilder()
        .AddConcordInstrumentation().SetSampler(new AlwaysOnSampler()).AddProcessor(new SimpleActivityExportProcessor(exporter)).Build();

    private static MeterProvider MeterWith() => Sdk.CreateMeterProviderBuilder()
        .AddConcordInstrumentation().AddReader(new PeriodicExportingMetricReader(new NullMetricExporter(), 60_000)).Build();

    /// <summary>
    /// Puts and gets alternate over 1,000 keys on <paramref name="workers"/> tasks; returns operations per second and
    /// the process's CPU time per operation in microseconds (less sensitive than wall time to other load on the machine).
    /// </summary>
    private static async Task<(double Rate, double CpuMicros)> LoopAsync(IConcordStore store, int ops, int workers)
    {
        GC.Collect();
        var process = Process.GetCurrentProcess();
        var cpu = process.TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, workers).Select(w => Task.Run(async () =>
        {
            var options = new WriteOptions { Agent = "bench-" + w.ToString(CultureInfo.InvariantCulture) };
            for (var i = 0; i < ops / workers; i++)
            {
                var key = "k/" + ((i * 7919 + w) % 1000).ToString(CultureInfo.InvariantCulture);
                if ((i & 1) == 0) await store.PutAsync("bench", key, Value, options);
                else await store.GetAsync("bench", key);
            }
        })));
        var elapsed = clock.Elapsed;
        process.Refresh();
        return (ops / elapsed.TotalSeconds, (process.TotalProcessorTime - cpu).TotalMicroseconds / ops);
    }

    private static void Print(string title, Dictionary<string, List<(double Rate, double CpuMicros)>> results, string baseline, long spansLastRound, int ops)
    {
        var rate = results.ToDictionary(kv => kv.Key, kv => Median(kv.Value.Select(v => v.Rate).ToList()));
        var cpu = results.ToDictionary(kv => kv.Key, kv => Median(kv.Value.Select(v => v.CpuMicros).ToList()));
        Console.WriteLine($"\n{title}: medians over {results[baseline].Count} rounds; spans exported in the last traced round: {spansLastRound} for {ops} ops");
        Console.WriteLine($"  {"mode",-5} {"ops/s",12} {"vs " + baseline,9} {"CPU µs/op",10} {"vs " + baseline,9}   rounds (ops/s)");
        foreach (var mode in results.Keys)
        {
            Console.WriteLine($"  {mode,-5} {rate[mode],12:N0} {rate[mode] / rate[baseline],8:0.00}× {cpu[mode],10:0.0} {cpu[mode] / cpu[baseline],8:0.00}×   "
                + string.Join(", ", results[mode].Select(v => v.Rate.ToString("N0", CultureInfo.InvariantCulture))));
        }
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private sealed class CountingExporter : BaseExporter<Activity>
    {
        private long _count;

        public long Count => Interlocked.Read(ref _count);

        public override ExportResult Export(in Batch<Activity> batch)
        {
            foreach (var _ in batch) Interlocked.Increment(ref _count);
            return ExportResult.Success;
        }
    }

    private sealed class NullMetricExporter : BaseExporter<Metric>
    {
        public override ExportResult Export(in Batch<Metric> batch) => ExportResult.Success;
    }
}
