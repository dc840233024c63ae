using System.Diagnostics;

namespace Concord.Benchmarks.Load;

/// <summary>
/// Closed-loop driver for the curve suites: N async clients repeat one operation through a warm-up and a timed
/// window; the window's successes per second, the latency of each successful operation (call to return, retries
/// included) and the failed attempts per success are reported.
/// </summary>
internal static class Harness
{
    /// <summary>
    /// Runs <paramref name="operation"/> (client index, seeded random → attempts spent on one success, or minus the
    /// attempts wasted by a logical update that gave up) on
    /// <paramref name="clients"/> tasks. An operation counts when it completes inside the window (wherever it started), so slow, retried operations are
    /// not left out; <paramref name="atWindowStart"/> and <paramref name="atWindowEnd"/> run right at its edges (for
    /// counter snapshots).
    /// </summary>
    public static RunFigures Run(int clients, TimeSpan warmup, TimeSpan window, int seed, Func<int, Random, Task<long>> operation,
        Action? atWindowStart = null, Action? atWindowEnd = null)
    {
        var phases = new Phases();
        var tasks = Enumerable.Range(0, clients).Select(i => Task.Run(async () =>
        {
            var rng = new Random(seed * 1000 + i);
            var latencies = new List<double>(4096);
            long successes = 0, attempts = 0;
            while (true)
            {
                if (phases.Current == Phases.Stopped) break;
                var started = Stopwatch.GetTimestamp();
                var spent = await operation(i, rng).ConfigureAwait(false);
                var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                if (phases.Current == Phases.Measuring)
                {
                    if (spent > 0)
                    {
                        successes++;
                        attempts += spent;
                        latencies.Add(elapsed);
                    }
                    else attempts -= spent; // a logical update that gave up: all its attempts were wasted
                }
            }
            return (successes, attempts, latencies);
        })).ToArray();
        var seconds = phases.Drive(warmup, window, atWindowStart, atWindowEnd);
        var results = Task.WhenAll(tasks).GetAwaiter().GetResult();
        var successes = results.Sum(r => r.successes);
        var attempts = results.Sum(r => r.attempts);
        var all = results.SelectMany(r => r.latencies).Order().ToArray();
        return new RunFigures(successes / seconds, Percentile(all, 0.50), Percentile(all, 0.99),
            successes == 0 ? double.NaN : (attempts - successes) / (double)successes, seconds);
    }

    public static double Percentile(double[] sorted, double q) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
}
