using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Concord.Coordination.Queues;
using Concord.Postgres;
using Concord.Redis;
using Npgsql;
using StackExchange.Redis;

namespace Concord.Benchmarks.Load;

/// <summary>
/// Concord on the real engines next to the engines' own tools, on the same server in the same run:
/// conditional updates on PostgreSQL vs <c>pgbench -N</c>; compare-and-swap on Redis vs <c>redis-benchmark -t set</c>;
/// a queue (enqueue + lease + ack through <see cref="StoreQueueService"/> on PostgreSQL) vs a hand-written
/// <c>FOR UPDATE SKIP LOCKED</c> loop. Servers come from CONCORD_PG / CONCORD_REDIS (scripts/ensure-deps.sh).
/// </summary>
/// <remarks>
/// Concord's clients are async tasks sharing one store (one Npgsql pool, one Redis multiplexer), its natural client
/// model. Every scratch object is removed afterwards: the pgbench database, Concord's schema and key prefix, the
/// benchmark's Redis keys (in a database of their own, <see cref="RedisBenchDb"/>).
/// </remarks>
internal static partial class BackendsLoad
{
    public static readonly int[] ClientCounts = [1, 16, 64];
    public static readonly int[] QueueClientCounts = [1, 16];
    public const int Keys = 10_000;
    public const int PgbenchScale = 10;
    public const int RedisBenchDb = 9;
    private const string Ns = "bench";
    private static readonly Target SingleKeyTarget = new(AtLeast: 0.5, AtMost: null);

    public static string PgConnection => Environment.GetEnvironmentVariable("CONCORD_PG") ?? "Host=127.0.0.1;Port=5432;Username=postgres;Password=concord;Database=concord_test";

    public static string RedisConnection => Environment.GetEnvironmentVariable("CONCORD_REDIS") ?? "127.0.0.1:6379";

    public static IEnumerable<Comparison> Run(LoadSettings settings, Action<string> log)
    {
        var results = new List<Comparison>();
        results.AddRange(RunPostgres(settings, log).GetAwaiter().GetResult());
        results.AddRange(RunNativeQueue(settings, log).GetAwaiter().GetResult());
        results.AddRange(RunRedis(settings, log).GetAwaiter().GetResult());
        results.AddRange(RunRedisQueue(settings, log));
        return results;
    }

    /// <summary>Only the single-key rows (PostgreSQL and Redis CAS next to pgbench and redis-benchmark): for iterating on the stores.</summary>
    public static IEnumerable<Comparison> RunCas(LoadSettings settings, Action<string> log)
    {
        var results = new List<Comparison>();
        results.AddRange(RunPostgres(settings, log, withQueue: false).GetAwaiter().GetResult());
        results.AddRange(RunRedis(settings, log).GetAwaiter().GetResult());
        return results;
    }

    /// <summary>Only the Redis CAS rows (a profiling target).</summary>
    public static IEnumerable<Comparison> RunRedisCas(LoadSettings settings, Action<string> log) => RunRedis(settings, log).GetAwaiter().GetResult();

    private static TimeSpan Duration(LoadSettings s) => s.Quick ? TimeSpan.FromSeconds(1) : TimeSpan.FromSeconds(4);

    /// <summary>Long enough for every client to open its connection before the window starts.</summary>
    private static TimeSpan Warmup(LoadSettings s) => s.Quick ? TimeSpan.FromSeconds(0.5) : TimeSpan.FromSeconds(1);

    // ------------------------------------------------------------------ PostgreSQL

    private static async Task<List<Comparison>> RunPostgres(LoadSettings settings, Action<string> log, bool withQueue = true)
    {
        var results = new List<Comparison>();
        var builder = new NpgsqlConnectionStringBuilder(PgConnection) { MaxPoolSize = 80 };
        var scratchDb = $"concord_pgbench_{Environment.ProcessId}";
        var schema = $"bench_{Environment.ProcessId}";
        await using (var admin = new NpgsqlConnection(builder.ConnectionString))
        {
            await admin.OpenAsync();
            await Exec(admin, $"DROP DATABASE IF EXISTS {scratchDb}");
            await Exec(admin, $"CREATE DATABASE {scratchDb}");
        }
        var scratch = new NpgsqlConnectionStringBuilder(builder.ConnectionString) { Database = scratchDb };
        string server;
        await using (var info = new NpgsqlConnection(builder.ConnectionString))
        {
            await info.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT 'PostgreSQL ' || current_setting('server_version') || ', synchronous_commit=' || current_setting('synchronous_commit') || ', fsync=' || current_setting('fsync') || ', shared_buffers=' || current_setting('shared_buffers')", info);
            server = (string)(await cmd.ExecuteScalarAsync())!;
        }
        try
        {
            log($"pgbench -i -s {PgbenchScale} {scratchDb}");
            RunTool("pgbench", $"-i -q -s {PgbenchScale} -h {builder.Host} -p {builder.Port} -U {builder.Username} {scratchDb}", builder.Password);
            // Our own data source, so its idle connections can be closed before pgbench opens its own (max_connections is 100).
            await using var concordSource = NpgsqlDataSource.Create(builder.ConnectionString);
            await using var store = await PostgresStore.OpenAsync(new PostgresStoreOptions { DataSource = concordSource, Schema = schema });
            await SeedAsync(store);
            var known = new ConcurrentDictionary<string, long>(StringComparer.Ordinal);
            foreach (var clients in ClientCounts)
            {
                var concord = new List<(double Rate, double Conflicts)>();
                var casOp = new List<(double Rate, double Conflicts)>();
                var peer = new List<double>();
                for (var run = 0; run < settings.Runs; run++)
                {
                    casOp.Add(RunWorkers(clients, Warmup(settings), Duration(settings), run, (_, rng) => CasOpAsync(store, known, rng)));
                    concord.Add(RunWorkers(clients, Warmup(settings), Duration(settings), run, (_, rng) => CasAsync(store, known, rng)));
                    concordSource.Clear();
                    var tps = RunTool("pgbench", PgbenchArgs(builder, scratchDb, clients, Duration(settings)), builder.Password);
                    peer.Add(ParseDouble(TpsPattern().Match(tps), tps));
                    log($"postgres {clients,2} clients run {run + 1}: concord CAS op {casOp[^1].Rate,8:N0}/s ({casOp[^1].Conflicts:P1} conflicts), read+CAS {concord[^1].Rate,8:N0}/s ({concord[^1].Conflicts:P1} conflicts), pgbench -N {peer[^1],8:N0} tps");
                }
                var pgbench = new Sample($"pgbench {PgbenchArgs(builder, "DB", clients, Duration(settings))} (scale {PgbenchScale}) on {server}", [.. peer], []);
                results.Add(new Comparison("postgres-op", $"{clients} client{(clients == 1 ? "" : "s")}", "CAS/s", true,
                    new Sample(CasOpSubject("PostgresStore"), [.. casOp.Select(c => c.Rate)], new() { ["conflict rate"] = [.. casOp.Select(c => c.Conflicts)] }),
                    pgbench, SingleKeyTarget));
                results.Add(new Comparison("postgres", $"{clients} client{(clients == 1 ? "" : "s")}", "updates/s", true,
                    new Sample("Concord PostgresStore: GetAsync, then PutAsync(Expect.Version) until applied, random key of 10,000", [.. concord.Select(c => c.Rate)],
                        new() { ["conflict rate"] = [.. concord.Select(c => c.Conflicts)] }),
                    pgbench, null));
            }

            // Queue: enqueue + lease + ack through the store, vs INSERT + DELETE … SKIP LOCKED … RETURNING on a plain table.
            if (!withQueue) return results;
            await using (var peerConn = new NpgsqlConnection(scratch.ConnectionString))
            {
                await peerConn.OpenAsync();
                await Exec(peerConn, "CREATE TABLE bench_jobs (id bigserial PRIMARY KEY, payload text NOT NULL)");
            }
            await using var peerSource = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(scratch.ConnectionString) { MaxPoolSize = 80 }.ConnectionString);
            var queues = new StoreQueueService(store);
            var payload = JsonDocument.Parse("""{"job":"resize","n":1}""").RootElement.Clone();
            foreach (var clients in QueueClientCounts)
            {
                var concord = new List<(double Rate, double Conflicts)>();
                var peer = new List<(double Rate, double Conflicts)>();
                for (var run = 0; run < settings.Runs; run++)
                {
                    var queue = $"q{clients}-{run}";
                    concord.Add(RunWorkers(clients, Warmup(settings), Duration(settings), run, (i, _) => QueueCycleAsync(queues, queue, payload, $"c{i}")));
                    peer.Add(RunWorkers(clients, Warmup(settings), Duration(settings), run, (_, _) => SkipLockedCycleAsync(peerSource)));
                    log($"queue    {clients,2} clients run {run + 1}: concord {concord[^1].Rate,8:N0} tasks/s, SKIP LOCKED loop {peer[^1].Rate,8:N0} tasks/s");
                }
                results.Add(new Comparison("queue", $"{clients} client{(clients == 1 ? "" : "s")}", "tasks/s", true,
                    new Sample("StoreQueueService on PostgresStore: EnqueueAsync, LeaseAsync (30 s visibility), AckAsync", [.. concord.Select(c => c.Rate)], new() { ["empty leases"] = [.. concord.Select(c => c.Conflicts)] }),
                    new Sample($"INSERT INTO jobs; DELETE FROM jobs WHERE id = (SELECT id FROM jobs ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id, payload (autocommit each) on {server}",
                        [.. peer.Select(c => c.Rate)], new() { ["empty leases"] = [.. peer.Select(c => c.Conflicts)] })));
            }
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await using var admin = new NpgsqlConnection(builder.ConnectionString);
            await admin.OpenAsync();
            await Exec(admin, $"DROP SCHEMA IF EXISTS {schema} CASCADE");
            await Exec(admin, $"DROP DATABASE IF EXISTS {scratchDb} WITH (FORCE)");
        }
        return results;
    }

    public static readonly int[] NativeQueueConsumerCounts = [1, 4, 16];
    public const int BloatCycles = 10_000;

    /// <summary>
    /// The native queue (<see cref="PostgresQueueService"/>) against the raw SKIP LOCKED loop, alternating in the same run
    /// on the same server, at 1/4/16 consumers; then table bloat after <see cref="BloatCycles"/> enqueue-lease-ack cycles.
    /// </summary>
    public static async Task<List<Comparison>> RunNativeQueue(LoadSettings settings, Action<string> log)
    {
        var results = new List<Comparison>();
        // Auto-prepared statements for both sides (the native queue's statements are CTEs worth planning once).
        var builder = new NpgsqlConnectionStringBuilder(PgConnection) { MaxPoolSize = 80, MaxAutoPrepare = 32 };
        var schema = $"benchq_{Environment.ProcessId}";
        try
        {
            await using var source = NpgsqlDataSource.Create(builder.ConnectionString);
            await using var store = await PostgresStore.OpenAsync(new PostgresStoreOptions { DataSource = source, Schema = schema });
            await using (var conn = await source.OpenConnectionAsync())
                await Exec(conn, $"CREATE TABLE {schema}.bench_jobs (id bigserial PRIMARY KEY, payload text NOT NULL)");
            await using var queues = new PostgresQueueService(store);
            var payload = JsonDocument.Parse("""{"job":"resize","n":1}""").RootElement.Clone();
            var server = await ServerInfoAsync(source);
            foreach (var clients in NativeQueueConsumerCounts)
            {
                var native = new List<(double Rate, double Conflicts)>();
                var peer = new List<(double Rate, double Conflicts)>();
                for (var run = 0; run < settings.Runs; run++)
                {
                    var queue = $"n{clients}-{run}";
                    native.Add(RunWorkers(clients, Warmup(settings), Duration(settings), run, (i, _) => QueueCycleAsync(queues, queue, payload, $"c{i}")));
                    peer.Add(RunWorkers(clients, Warmup(settings), Duration(settings), run, (_, _) => SkipLockedCycleAsync(source, $"{schema}.bench_jobs")));
                    log($"pgqueue  {clients,2} consumers run {run + 1}: native {native[^1].Rate,8:N0} tasks/s, SKIP LOCKED loop {peer[^1].Rate,8:N0} tasks/s");
                }
                results.Add(new Comparison("pgqueue", $"{clients} consumer{(clients == 1 ? "" : "s")}", "tasks/s", true,
                    new Sample("PostgresQueueService (native): EnqueueAsync, LeaseAsync (30 s visibility), AckAsync", [.. native.Select(c => c.Rate)], new() { ["empty leases"] = [.. native.Select(c => c.Conflicts)] }),
                    new Sample($"INSERT INTO jobs; DELETE FROM jobs WHERE id = (SELECT id FROM jobs ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id, payload (autocommit each), same database, on {server}",
                        [.. peer.Select(c => c.Rate)], new() { ["empty leases"] = [.. peer.Select(c => c.Conflicts)] }),
                    new Target(AtLeast: 0.5, AtMost: null)));
            }
            await MeasureBloatAsync(source, queues, schema, payload, log);
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await using var admin = new NpgsqlConnection(builder.ConnectionString);
            await admin.OpenAsync();
            await Exec(admin, $"DROP SCHEMA IF EXISTS {schema} CASCADE");
        }
        return results;
    }

    /// <summary>
    /// <see cref="BloatCycles"/> enqueue-lease-ack cycles from 4 consumers on a fresh queue table and on a fresh raw table,
    /// then pg_stat_user_tables (after the backends exit, so their counters are flushed) and the relation sizes, before and
    /// after a manual VACUUM.
    /// </summary>
    private static async Task MeasureBloatAsync(NpgsqlDataSource source, PostgresQueueService queues, string schema, JsonElement payload, Action<string> log)
    {
        await using (var conn = await source.OpenConnectionAsync())
        {
            await Exec(conn, $"TRUNCATE {schema}.queue_tasks, {schema}.bench_jobs; SELECT pg_stat_reset_single_table_counters('{schema}.queue_tasks'::regclass); SELECT pg_stat_reset_single_table_counters('{schema}.bench_jobs'::regclass)");
        }
        const int consumers = 4;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, consumers).Select(c => Task.Run(async () =>
        {
            for (var i = 0; i < BloatCycles / consumers; i++) await QueueCycleAsync(queues, "bloat", payload, $"c{c}");
        })));
        var nativeSeconds = clock.Elapsed.TotalSeconds;
        clock.Restart();
        await Task.WhenAll(Enumerable.Range(0, consumers).Select(_ => Task.Run(async () =>
        {
            for (var i = 0; i < BloatCycles / consumers; i++) await SkipLockedCycleAsync(source, $"{schema}.bench_jobs");
        })));
        var rawSeconds = clock.Elapsed.TotalSeconds;
        source.Clear(); // backends flush their table statistics when they exit
        await Task.Delay(TimeSpan.FromSeconds(2));
        foreach (var (label, table, seconds) in new[] { ("native queue_tasks", "queue_tasks", nativeSeconds), ("raw bench_jobs", "bench_jobs", rawSeconds) })
        {
            log($"bloat    {label}: {BloatCycles:N0} cycles from {consumers} consumers in {seconds:0.0} s; {await TableStatsAsync(source, schema, table)}");
            await using (var conn = await source.OpenConnectionAsync()) await Exec(conn, $"VACUUM {schema}.{table}");
            log($"bloat    {label} after VACUUM: {await TableSizeAsync(source, schema, table)}");
        }
    }

    private static async Task<string> TableStatsAsync(NpgsqlDataSource source, string schema, string table)
    {
        await using var cmd = source.CreateCommand($"""
            SELECT format('live rows %s, n_tup_ins %s, n_tup_upd %s (HOT %s), n_tup_del %s, n_dead_tup %s, autovacuums %s, heap %s kB, heap+indexes+toast %s kB',
                (SELECT count(*) FROM {schema}.{table}), n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del, n_dead_tup, autovacuum_count,
                pg_relation_size(relid) / 1024, pg_total_relation_size(relid) / 1024)
            FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = $2
            """);
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = schema });
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = table });
        return (string)(await cmd.ExecuteScalarAsync())!;
    }

    private static async Task<string> TableSizeAsync(NpgsqlDataSource source, string schema, string table)
    {
        await using var cmd = source.CreateCommand($"SELECT format('heap %s kB, heap+indexes+toast %s kB', pg_relation_size('{schema}.{table}') / 1024, pg_total_relation_size('{schema}.{table}') / 1024)");
        return (string)(await cmd.ExecuteScalarAsync())!;
    }

    private static async Task<string> ServerInfoAsync(NpgsqlDataSource source)
    {
        await using var cmd = source.CreateCommand("SELECT 'PostgreSQL ' || current_setting('server_version') || ', synchronous_commit=' || current_setting('synchronous_commit') || ', fsync=' || current_setting('fsync') || ', shared_buffers=' || current_setting('shared_buffers')");
        return (string)(await cmd.ExecuteScalarAsync())!;
    }

    private static string PgbenchArgs(NpgsqlConnectionStringBuilder b, string db, int clients, TimeSpan duration) =>
        $"-N -n -c {clients} -j {Math.Min(clients, Environment.ProcessorCount)} -T {Math.Max(3, (int)duration.TotalSeconds)} -h {b.Host} -p {b.Port} -U {b.Username} {db}";

    [GeneratedRegex(@"tps = ([0-9.]+)")]
    private static partial Regex TpsPattern();

    private static async Task SeedAsync(IConcordStore store)
    {
        var value = JsonDocument.Parse("""{"n":0}""").RootElement.Clone();
        for (var start = 0; start < Keys; start += 1000)
        {
            var ops = Enumerable.Range(start, 1000).Select(i => new TxnOp(TxnOpKind.Put, Key(i), value, null, Expect.Any, null)).ToList();
            await store.TransactAsync(Ns, new TxnRequest { Then = ops });
        }
    }

    private static string Key(int i) => $"k/{i:D5}";

    private static readonly JsonElement s_value = JsonDocument.Parse("""{"n":1}""").RootElement.Clone();

    /// <summary>One conditional update of a random key: read the version, write expecting it, retry a lost race with the version the conflict carries.</summary>
    private static async Task<long> CasAsync(IConcordStore store, ConcurrentDictionary<string, long> known, Random rng)
    {
        var key = Key(rng.Next(Keys));
        var version = (await store.GetAsync(Ns, key))?.Version ?? 0;
        return await PutUntilAppliedAsync(store, known, key, version);
    }

    private static string CasOpSubject(string store) =>
        $"Concord {store}: PutAsync(Expect.Version(v)) of a random key of 10,000, v = the version the clients last saw for the key "
        + "(a writer that remembers what it wrote, as an agent keeping its record's version does); a lost race retries with the version the conflict carries";

    /// <summary>
    /// One compare-and-swap: write a random key expecting the version last seen for it (no read first); a lost race
    /// (another client wrote the key since) retries with the version the conflict carries.
    /// </summary>
    private static Task<long> CasOpAsync(IConcordStore store, ConcurrentDictionary<string, long> known, Random rng)
    {
        var key = Key(rng.Next(Keys));
        return PutUntilAppliedAsync(store, known, key, known.GetValueOrDefault(key, 1));
    }

    private static async Task<long> PutUntilAppliedAsync(IConcordStore store, ConcurrentDictionary<string, long> known, string key, long version)
    {
        for (long attempts = 1; ; attempts++)
        {
            var result = await store.PutAsync(Ns, key, s_value, new WriteOptions { Expect = Expect.Version(version) });
            known[key] = result.Version;
            if (result.IsApplied) return attempts;
            version = result.Version;
        }
    }

    /// <summary>Enqueue one task, lease one, ack it. Returns attempts: 1 when a task was acked, 2 when the lease found the queue empty (counted as a failed attempt).</summary>
    private static async Task<long> QueueCycleAsync(IQueueService queues, string queue, JsonElement payload, string consumer, IReadOnlyList<TxnOp>? effects = null)
    {
        await queues.EnqueueAsync(Ns, queue, payload);
        for (long attempts = 1; ; attempts++)
        {
            var lease = await queues.LeaseAsync(Ns, queue, consumer, TimeSpan.FromSeconds(30));
            if (lease.Lease is { } l)
            {
                var ack = await queues.AckAsync(l, effects);
                if (ack.IsAcked) return attempts;
            }
            else await queues.EnqueueAsync(Ns, queue, payload); // another worker took ours: add work rather than spin
        }
    }

    private static async Task<long> SkipLockedCycleAsync(NpgsqlDataSource source, string table = "bench_jobs")
    {
        await using (var insert = source.CreateCommand($"INSERT INTO {table} (payload) VALUES ($1)"))
        {
            insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = """{"job":"resize","n":1}""" });
            await insert.ExecuteNonQueryAsync();
        }
        for (long attempts = 1; ; attempts++)
        {
            await using var take = source.CreateCommand($"DELETE FROM {table} WHERE id = (SELECT id FROM {table} ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id, payload");
            await using (var reader = await take.ExecuteReaderAsync())
            {
                if (await reader.ReadAsync()) return attempts;
            }
            await using var again = source.CreateCommand($"INSERT INTO {table} (payload) VALUES ('{{}}')");
            await again.ExecuteNonQueryAsync(); // another worker took ours: add work rather than spin, as the Concord loop does
        }
    }

    // ------------------------------------------------------------------ Redis

    private static async Task<List<Comparison>> RunRedis(LoadSettings settings, Action<string> log)
    {
        var results = new List<Comparison>();
        var prefix = $"bench{Environment.ProcessId}";
        var (host, port) = HostPort(RedisConnection);
        await using var mux = await ConnectionMultiplexer.ConnectAsync(RedisConnection + ",allowAdmin=true");
        var info = (await mux.GetServer(host, port).InfoAsync()).SelectMany(g => g).DistinctBy(p => p.Key).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        var config = (await mux.GetServer(host, port).ConfigGetAsync("append*")).DistinctBy(p => p.Key).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        var server = $"Redis {info.GetValueOrDefault("redis_version")}, appendonly={config.GetValueOrDefault("appendonly")}, appendfsync={config.GetValueOrDefault("appendfsync")}";
        try
        {
            await using var store = await RedisStore.OpenAsync(new RedisStoreOptions { Multiplexer = mux, Prefix = prefix });
            await SeedAsync(store);
            var known = new ConcurrentDictionary<string, long>(StringComparer.Ordinal);
            foreach (var clients in ClientCounts)
            {
                var concord = new List<(double Rate, double Conflicts)>();
                var casOp = new List<(double Rate, double Conflicts)>();
                var peer = new List<double>();
                for (var run = 0; run < settings.Runs; run++)
                {
                    casOp.Add(RunWorkers(clients, Warmup(settings), Duration(settings), run, (_, rng) => CasOpAsync(store, known, rng)));
                    concord.Add(RunWorkers(clients, Warmup(settings), Duration(settings), run, (_, rng) => CasAsync(store, known, rng)));
                    var requests = RedisRequests(clients, settings);
                    var csv = RunTool("redis-benchmark", RedisBenchArgs(host, port, clients, requests), null);
                    peer.Add(ParseDouble(SetPattern().Match(csv), csv));
                    log($"redis    {clients,2} clients run {run + 1}: concord CAS op {casOp[^1].Rate,8:N0}/s ({casOp[^1].Conflicts:P1} conflicts), read+CAS {concord[^1].Rate,8:N0}/s ({concord[^1].Conflicts:P1} conflicts), redis-benchmark SET {peer[^1],8:N0} req/s");
                }
                var redisBench = new Sample($"redis-benchmark {RedisBenchArgs(host, port, clients, RedisRequests(clients, settings))} on {server}", [.. peer], []);
                results.Add(new Comparison("redis-op", $"{clients} client{(clients == 1 ? "" : "s")}", "CAS/s", true,
                    new Sample(CasOpSubject("RedisStore"), [.. casOp.Select(c => c.Rate)], new() { ["conflict rate"] = [.. casOp.Select(c => c.Conflicts)] }),
                    redisBench, SingleKeyTarget));
                results.Add(new Comparison("redis", $"{clients} client{(clients == 1 ? "" : "s")}", "ops/s", true,
                    new Sample("Concord RedisStore: GetAsync, then PutAsync(Expect.Version) until applied, random key of 10,000", [.. concord.Select(c => c.Rate)],
                        new() { ["conflict rate"] = [.. concord.Select(c => c.Conflicts)] }),
                    redisBench, null));
            }
        }
        finally
        {
            var admin = mux.GetServer(host, port);
            foreach (var db in new[] { 0, RedisBenchDb })
            {
                var pattern = db == 0 ? prefix + ":*" : "key:*";
                var keys = new List<RedisKey>();
                await foreach (var key in admin.KeysAsync(db, pattern, 1000)) keys.Add(key);
                foreach (var chunk in keys.Chunk(1000)) await mux.GetDatabase(db).KeyDeleteAsync(chunk);
            }
        }
        return results;
    }

    private static int RedisRequests(int clients, LoadSettings settings) => (settings.Quick ? 1 : 3) * (clients == 1 ? 8_000 : 40_000);

    private static string RedisBenchArgs(string host, int port, int clients, int requests) =>
        $"-h {host} -p {port} --dbnum {RedisBenchDb} -t set -c {clients} -n {requests} -r {Keys} -d 7 --csv";

    [GeneratedRegex("\"SET\",\"([0-9.]+)\"")]
    private static partial Regex SetPattern();

    private static (string Host, int Port) HostPort(string configuration)
    {
        var endpoint = configuration.Split(',')[0];
        var colon = endpoint.LastIndexOf(':');
        return colon < 0 ? (endpoint, 6379) : (endpoint[..colon], int.Parse(endpoint[(colon + 1)..], CultureInfo.InvariantCulture));
    }

    // ------------------------------------------------------------------ native Redis queue

    public static readonly int[] RedisQueueConsumerCounts = [1, 4, 16];

    /// <summary>
    /// <see cref="RedisQueueService"/> (enqueue + lease + ack, and the same with the ack carrying a store effect) vs a
    /// hand-written Redis Streams work loop through the same StackExchange.Redis multiplexer: XADD; XREADGROUP COUNT 1 &gt;;
    /// XACK + XDEL (pipelined). Three round trips per task on both sides.
    /// </summary>
    public static IEnumerable<Comparison> RunRedisQueue(LoadSettings settings, Action<string> log) => RunRedisQueueAsync(settings, log).GetAwaiter().GetResult();

    private static async Task<List<Comparison>> RunRedisQueueAsync(LoadSettings settings, Action<string> log)
    {
        var results = new List<Comparison>();
        var prefix = $"benchq{Environment.ProcessId}";
        var (host, port) = HostPort(RedisConnection);
        await using var mux = await ConnectionMultiplexer.ConnectAsync(RedisConnection + ",allowAdmin=true");
        var info = (await mux.GetServer(host, port).InfoAsync()).SelectMany(g => g).DistinctBy(p => p.Key).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        var config = (await mux.GetServer(host, port).ConfigGetAsync("append*")).DistinctBy(p => p.Key).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        var server = $"Redis {info.GetValueOrDefault("redis_version")}, appendonly={config.GetValueOrDefault("appendonly")}, appendfsync={config.GetValueOrDefault("appendfsync")}";
        var db = mux.GetDatabase();
        try
        {
            await using var store = await RedisStore.OpenAsync(new RedisStoreOptions { Multiplexer = mux, Prefix = prefix });
            await using var queues = new RedisQueueService(store);
            var payload = JsonDocument.Parse("""{"job":"resize","n":1}""").RootElement.Clone();
            foreach (var clients in RedisQueueConsumerCounts)
            {
                var concord = new List<(double Rate, double Conflicts)>();
                var withEffect = new List<(double Rate, double Conflicts)>();
                var peer = new List<(double Rate, double Conflicts)>();
                for (var run = 0; run < settings.Runs; run++)
                {
                    var queue = $"q{clients}-{run}";
                    concord.Add(RunWorkers(clients, Warmup(settings), Duration(settings), run, (i, _) => QueueCycleAsync(queues, queue, payload, $"c{i}")));
                    RedisKey stream = $"{prefix}:raw:{clients}-{run}";
                    await db.StreamCreateConsumerGroupAsync(stream, "g", "0", createStream: true);
                    peer.Add(RunWorkers(clients, Warmup(settings), Duration(settings), run, (i, _) => RawStreamCycleAsync(db, stream, $"c{i}")));
                    var effectQueue = $"e{clients}-{run}";
                    withEffect.Add(RunWorkers(clients, Warmup(settings), Duration(settings), run, (i, _) => QueueCycleAsync(queues, effectQueue, payload, $"c{i}", s_effect)));
                    log($"redis queue {clients,2} consumers run {run + 1}: concord {concord[^1].Rate,8:N0} tasks/s, with effect {withEffect[^1].Rate,8:N0} tasks/s, raw streams loop {peer[^1].Rate,8:N0} tasks/s");
                }
                var scenario = $"{clients} consumer{(clients == 1 ? "" : "s")}";
                var peerSample = new Sample($"XADD s * p <json>; XREADGROUP GROUP g c COUNT 1 STREAMS s >; XACK s g id + XDEL s id (pipelined), StackExchange.Redis, on {server}",
                    [.. peer.Select(c => c.Rate)], new() { ["empty leases"] = [.. peer.Select(c => c.Conflicts)] });
                results.Add(new Comparison("redis-queue", scenario, "tasks/s", true,
                    new Sample("RedisQueueService on RedisStore: EnqueueAsync, LeaseAsync (30 s visibility), AckAsync", [.. concord.Select(c => c.Rate)], new() { ["empty leases"] = [.. concord.Select(c => c.Conflicts)] }),
                    peerSample));
                results.Add(new Comparison("redis-queue-effect", scenario, "tasks/s", true,
                    new Sample("RedisQueueService on RedisStore: EnqueueAsync, LeaseAsync (30 s visibility), AckAsync with one effect (a counter patch committed through RedisStore in the ack's script)",
                        [.. withEffect.Select(c => c.Rate)], new() { ["empty leases"] = [.. withEffect.Select(c => c.Conflicts)] }),
                    peerSample));
            }
        }
        finally
        {
            var admin = mux.GetServer(host, port);
            var keys = new List<RedisKey>();
            await foreach (var key in admin.KeysAsync(0, prefix + ":*", 1000)) keys.Add(key);
            foreach (var chunk in keys.Chunk(1000)) await db.KeyDeleteAsync(chunk);
        }
        return results;
    }

    private static readonly TxnOp[] s_effect = [TxnOp.PatchKey("bench/acked", JsonPatch.Create().Increment("/n"))];

    /// <summary>The raw peer: one task through a Redis stream and consumer group, as a hand-written worker would do it.</summary>
    private static async Task<long> RawStreamCycleAsync(IDatabase db, RedisKey stream, string consumer)
    {
        await db.StreamAddAsync(stream, "p", """{"job":"resize","n":1}""");
        for (long attempts = 1; ; attempts++)
        {
            var entries = await db.StreamReadGroupAsync(stream, "g", consumer, StreamPosition.NewMessages, count: 1);
            if (entries.Length == 1)
            {
                var ack = db.StreamAcknowledgeAsync(stream, "g", entries[0].Id);
                var delete = db.StreamDeleteAsync(stream, [entries[0].Id]);
                await Task.WhenAll(ack, delete);
                return attempts;
            }
            await db.StreamAddAsync(stream, "p", "{}"); // another worker took ours: add work rather than spin, as the Concord loop does
        }
    }

    // ------------------------------------------------------------------ harness

    /// <summary>N async clients run <paramref name="operation"/> (returns attempts for one success); returns goodput and the failed-attempt rate.</summary>
    private static (double Rate, double Conflicts) RunWorkers(int clients, TimeSpan warmup, TimeSpan duration, int seed, Func<int, Random, Task<long>> operation)
    {
        var phases = new Phases();
        var tasks = Enumerable.Range(0, clients).Select(i => Task.Run(async () =>
        {
            var rng = new Random(seed * 1000 + i);
            var local = default(WorkerCounts);
            while (true)
            {
                var attempts = await operation(i, rng);
                if (!local.Record(phases, attempts)) break;
            }
            return local;
        })).ToArray();
        var seconds = phases.Drive(warmup, duration);
        var counts = Task.WhenAll(tasks).GetAwaiter().GetResult();
        var successes = counts.Sum(c => c.Successes);
        var attempts = counts.Sum(c => c.Attempts);
        return (successes / seconds, attempts == 0 ? 0 : (attempts - successes) / (double)attempts);
    }

    private static async Task Exec(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync();
    }

    private static double ParseDouble(Match match, string output) =>
        match.Success ? double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : throw new InvalidOperationException($"could not parse the tool's output:\n{output}");

    /// <summary>Runs a tool to completion; returns its standard output, throws on a non-zero exit.</summary>
    private static string RunTool(string tool, string arguments, string? pgPassword)
    {
        var info = new ProcessStartInfo(tool, arguments) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (pgPassword is not null) info.Environment["PGPASSWORD"] = pgPassword;
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {tool}");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{tool} {arguments} exited with {process.ExitCode}:\n{stdout}\n{stderr.Result}");
        return stdout + stderr.Result;
    }
}
