using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Concord.Engine;

namespace Concord.Benchmarks.Load;

/// <summary>
/// Contended compare-and-swap goodput: N writer threads each read a key and CAS-write it, retrying a lost race with
/// the version the conflict reports, on 1 key (every writer collides) and on 1,000 keys (collisions are rare).
/// Goodput counts successful CAS per second; the conflict rate is failed attempts ÷ attempts.
/// </summary>
/// <remarks>
/// Writers are dedicated OS threads, so 64 writers are 64 threads time-sliced on the machine's cores — collisions
/// come from preemption as they would in a real process. The peer is the classic lock-free CAS loop on
/// <see cref="ConcurrentDictionary{TKey, TValue}"/>: TryGetValue, then TryUpdate against the value read.
/// </remarks>
internal static class ContentionLoad
{
    private const string Ns = "bench";
    public static readonly int[] WriterCounts = [1, 8, 64];
    public static readonly int[] KeyCounts = [1, 1000];

    public static IEnumerable<Comparison> Run(LoadSettings settings, Action<string> log)
    {
        if (!settings.Quick)
        {
            // Untimed round so the first measured scenario does not pay for tiered JIT compilation.
            RunConcord(1, 1000, settings, seed: -1);
            RunDictionary(1, 1000, settings, seed: -1);
        }
        foreach (var keys in KeyCounts)
        {
            foreach (var writers in WriterCounts)
            {
                var concord = new List<(double Rate, double Conflicts)>();
                var peer = new List<(double Rate, double Conflicts)>();
                for (var run = 0; run < settings.Runs; run++)
                {
                    // Interleave the subjects so drift on a shared machine hits both alike.
                    concord.Add(RunConcord(writers, keys, settings, seed: run));
                    peer.Add(RunDictionary(writers, keys, settings, seed: run));
                    log($"contention {writers,2} writers {keys,4} keys run {run + 1}: concord {concord[^1].Rate,12:N0} CAS/s ({concord[^1].Conflicts:P1} conflicts), dictionary {peer[^1].Rate,12:N0} CAS/s ({peer[^1].Conflicts:P1})");
                }
                yield return new Comparison("contention", $"{writers} writer{(writers == 1 ? "" : "s")}, {keys:N0} key{(keys == 1 ? "" : "s")}", "CAS/s", true,
                    ToSample("Concord memory engine: GetAsync, then PutAsync(Expect.Version) until applied", concord),
                    ToSample("ConcurrentDictionary: TryGetValue, then TryUpdate until applied", peer));
            }
        }
    }

    private static Sample ToSample(string subject, List<(double Rate, double Conflicts)> runs) =>
        new(subject, [.. runs.Select(r => r.Rate)], new() { ["conflict rate"] = [.. runs.Select(r => r.Conflicts)] });

    private static string[] Keys(int count) => [.. Enumerable.Range(0, count).Select(i => $"hot/{i:D4}")];

    private static (double Rate, double Conflicts) RunConcord(int writers, int keyCount, LoadSettings settings, int seed)
    {
        var keys = Keys(keyCount);
        var value = JsonDocument.Parse("""{"n":1}""").RootElement.Clone();
        var engine = ConcordEngine.CreateInMemory();
        try
        {
            foreach (var key in keys) Sync(engine.PutAsync(Ns, key, value));
            return RunThreads(writers, settings, seed, rng =>
            {
                var key = keys[keyCount == 1 ? 0 : rng.Next(keyCount)];
                var version = Sync(engine.GetAsync(Ns, key))?.Version ?? 0;
                for (long attempts = 1; ; attempts++)
                {
                    var result = Sync(engine.PutAsync(Ns, key, value, new WriteOptions { Expect = Expect.Version(version) }));
                    if (result.IsApplied) return attempts;
                    // A conflict carries the current record: retry against it without another read.
                    version = result.Version;
                }
            });
        }
        finally
        {
            engine.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    private static (double Rate, double Conflicts) RunDictionary(int writers, int keyCount, LoadSettings settings, int seed)
    {
        var keys = Keys(keyCount);
        var bytes = Encoding.UTF8.GetBytes("""{"n":1}""");
        var dictionary = new ConcurrentDictionary<string, StoredValue>(StringComparer.Ordinal);
        foreach (var key in keys) dictionary[key] = new StoredValue(1, bytes);
        return RunThreads(writers, settings, seed, rng =>
        {
            var key = keys[keyCount == 1 ? 0 : rng.Next(keyCount)];
            for (long attempts = 1; ; attempts++)
            {
                dictionary.TryGetValue(key, out var current);
                if (dictionary.TryUpdate(key, new StoredValue(current!.Version + 1, bytes), current)) return attempts;
            }
        });
    }

    /// <summary>Runs <paramref name="operation"/> (returns attempts for one success) on N threads; returns goodput and conflict rate.</summary>
    private static (double Rate, double Conflicts) RunThreads(int writers, LoadSettings settings, int seed, Func<Random, long> operation)
    {
        var phases = new Phases();
        var counts = new WorkerCounts[writers];
        using var ready = new CountdownEvent(writers);
        using var go = new ManualResetEventSlim();
        var threads = new Thread[writers];
        for (var w = 0; w < writers; w++)
        {
            var index = w;
            threads[w] = new Thread(() =>
            {
                var rng = new Random(seed * 1000 + index);
                var local = default(WorkerCounts);
                ready.Signal();
                go.Wait();
                while (local.Record(phases, operation(rng))) { }
                counts[index] = local;
            }) { IsBackground = true, Name = $"writer-{index}" };
            threads[w].Start();
        }
        ready.Wait();
        go.Set();
        var seconds = phases.Drive(settings.Warmup, settings.ContentionDuration);
        foreach (var thread in threads) thread.Join();
        var successes = counts.Sum(c => c.Successes);
        var attempts = counts.Sum(c => c.Attempts);
        return (successes / seconds, attempts == 0 ? 0 : (attempts - successes) / (double)attempts);
    }

    internal static T Sync<T>(ValueTask<T> pending) =>
        pending.IsCompletedSuccessfully ? pending.Result : pending.AsTask().GetAwaiter().GetResult();
}
