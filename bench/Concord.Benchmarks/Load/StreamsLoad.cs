using System.Diagnostics;
using Concord.Coordination.Streams;
using Concord.Postgres;
using Concord.Redis;
using Npgsql;
using StackExchange.Redis;
using StreamPosition = Concord.Coordination.Streams.StreamPosition;

namespace Concord.Benchmarks.Load;

/// <summary>
/// <c>load streams</c>: reading the next 100 events of <c>$all</c> from the middle of the log (from the start with 100 streams), with N streams × 1 event
/// each, on PostgreSQL and Redis: the native event log (one range read) against the per-stream merge (one cursor per
/// stream: list every head, binary-search and read each stream whose head is past the position). Latency per read, ms.
/// Servers from CONCORD_PG / CONCORD_REDIS.
/// </summary>
internal static class StreamsLoad
{
    public static readonly int[] StreamCounts = [100, 10_000];
    private const string Ns = "bench";
    private const int ReadCount = 100;

    public static IEnumerable<Comparison> Run(LoadSettings settings, Action<string> log) => RunAsync(settings, log).GetAwaiter().GetResult();

    private static async Task<List<Comparison>> RunAsync(LoadSettings settings, Action<string> log)
    {
        var results = new List<Comparison>();
        foreach (var streams in settings.Quick ? [100, 1000] : StreamCounts)
        {
            var schema = $"benchs_{Environment.ProcessId}_{streams}";
            try
            {
                await using var pg = await PostgresStore.OpenAsync(new PostgresStoreOptions { ConnectionString = BackendsLoad.PgConnection, Schema = schema });
                results.Add(await MeasureAsync("postgres", pg, streams, settings, log));
            }
            finally
            {
                NpgsqlConnection.ClearAllPools();
                await using var admin = new NpgsqlConnection(BackendsLoad.PgConnection);
                await admin.OpenAsync();
                await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS {schema} CASCADE", admin);
                await drop.ExecuteNonQueryAsync();
            }
            var prefix = $"benchs{Environment.ProcessId}x{streams}";
            await using var mux = await ConnectionMultiplexer.ConnectAsync(BackendsLoad.RedisConnection);
            try
            {
                await using var redis = await RedisStore.OpenAsync(new RedisStoreOptions { Multiplexer = mux, Prefix = prefix });
                results.Add(await MeasureAsync("redis", redis, streams, settings, log));
            }
            finally
            {
                var server = mux.GetServers()[0];
                var keys = new List<RedisKey>();
                await foreach (var key in server.KeysAsync(0, prefix + ":*", 1000)) keys.Add(key);
                foreach (var chunk in keys.Chunk(1000)) await mux.GetDatabase().KeyDeleteAsync(chunk);
            }
        }
        return results;
    }

    private static async Task<Comparison> MeasureAsync(string backend, IConcordStore store, int streams, LoadSettings settings, Action<string> log)
    {
        var native = new StoreStreamService(store);
        var merge = new StoreStreamService(store, new StreamServiceOptions { UseEventLog = false });
        // N streams × 1 event, one append each, 32 appenders.
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, 32).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < streams)
                await native.AppendAsync(Ns, $"agent/{i:D5}", [EventData.From("Step", new { i })], ExpectedVersion.NoStream);
        }));
        var all = await native.ReadAllAsync(Ns, StreamPosition.Start, 10_000);
        // From the middle (half the streams have a head past it) when there are enough events, else from the start.
        var from = all.Count >= 2 * ReadCount ? all[all.Count / 2].Position : StreamPosition.Start;
        var expected = await merge.ReadAllAsync(Ns, from, ReadCount);
        var actual = await native.ReadAllAsync(Ns, from, ReadCount);
        if (!expected.Select(e => (e.Stream, e.Position)).SequenceEqual(actual.Select(e => (e.Stream, e.Position))))
            throw new InvalidOperationException("The native log and the merge disagree");
        var nativeRuns = new List<double>();
        var mergeRuns = new List<double>();
        var reps = settings.Quick ? 3 : 20;
        var mergeReps = streams >= 10_000 ? 3 : reps;
        for (var run = 0; run < settings.Runs; run++)
        {
            nativeRuns.Add(await TimeAsync(() => native.ReadAllAsync(Ns, from, ReadCount), reps));
            mergeRuns.Add(await TimeAsync(() => merge.ReadAllAsync(Ns, from, ReadCount), mergeReps));
            log($"streams {backend,-8} {streams,6} streams run {run + 1}: native log {nativeRuns[^1],9:0.00} ms/read, merge {mergeRuns[^1],9:0.00} ms/read");
        }
        return new Comparison("streams", $"{backend} readall 100 of {streams} streams", "ms/read", false,
            new Sample($"StoreStreamService.ReadAllAsync(next 100 from {(from == StreamPosition.Start ? "the start" : "the middle")}) on {backend}'s native event log", [.. nativeRuns], []),
            new Sample($"the same read through the per-stream merge (StreamServiceOptions.UseEventLog = false), {streams} streams × 1 event", [.. mergeRuns], []));
    }

    private static async Task<double> TimeAsync(Func<ValueTask<IReadOnlyList<RecordedEvent>>> read, int reps)
    {
        await read(); // warm
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < reps; i++)
        {
            if ((await read()).Count != ReadCount) throw new InvalidOperationException("short read");
        }
        return clock.Elapsed.TotalMilliseconds / reps;
    }
}
