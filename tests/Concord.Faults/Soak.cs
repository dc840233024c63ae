using System.Diagnostics;
using System.Text.Json;
using Concord.Client;

namespace Concord.Faults;

public sealed record SoakOptions
{
    public TimeSpan Duration { get; init; } = TimeSpan.FromMinutes(10);
    public int Samples { get; init; } = 20;
    public int Clients { get; init; } = 4;
    public int Keys { get; init; } = 500;

    /// <summary>Whether the client gives every write an idempotency key (its default). <value>Default: true.</value></summary>
    public bool Idempotency { get; init; } = true;

    /// <summary>
    /// The server's <c>IdempotencyMemoryLimit</c>, small so that the bound is reached early in the run even on a slow
    /// machine: the second half then shows whether memory levels off. <value>Default: 32 MiB.</value>
    /// </summary>
    public long IdempotencyMemoryLimit { get; init; } = 32L * 1024 * 1024;

    /// <summary>Largest tolerated RSS growth rate over the second half of the run.</summary>
    public double MaxRssSlopeMiBPerMinute { get; init; } = 8;

    /// <summary>Largest tolerated open-handle growth rate over the second half of the run.</summary>
    public double MaxHandleSlopePerMinute { get; init; } = 5;

    public TextWriter Log { get; init; } = TextWriter.Null;
}

public sealed record SoakSample(TimeSpan At, long Ops, long Errors, double RssMiB, int Handles, double P50Ms, double P99Ms);

public sealed class SoakResult
{
    public required SoakOptions Options { get; init; }
    public List<SoakSample> Samples { get; } = [];
    public double RssSlopeMiBPerMinute { get; set; }
    public double HandleSlopePerMinute { get; set; }
    public double P99DriftRatio { get; set; }
    public List<string> Failures { get; } = [];
    public bool Passed => Failures.Count == 0;
}

/// <summary>
/// A steady mixed load (put, patch, get, list, txn-free) on a fixed key space against an embedded <c>concord serve</c>;
/// samples RSS, open file descriptors and latency percentiles per interval and fails when memory or handles keep growing.
/// </summary>
public static class Soak
{
    public static async Task<SoakResult> RunAsync(SoakOptions o, CancellationToken ct)
    {
        var result = new SoakResult { Options = o };
        var data = Path.Combine(Path.GetTempPath(), "concord-soak-" + Guid.NewGuid().ToString("N")[..8]);
        await using var serve = await ServeProcess.StartAsync("embedded", null, data, ct, new Dictionary<string, string>
        {
            ["Concord__IdempotencyMemoryLimit"] = o.IdempotencyMemoryLimit.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        try
        {
            using var http = new HttpClient { BaseAddress = serve.BaseAddress, Timeout = TimeSpan.FromSeconds(10) };
            var latencies = new List<double>();
            var gate = new Lock();
            long ops = 0, errors = 0;
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var clients = Enumerable.Range(0, o.Clients).Select(c => Task.Run(async () =>
            {
                var store = new ConcordHttpStore(http, new ConcordClientOptions { AutoIdempotency = o.Idempotency });
                var random = new Random(c + 1);
                while (!stop.IsCancellationRequested)
                {
                    var key = "k/" + random.Next(o.Keys);
                    var started = Stopwatch.GetTimestamp();
                    try
                    {
                        switch (random.Next(10))
                        {
                            case < 4:
                                await store.GetAsync("soak", key, null, stop.Token);
                                break;
                            case < 7:
                                await store.PutAsync("soak", key, JsonSerializer.SerializeToElement(new { n = random.Next(), pad = new string('x', random.Next(512)) }), null, stop.Token);
                                break;
                            case < 9:
                                await store.PatchAsync("soak", "counter/" + random.Next(8), JsonPatch.Create().Increment("/n"), null, stop.Token);
                                break;
                            default:
                                await store.ListAsync("soak", new ListRequest { Prefix = "k/", Limit = 50 }, stop.Token);
                                break;
                        }
                        Interlocked.Increment(ref ops);
                    }
                    catch (Exception) when (!stop.IsCancellationRequested)
                    {
                        Interlocked.Increment(ref errors);
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                    var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                    lock (gate) latencies.Add(ms);
                }
            }, ct)).ToArray();

            var interval = o.Duration / o.Samples;
            var clock = Stopwatch.StartNew();
            for (var s = 0; s < o.Samples; s++)
            {
                await Task.Delay(interval, ct);
                double[] window;
                lock (gate)
                {
                    window = [.. latencies];
                    latencies.Clear();
                }
                Array.Sort(window);
                var sample = new SoakSample(clock.Elapsed, Interlocked.Read(ref ops), Interlocked.Read(ref errors), serve.ResidentBytes() / 1048576.0, serve.OpenHandles(),
                    Percentile(window, 0.50), Percentile(window, 0.99));
                result.Samples.Add(sample);
                o.Log.WriteLine($"  {sample.At.TotalSeconds,6:F0}s ops={sample.Ops} errors={sample.Errors} rss={sample.RssMiB:F1}MiB fds={sample.Handles} p50={sample.P50Ms:F2}ms p99={sample.P99Ms:F2}ms");
            }
            await stop.CancelAsync();
            await Task.WhenAll(clients);
        }
        finally
        {
            await serve.DisposeAsync();
            try
            {
                Directory.Delete(data, recursive: true);
            }
            catch (DirectoryNotFoundException)
            {
            }
        }

        // Judge the second half only: the first warms up JIT, pools and caches.
        var tail = result.Samples.Skip(result.Samples.Count / 2).ToList();
        result.RssSlopeMiBPerMinute = Slope(tail.Select(x => (x.At.TotalMinutes, x.RssMiB)));
        result.HandleSlopePerMinute = Slope(tail.Select(x => (x.At.TotalMinutes, (double)x.Handles)));
        var firstP99 = tail.Count > 0 ? tail[0].P99Ms : 0;
        result.P99DriftRatio = firstP99 > 0 ? tail[^1].P99Ms / firstP99 : 1;
        if (result.RssSlopeMiBPerMinute > o.MaxRssSlopeMiBPerMinute)
            result.Failures.Add($"RSS grows {result.RssSlopeMiBPerMinute:F2} MiB/min over the second half (limit {o.MaxRssSlopeMiBPerMinute})");
        if (result.HandleSlopePerMinute > o.MaxHandleSlopePerMinute)
            result.Failures.Add($"open handles grow {result.HandleSlopePerMinute:F2}/min over the second half (limit {o.MaxHandleSlopePerMinute})");
        if (result.Samples.Count > 0 && result.Samples[^1].Errors > result.Samples[^1].Ops / 1000)
            result.Failures.Add($"{result.Samples[^1].Errors} errors in {result.Samples[^1].Ops} operations");
        return result;
    }

    private static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

    /// <summary>Least-squares slope of y over x.</summary>
    public static double Slope(IEnumerable<(double X, double Y)> points)
    {
        var p = points.ToList();
        if (p.Count < 2) return 0;
        var mx = p.Average(q => q.X);
        var my = p.Average(q => q.Y);
        var den = p.Sum(q => (q.X - mx) * (q.X - mx));
        return den == 0 ? 0 : p.Sum(q => (q.X - mx) * (q.Y - my)) / den;
    }
}
