using System.Collections.Concurrent;
using System.Text.Json;
using Concord.Coordination.Locks;
using Concord.Coordination.Queues;
using Concord.Engine;

namespace Concord.Benchmarks.Load;

/// <summary>
/// <c>load goodput</c>: N agents each repeat one logical update — add 1 to a counter in a record chosen at random
/// from a shared key set — with a fixed think time, on the durable embedded engine, under four strategies:
/// <list type="bullet">
/// <item><b>optimistic</b>: <see cref="ConcordSession.UpdateAsync(string, Func{ConcordRecord?, CancellationToken, ValueTask{JsonElement?}}, UpdateOptions?, CancellationToken)"/>
/// — read, think on the value read, CAS; a lost race recomputes (thinks again) after the session's default backoff;
/// after 10 attempts the update gives up (counted as wasted, not as goodput);</item>
/// <item><b>lock</b>: acquire the key's lock (FIFO wait, lease with fencing token), read, think, write fenced, release;</item>
/// <item><b>patch</b>: think (not on a read value), then an atomic increment (<see cref="ConcordSession.IncrementAsync"/>);</item>
/// <item><b>queue</b>: think, enqueue the intent to the key's partition of a task queue, wait until applied; one
/// consumer per partition leases it, reads the counter and acks with the write as the ack's effect (one transaction).</item>
/// </list>
/// Goodput = applied logical updates per second; wasted = failed attempts (each one a think thrown away) per applied
/// update. After every run the counters are summed and compared with the applied updates counted by the agents:
/// the point is marked unverified (and the command fails) if they differ.
/// </summary>
internal static class GoodputLoad
{
    public static readonly string[] Strategies = ["optimistic", "lock", "patch", "queue"];
    public static readonly int[] Agents = [1, 2, 4, 8, 16, 32];
    public static readonly int[] KeySets = [1, 16, 256];
    public const int MaxConsumers = 16;

    public static TimeSpan Think { get; set; } = TimeSpan.FromMilliseconds(2);

    public static string Timing(LoadSettings s) => $"{Window(s).TotalSeconds:0.##} s after {Warmup(s).TotalSeconds:0.##} s of warm-up";

    private static TimeSpan Window(LoadSettings s) => s.Quick ? TimeSpan.FromMilliseconds(150) : TimeSpan.FromSeconds(0.6);

    private static TimeSpan Warmup(LoadSettings s) => s.Quick ? TimeSpan.FromMilliseconds(50) : TimeSpan.FromMilliseconds(150);

    public static async Task<List<CurvePoint>> RunAsync(LoadSettings settings, Action<string> log, int[]? agents = null, int[]? keySets = null)
    {
        ThreadPool.SetMinThreads(128, 128);
        var points = new List<CurvePoint>();
        var directory = Path.Combine(settings.WorkDirectory, "goodput");
        if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        await using var engine = await ConcordEngine.OpenAsync(new ConcordEngineOptions { DataDirectory = directory });
        var id = 0;
        // Untimed round so the first measured points do not pay for JIT compilation of each strategy's path.
        foreach (var strategy in Strategies) await RunOnceAsync(engine, $"warmup{id++}", strategy, 2, 4, -1, settings);
        foreach (var keys in keySets ?? (settings.Quick ? [1, 16] : KeySets))
        {
            foreach (var n in agents ?? (settings.Quick ? [1, 4] : Agents))
            {
                var builders = Strategies.ToDictionary(s => s, s => new PointBuilder($"goodput-{keys}", s, n));
                for (var run = 0; run < settings.Runs; run++)
                {
                    foreach (var strategy in Strategies)
                    {
                        var ns = $"goodput{id++}";
                        var (figures, verified, applied, total) = await RunOnceAsync(engine, ns, strategy, n, keys, run, settings);
                        var b = builders[strategy];
                        b.Add(figures);
                        b.Add("verified", verified ? 1 : 0);
                        log($"goodput {keys,3} keys {n,2} agents run {run + 1}: {strategy,-10} {figures.Rate,8:N0} updates/s  wasted {figures.WastedPerSuccess,6:0.00}/update  p50 {figures.P50Ms,7:0.00} ms  counters {total} = applied {applied}: {(verified ? "ok" : "MISMATCH")}");
                    }
                }
                points.AddRange(builders.Values.Select(b => b.Build()));
            }
        }
        return points;
    }

    /// <summary>One run of one strategy; returns the figures and whether the counters add up to the applied updates.</summary>
    internal static async Task<(RunFigures Figures, bool Verified, long Applied, long Total)> RunOnceAsync(IConcordStore store, string ns, string strategy, int agents, int keys, int seed, LoadSettings settings)
    {
        var zero = JsonSerializer.SerializeToElement(new { n = 0 });
        await store.TransactAsync(ns, new TxnRequest { Then = [.. Enumerable.Range(0, keys).Select(k => new TxnOp(TxnOpKind.Put, Key(k), zero))] });
        long applied = 0, thinks = 0, appliedAtStart = 0, thinksAtStart = 0, appliedAtEnd = 0, thinksAtEnd = 0;
        void Start() => (appliedAtStart, thinksAtStart) = (Interlocked.Read(ref applied), Interlocked.Read(ref thinks));
        void End() => (appliedAtEnd, thinksAtEnd) = (Interlocked.Read(ref applied), Interlocked.Read(ref thinks));
        async Task ThinkAsync(CancellationToken ct = default)
        {
            Interlocked.Increment(ref thinks);
            await Task.Delay(Think, ct);
        }
        var sessions = Enumerable.Range(0, agents).Select(a => new ConcordSession(store, ns, $"agent-{a}", new SessionOptions { Randomizer = new SeededRandomizer(seed * 100 + a) })).ToArray();
        RunFigures figures;
        switch (strategy)
        {
            case "optimistic":
                figures = Harness.Run(agents, Warmup(settings), Window(settings), seed, async (a, rng) =>
                {
                    var result = await sessions[a].UpdateAsync(Key(rng.Next(keys)), async (record, ct) =>
                    {
                        var n = record?.Value.GetProperty("n").GetInt64() ?? 0;
                        await ThinkAsync(ct);
                        return JsonSerializer.SerializeToElement(new { n = n + 1 });
                    });
                    if (!result.IsApplied) return -result.Attempts;
                    Interlocked.Increment(ref applied);
                    return result.Attempts;
                }, Start, End);
                break;
            case "lock":
            {
                var locks = new StoreLockService(store);
                figures = Harness.Run(agents, Warmup(settings), Window(settings), seed, async (a, rng) =>
                {
                    var key = Key(rng.Next(keys));
                    var grant = await locks.AcquireAsync(ns, "lock-" + key.Replace('/', '-'), new LockRequest { Owner = $"agent-{a}", Wait = TimeSpan.FromSeconds(60), Ttl = TimeSpan.FromSeconds(30) });
                    if (grant.Lease is not { } lease) return -1;
                    await using (lease)
                    {
                        var record = await sessions[a].GetAsync(key);
                        var n = record?.Value.GetProperty("n").GetInt64() ?? 0;
                        await ThinkAsync();
                        var write = await sessions[a].PutAsync(key, JsonSerializer.SerializeToElement(new { n = n + 1 }), Expect.Fenced(lease.Fence));
                        if (!write.IsApplied) return -1;
                    }
                    Interlocked.Increment(ref applied);
                    return 1;
                }, Start, End);
                break;
            }
            case "patch":
                figures = Harness.Run(agents, Warmup(settings), Window(settings), seed, async (a, rng) =>
                {
                    var key = Key(rng.Next(keys));
                    await ThinkAsync();
                    var write = await sessions[a].IncrementAsync(key, 1, "/n");
                    if (!write.IsApplied) return -1;
                    Interlocked.Increment(ref applied);
                    return 1;
                }, Start, End);
                break;
            case "queue":
            {
                var queues = new StoreQueueService(store);
                var partitions = Math.Min(keys, MaxConsumers);
                var waiting = new ConcurrentDictionary<string, TaskCompletionSource>(StringComparer.Ordinal);
                using var stop = new CancellationTokenSource();
                var consumers = Enumerable.Range(0, partitions).Select(p => Task.Run(async () =>
                {
                    var queue = $"updates-{p}";
                    while (!stop.IsCancellationRequested)
                    {
                        LeaseResult leased;
                        try { leased = await queues.LeaseAsync(ns, queue, $"consumer-{p}", TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(200), stop.Token); }
                        catch (OperationCanceledException) { break; }
                        if (leased.Lease is not { } lease) continue;
                        var key = lease.Payload.GetProperty("key").GetString()!;
                        var current = await store.GetAsync(ns, key);
                        var n = current?.Value.GetProperty("n").GetInt64() ?? 0;
                        var ack = await queues.AckAsync(lease, [new TxnOp(TxnOpKind.Put, key, JsonSerializer.SerializeToElement(new { n = n + 1 }), null, Expect.Version(current?.Version ?? 0))]);
                        if (!ack.IsAcked) throw new InvalidOperationException($"ack failed: {ack.Status} {ack.Message}");
                        Interlocked.Increment(ref applied);
                        if (waiting.TryRemove(lease.Payload.GetProperty("id").GetString()!, out var done)) done.TrySetResult();
                    }
                })).ToArray();
                var next = 0L;
                figures = Harness.Run(agents, Warmup(settings), Window(settings), seed, async (a, rng) =>
                {
                    var k = rng.Next(keys);
                    await ThinkAsync();
                    var intent = $"{a}-{Interlocked.Increment(ref next)}";
                    var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    waiting[intent] = done;
                    await queues.EnqueueAsync(ns, $"updates-{k % partitions}", JsonSerializer.SerializeToElement(new { key = Key(k), id = intent }));
                    await done.Task;
                    return 1;
                }, Start, End);
                await stop.CancelAsync();
                await Task.WhenAll(consumers);
                break;
            }
            default:
                throw new ArgumentException($"unknown strategy {strategy}", nameof(strategy));
        }
        // Goodput and waste from counters snapshotted at the window's edges: every applied update and every think
        // (one per attempt) inside the window counts, including those of updates still retrying when it closed.
        var seconds = figures.Seconds;
        var window = appliedAtEnd - appliedAtStart;
        figures = figures with
        {
            Rate = window / seconds,
            WastedPerSuccess = window == 0 ? double.NaN : Math.Max(0, thinksAtEnd - thinksAtStart - window) / (double)window,
        };
        long total = 0;
        for (var k = 0; k < keys; k++) total += (await store.GetAsync(ns, Key(k)))?.Value.GetProperty("n").GetInt64() ?? 0;
        var count = Interlocked.Read(ref applied);
        return (figures, total == count, count, total);
    }

    private static string Key(int k) => $"counter/{k:D4}";
}
