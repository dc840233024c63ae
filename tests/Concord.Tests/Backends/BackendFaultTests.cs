using System.Diagnostics;
using System.Text.Json;
using Concord.Coordination.Queues;
using Concord.Lab.Checkers;
using Concord.Lab.Checkers.Linearizability;
using Concord.Lab.History;
using Concord.Tests.Conformance;
using Concord.Tests.Postgres;
using Concord.Tests.Redis;
using Npgsql;

namespace Concord.Tests.Backends;

/// <summary>
/// The server behind the store restarts while concurrent clients run idempotent increments. Clients see transient
/// <see cref="StoreUnavailableException"/>s and retry with the same idempotency key; afterwards every acknowledged
/// increment is applied exactly once and the recorded history is a linearizable counter.
/// </summary>
/// <remarks>
/// These tests stop and start the shared PostgreSQL / Redis, so they need root and the Debian service tools; without them
/// they skip. Whatever happens, the service is started again before the test ends. CONCORD_PG_CLUSTER ("15 main" by
/// default: version and name for pg_ctlcluster) and the port in CONCORD_REDIS choose which instances are restarted, so a
/// private cluster can be used while other suites share the default ones.
/// </remarks>
[Trait("Category", "Stress")]
[Collection(SharedServiceChanges.Name)]
public sealed class BackendFaultTests
{
    private const int Clients = 6;
    private const int IncrementsPerClient = 30;
    private const int MaxAttempts = 400;
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string[] PgCluster => (Environment.GetEnvironmentVariable("CONCORD_PG_CLUSTER") ?? "15 main").Split(' ', StringSplitOptions.RemoveEmptyEntries);

    private static string RedisPort => (Environment.GetEnvironmentVariable("CONCORD_REDIS") ?? "127.0.0.1:6379").Split(',')[0].Split(':') is [_, var port] ? port : "6379";

    [Fact]
    public async Task PostgresRestart_DuringIdempotentIncrements_EveryAcknowledgedIncrementAppliedExactlyOnce()
    {
        Assert.SkipWhen(PostgresStores.Unavailable is not null, PostgresStores.Unavailable ?? "");
        SkipUnlessCanRestart("PostgreSQL", "pg_ctlcluster");
        var stores = new PostgresStores();
        try
        {
            var store = await stores.CreateAsync(StoreFixtureOptions.Default);
            try
            {
                await RunAsync(store, "postgres", async () =>
                {
                    Run("pg_ctlcluster", [.. PgCluster, "stop", "-m", "fast"]);
                    await Task.Delay(500, Ct); // clients hit a stopped server, not only broken connections
                    await EnsurePostgresAsync(); // starts it once it is down; the clients must get a server back, or the test only measures an outage
                });
            }
            finally
            {
                await EnsurePostgresAsync();
                await store.DisposeAsync();
            }
        }
        finally
        {
            await EnsurePostgresAsync();
            NpgsqlConnection.ClearAllPools();
            await stores.DropSchemasAsync();
        }
    }

    /// <summary>
    /// Without root: the store's own connections are killed again and again (pg_terminate_backend) while clients
    /// increment, so batches lose their connection before, during and after COMMIT. Requests of a batch whose outcome is
    /// unknown must fail as transient and be resolved by the idempotent retry, never applied twice.
    /// </summary>
    [Fact]
    public async Task PostgresBackendsTerminated_DuringIdempotentIncrements_EveryAcknowledgedIncrementAppliedExactlyOnce()
    {
        Assert.SkipWhen(PostgresStores.Unavailable is not null, PostgresStores.Unavailable ?? "");
        var application = "concord-fault-" + Guid.NewGuid().ToString("N")[..8];
        var stores = new PostgresStores();
        try
        {
            var store = await stores.CreateAsync(StoreFixtureOptions.Default, application);
            try
            {
                await RunAsync(store, "postgres", async () =>
                {
                    await using var admin = new NpgsqlConnection(PostgresStores.ConnectionString);
                    await admin.OpenAsync(Ct);
                    for (var i = 0; i < 25; i++)
                    {
                        await using var kill = new NpgsqlCommand("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", admin);
                        kill.Parameters.Add(new NpgsqlParameter<string> { TypedValue = application });
                        await kill.ExecuteScalarAsync(Ct);
                        await Task.Delay(10, Ct);
                    }
                });
            }
            finally
            {
                await store.DisposeAsync();
            }
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await stores.DropSchemasAsync();
        }
    }

    [Fact]
    public async Task RedisRestart_DuringIdempotentIncrements_EveryAcknowledgedIncrementAppliedExactlyOnce()
    {
        _ = RedisStores.Multiplexer; // skips (or fails in CI) when Redis is down
        SkipUnlessCanRestart("Redis", "redis-server");
        var stores = new RedisStores();
        try
        {
            var store = await stores.CreateAsync(StoreFixtureOptions.Default);
            try
            {
                var runIdBefore = RedisRunId();
                await RunAsync(store, "redis", async () =>
                {
                    // SHUTDOWN fsyncs the AOF, so nothing acknowledged is lost; the restart loads it back.
                    ShutdownRedis();
                    await Task.Delay(500, Ct);
                    StartRedis();
                    await WaitForRedisAsync();
                }, restartedOtherwise: () => RedisRunId() != runIdBefore);
            }
            finally
            {
                await EnsureRedisAsync();
                await store.DisposeAsync();
            }
        }
        finally
        {
            await EnsureRedisAsync();
            await stores.DeletePrefixesAsync();
        }
    }

    /// <summary>
    /// The native Redis queue across a Redis restart: consumers lease and ack with an effect while Redis shuts down
    /// (which fsyncs the AOF) and restarts. Calls in flight fail with transient errors and are retried (an ack with the
    /// same lease, so a lost reply replays); a lease whose reply was lost expires and is reclaimed. Afterwards every
    /// task's effect was applied exactly once and the queue is empty.
    /// </summary>
    [Fact]
    public async Task RedisRestart_DuringNativeQueueWork_EveryTaskEffectAppliedExactlyOnce()
    {
        _ = RedisStores.Multiplexer; // skips (or fails in CI) when Redis is down
        SkipUnlessCanRestart("Redis", "redis-server");
        var stores = new RedisStores();
        try
        {
            var store = (Concord.Redis.RedisStore)await stores.CreateAsync(StoreFixtureOptions.Default);
            await using var queues = new Concord.Redis.RedisQueueService(store);
            try
            {
                const int tasks = 120;
                var ns = "qfault" + Guid.NewGuid().ToString("N")[..8];
                var ids = new List<string>();
                for (var i = 0; i < tasks; i++) ids.Add((await queues.EnqueueAsync(ns, "jobs", JsonSerializer.SerializeToElement(new { i }), new EnqueueOptions { Group = i % 4 == 0 ? "g" : null }, Ct)).TaskId);
                var acked = 0;
                var transient = 0;
                var faultTask = Task.Run(async () =>
                {
                    while (Volatile.Read(ref acked) < tasks / 3) await Task.Delay(20, Ct);
                    ShutdownRedis();
                    await Task.Delay(500, Ct);
                    StartRedis();
                    await WaitForRedisAsync();
                }, Ct);
                await Task.WhenAll(Enumerable.Range(0, 4).Select(c => Task.Run(async () =>
                {
                    for (var round = 0; round < 5_000 && Volatile.Read(ref acked) < tasks; round++)
                    {
                        QueueLease? lease;
                        try
                        {
                            lease = (await queues.LeaseAsync(ns, "jobs", $"c{c}", TimeSpan.FromSeconds(2), TimeSpan.FromMilliseconds(100), Ct)).Lease;
                        }
                        catch (StoreUnavailableException e) when (e.IsTransient)
                        {
                            Interlocked.Increment(ref transient);
                            await Task.Delay(50, Ct);
                            continue;
                        }
                        if (lease is null) continue;
                        TxnOp[] effect = [TxnOp.PatchKey($"effects/{lease.TaskId}", JsonPatch.Create().Increment("/n"))];
                        for (var attempt = 0; attempt < MaxAttempts; attempt++)
                        {
                            try
                            {
                                var ack = await queues.AckAsync(lease, effect, Ct);
                                if (ack.IsAcked) Interlocked.Increment(ref acked);
                                break; // acked (or replayed), or stale: the task was reclaimed and someone else runs it
                            }
                            catch (StoreUnavailableException e) when (e.IsTransient)
                            {
                                Interlocked.Increment(ref transient);
                                await Task.Delay(50, Ct);
                            }
                        }
                    }
                }, Ct)));
                await faultTask;
                TestContext.Current.TestOutputHelper?.WriteLine($"acked {acked}, transient errors {transient}");
                Assert.True(transient > 0, "the restart was never observed by a consumer: the test did not test anything");
                Assert.Equal(tasks, acked);
                foreach (var id in ids) Assert.Equal(1, (await store.GetAsync(ns, $"effects/{id}", null, Ct))!.Value.GetProperty("n").GetInt32());
                Assert.Equal(0, (await queues.GetStatsAsync(ns, "jobs", Ct)).Total);
            }
            finally
            {
                await EnsureRedisAsync();
                await store.DisposeAsync();
            }
        }
        finally
        {
            await EnsureRedisAsync();
            await stores.DeletePrefixesAsync();
        }
    }

    /// <summary>Clients increment one counter with idempotency keys and read it; <paramref name="fault"/> runs once a third of the increments are acknowledged.</summary>
    /// <param name="store">The store under test.</param>
    /// <param name="backend">Its name, for the history and the output.</param>
    /// <param name="fault">Restarts the server (or kills connections).</param>
    /// <param name="restartedOtherwise">
    /// Proof that the server restarted when no client saw an error: commands queued while a client library reconnects
    /// (StackExchange.Redis's backlog) are sent to the new server and succeed, and with one commit loop per node nothing
    /// may be in flight at the moment of the shutdown.
    /// </param>
    private static async Task RunAsync(IConcordStore store, string backend, Func<Task> fault, Func<bool>? restartedOtherwise = null)
    {
        var ns = "fault" + Guid.NewGuid().ToString("N")[..10];
        const string key = "counter";
        await store.PutAsync(ns, key, JsonSerializer.SerializeToElement(new { value = 0 }), null, Ct);
        var recorder = new HistoryRecorder(TimeProvider.System, new HistoryMeta { Workload = $"idempotent increments across a {backend} restart" });
        var acked = 0;
        var unknown = 0;
        var transientErrors = 0;
        var permanentErrors = new List<string>();
        var replays = 0;
        var faultDone = new TaskCompletionSource();
        var third = Clients * IncrementsPerClient / 3;

        var faultTask = Task.Run(async () =>
        {
            while (Volatile.Read(ref acked) < third) await Task.Delay(20, Ct);
            await fault();
            faultDone.SetResult();
        }, Ct);

        var clients = Enumerable.Range(0, Clients).Select(process => Task.Run(async () =>
        {
            for (var i = 0; i < IncrementsPerClient; i++)
            {
                var idempotencyKey = $"inc-{process}-{i}";
                var options = new WriteOptions { IdempotencyKey = idempotencyKey, Agent = $"c{process}" };
                var patch = JsonPatch.Create().Increment("/value", 1).Build();
                using (var op = recorder.Invoke(process, Functions.Increment, key, HistoryValue.Of(1)))
                {
                    var done = false;
                    for (var attempt = 1; attempt <= MaxAttempts && !done; attempt++)
                    {
                        try
                        {
                            // Every retry sends the same idempotency key: an increment whose reply was lost is replayed, not re-applied.
                            var w = await store.PatchAsync(ns, key, patch, options, Ct);
                            Assert.True(w.IsApplied, $"increment {idempotencyKey} was refused: {w.Conflict}");
                            if (w.Replayed) Interlocked.Increment(ref replays);
                            op.Ok();
                            Interlocked.Increment(ref acked);
                            done = true;
                        }
                        catch (StoreUnavailableException e)
                        {
                            if (e.IsTransient) Interlocked.Increment(ref transientErrors);
                            else lock (permanentErrors) permanentErrors.Add(e.Message);
                            await Task.Delay(50, Ct);
                        }
                    }
                    if (!done)
                    {
                        op.Info("gave up");
                        Interlocked.Increment(ref unknown);
                    }
                }
                if (i % 5 == 4)
                {
                    using var read = recorder.Invoke(process, Functions.Read, key);
                    try
                    {
                        var record = await store.GetAsync(ns, key, null, Ct);
                        read.Ok(HistoryValue.Of(record!.Value.GetProperty("value").GetInt64()));
                    }
                    catch (StoreUnavailableException e)
                    {
                        read.Fail(e.Message); // a read that failed had no effect
                    }
                }
            }
        }, Ct)).ToArray();

        await Task.WhenAll(clients);
        await faultTask;
        Assert.True(faultDone.Task.IsCompleted);

        ConcordRecord? final = null;
        for (var attempt = 0; attempt < MaxAttempts && final is null; attempt++)
        {
            try
            {
                final = await store.GetAsync(ns, key, null, Ct);
            }
            catch (StoreUnavailableException)
            {
                await Task.Delay(50, Ct);
            }
        }
        var total = final!.Value.GetProperty("value").GetInt64();
        TestContext.Current.TestOutputHelper?.WriteLine($"{backend}: acked {acked}, unknown {unknown}, transient errors {transientErrors}, replays {replays}, final {total}");

        Assert.Empty(permanentErrors);
        Assert.True(transientErrors > 0 || restartedOtherwise?.Invoke() == true, "the restart was never observed: the test did not test anything");
        Assert.Equal(Clients * IncrementsPerClient, acked + unknown);
        // Exactly once: every acknowledged increment counted once; an unresolved one at most once.
        Assert.InRange(total, acked, acked + unknown);

        using (var op = recorder.Invoke(Clients, Functions.Read, key)) op.Ok(HistoryValue.Of(total));
        var result = LinearizabilityChecker.Check(recorder.ToHistory(), new LinearizabilityOptions { Model = LinearizabilityModel.Counter, Timeout = TimeSpan.FromSeconds(30) }, Ct);
        Assert.True(result.Verdict == Verdict.Valid, result.Explanation);
    }

    // ------------------------------------------------------------------ service control

    /// <summary>
    /// Restarting the shared PostgreSQL/Redis breaks whoever else uses them at that moment, so these tests are opt-in:
    /// scripts/test.sh runs them alone, after everything else, with CONCORD_SERVICE_FAULTS=1.
    /// </summary>
    private static void SkipUnlessCanRestart(string service, string tool) =>
        Assert.SkipUnless(CanControlServices(tool), $"restarts the shared {service}: runs only with CONCORD_SERVICE_FAULTS=1 (scripts/test.sh sets it), as root, with {tool}");

    private static bool CanControlServices(string tool) =>
        Environment.GetEnvironmentVariable("CONCORD_SERVICE_FAULTS") == "1" && Environment.UserName == "root"
        && (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(dir => File.Exists(Path.Combine(dir, tool)));

    private static string Run(string tool, params string[] args)
    {
        var info = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return $"{tool} exited {process.ExitCode}: {stdout}{stderr.Result}";
    }

    /// <summary>
    /// Starts the cluster once it is really down, and waits until it answers. A fast shutdown first finishes any
    /// checkpoint in progress, which on a busy shared cluster (tens of thousands of relation files to fsync) has taken
    /// over a minute — longer than pg_ctl's 60 s wait — so a "start" issued right after "stop" returned found the old
    /// server still running, did nothing, and the server then stayed down. Hence: poll the status, start only when
    /// stopped, and check.
    /// </summary>
    private static async Task EnsurePostgresAsync()
    {
        for (var i = 0; i < 600; i++) // bounded: 600 × 250 ms
        {
            if (await PostgresAnswersAsync()) return;
            // pg_ctlcluster status: exit 0 = running (maybe still shutting down or starting), 3 = stopped.
            if (RunForExitCode("pg_ctlcluster", [.. PgCluster, "status"]) == 3) Run("pg_ctlcluster", [.. PgCluster, "start"]);
            await Task.Delay(250, CancellationToken.None);
        }
        Assert.Fail($"PostgreSQL cluster {string.Join(' ', PgCluster)} did not come back");
    }

    private static int RunForExitCode(string tool, params string[] args)
    {
        var info = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        _ = process.StandardError.ReadToEndAsync(CancellationToken.None);
        _ = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode;
    }

    private static async Task<bool> PostgresAnswersAsync()
    {
        try
        {
            await using var conn = new NpgsqlConnection(PostgresStores.ConnectionString + ";Pooling=false");
            await conn.OpenAsync(CancellationToken.None);
            return true;
        }
        catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or InvalidOperationException)
        {
            return false;
        }
    }

    private static void StartRedis() =>
        Run("redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", RedisPort, "--appendonly", "yes", "--appendfsync", "everysec", "--dir", RedisDir());

    private static string? s_redisDir;

    /// <summary>The server's run_id (INFO server), new at every start.</summary>
    private static string RedisRunId() =>
        Run("redis-cli", "-h", "127.0.0.1", "-p", RedisPort, "info", "server").Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("run_id:", StringComparison.Ordinal)) ?? "";

    /// <summary>SHUTDOWN (which fsyncs the AOF), after noting the server's data directory for the restart.</summary>
    private static void ShutdownRedis()
    {
        _ = RedisDir();
        Run("redis-cli", "-h", "127.0.0.1", "-p", RedisPort, "shutdown");
    }

    /// <summary>
    /// The running server's own data directory (CONFIG GET dir), remembered before the first shutdown, so the restart
    /// loads the AOF the server wrote: a restart from another directory comes back empty and the test then reports lost
    /// increments that Concord never lost. Falls back to /tmp for the default port (as scripts/ensure-deps.sh starts it)
    /// and a directory of its own for any other port.
    /// </summary>
    private static string RedisDir()
    {
        if (s_redisDir is not null) return s_redisDir;
        var lines = Run("redis-cli", "-h", "127.0.0.1", "-p", RedisPort, "config", "get", "dir").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var index = Array.FindIndex(lines, l => l.EndsWith("dir", StringComparison.Ordinal));
        if (index >= 0 && index + 1 < lines.Length && Directory.Exists(lines[index + 1])) return s_redisDir = lines[index + 1];
        if (RedisPort == "6379") return "/tmp";
        var dir = Path.Combine(Path.GetTempPath(), "concord-redis-" + RedisPort);
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static bool RedisAnswers() => Run("redis-cli", "-h", "127.0.0.1", "-p", RedisPort, "ping").Contains("PONG", StringComparison.Ordinal);

    private static async Task WaitForRedisAsync()
    {
        for (var i = 0; i < 60 && !RedisAnswers(); i++) await Task.Delay(250, CancellationToken.None);
    }

    private static async Task EnsureRedisAsync()
    {
        if (RedisAnswers()) return;
        StartRedis();
        await WaitForRedisAsync();
        var mux = RedisStores.Multiplexer;
        for (var i = 0; i < 60 && !mux.IsConnected; i++) await Task.Delay(250, CancellationToken.None);
        _ = mux.GetDatabase().Ping();
    }
}

/// <summary>
/// Tests that stop, restart or reconfigure the shared PostgreSQL/Redis (<see cref="BackendFaultTests"/>,
/// <see cref="Redis.RedisServerChecksTests"/>): run one at a time and after everything else, never beside each other
/// (a Redis switched to an evicting policy by one must not meet the other's store opening).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SharedServiceChanges
{
    /// <summary>The collection's name.</summary>
    public const string Name = "shared service changes";
}
