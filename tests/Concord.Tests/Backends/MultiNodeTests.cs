using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Concord.Client;
using Concord.Coordination.Queues;
using Concord.Lab.Checkers;
using Concord.Lab.Checkers.Linearizability;
using Concord.Lab.History;
using Concord.Tests.Postgres;
using Concord.Tests.Redis;

namespace Concord.Tests.Backends;

/// <summary>
/// Two real <c>concord serve</c> processes share one PostgreSQL (or one Redis); concurrent clients spread across both
/// nodes read, write and compare-and-swap a few registers; the recorded history must be linearizable.
/// </summary>
[Trait("Category", "Stress")]
public sealed class MultiNodeTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TwoServeProcessesSharingPostgres_ConcurrentClients_HistoryIsLinearizable()
    {
        Assert.SkipWhen(PostgresStores.Unavailable is not null, PostgresStores.Unavailable ?? "");
        await RunAsync("postgres", PostgresStores.ConnectionString);
    }

    [Fact]
    public async Task TwoServeProcessesSharingRedis_ConcurrentClients_HistoryIsLinearizable()
    {
        _ = RedisStores.Multiplexer; // skips (or fails in CI) when Redis is down
        await RunAsync("redis", Environment.GetEnvironmentVariable("CONCORD_REDIS") ?? "127.0.0.1:6379");
    }

    private static async Task RunAsync(string backend, string connection)
    {
        await using var a = await ServeProcess.StartAsync(backend, connection);
        await using var b = await ServeProcess.StartAsync(backend, connection);
        var ns = "mn" + Guid.NewGuid().ToString("N")[..10];
        var recorder = new HistoryRecorder(TimeProvider.System, new HistoryMeta { Workload = $"multi-node cas-register on {backend}" });
        var keys = new[] { "r/0", "r/1", "r/2" };
        var clients = Enumerable.Range(0, 6).Select(process => Task.Run(async () =>
        {
            var node = process % 2 == 0 ? a : b;
            using var http = new HttpClient { BaseAddress = node.BaseAddress };
            var store = new ConcordHttpStore(http);
            var random = new Random(process * 7919);
            var lastRead = new Dictionary<string, (long Version, long? Value)>();
            for (var i = 0; i < 40; i++)
            {
                var key = keys[random.Next(keys.Length)];
                var choice = random.Next(3);
                var unique = process * 1000 + i + 1; // every write writes a value nobody else writes
                if (choice == 0 || !lastRead.ContainsKey(key) && choice == 2)
                {
                    using var op = recorder.Invoke(process, Functions.Read, key);
                    var record = await store.GetAsync(ns, key, null, Ct);
                    long? value = record is null ? null : record.Value.GetProperty("n").GetInt64();
                    lastRead[key] = (record?.Version ?? 0, value);
                    op.Ok(JsonSerializer.SerializeToElement(value), record?.Version); // absent reads as null, the register's initial value
                }
                else if (choice == 1)
                {
                    using var op = recorder.Invoke(process, Functions.Write, key, HistoryValue.Of(unique));
                    try
                    {
                        var w = await store.PutAsync(ns, key, JsonSerializer.SerializeToElement(new { n = unique }), new WriteOptions { Agent = $"c{process}" }, Ct);
                        if (w.IsApplied) op.Ok(version: w.Version);
                        else op.Fail(w.Conflict.ToString());
                    }
                    catch (ConcordException e) when (e.IsTransient)
                    {
                        op.Info(e.Message);
                    }
                }
                else
                {
                    var (version, value) = lastRead[key];
                    using var op = recorder.Invoke(process, Functions.Cas, key, JsonSerializer.SerializeToElement(new long?[] { value, unique }));
                    try
                    {
                        var w = await store.PutAsync(ns, key, JsonSerializer.SerializeToElement(new { n = unique }),
                            new WriteOptions { Expect = Expect.Version(version), Agent = $"c{process}" }, Ct);
                        if (w.IsApplied) op.Ok(version: w.Version);
                        else op.Fail(w.Conflict.ToString());
                    }
                    catch (ConcordException e) when (e.IsTransient)
                    {
                        op.Info(e.Message);
                    }
                }
            }
        }, Ct)).ToArray();
        await Task.WhenAll(clients);

        var history = recorder.ToHistory();
        Assert.Equal(6 * 40, history.Operations.Count(o => o.Type == OperationType.Invoke));
        var result = LinearizabilityChecker.Check(history, new LinearizabilityOptions { Model = LinearizabilityModel.CasRegister, Timeout = TimeSpan.FromSeconds(60) }, Ct);
        Assert.True(result.Verdict == Verdict.Valid, result.Explanation);
        // Both nodes really served writes.
        Assert.True(a.Requests > 0 && b.Requests > 0);
    }

    /// <summary>
    /// Two <c>concord serve --backend redis</c> nodes serve one native queue (<c>RedisQueueService</c> on the shared Redis):
    /// consumers on both nodes lease and ack with an effect; every task's effect is applied exactly once and nothing is
    /// left, and the tasks really went through the queue's Redis stream.
    /// </summary>
    [Fact]
    public async Task TwoServeProcessesSharingRedis_NativeQueue_EachTaskAckedOnceAcrossNodes()
    {
        var mux = RedisStores.Multiplexer; // skips (or fails in CI) when Redis is down
        await using var a = await ServeProcess.StartAsync("redis", Environment.GetEnvironmentVariable("CONCORD_REDIS") ?? "127.0.0.1:6379");
        await using var b = await ServeProcess.StartAsync("redis", Environment.GetEnvironmentVariable("CONCORD_REDIS") ?? "127.0.0.1:6379");
        var ns = "mq" + Guid.NewGuid().ToString("N")[..10];
        const int tasks = 60;
        using var producerHttp = new HttpClient { BaseAddress = a.BaseAddress };
        var producer = new HttpQueueService(producerHttp);
        var ids = new List<string>();
        for (var i = 0; i < tasks; i++) ids.Add((await producer.EnqueueAsync(ns, "jobs", JsonSerializer.SerializeToElement(new { i }), new EnqueueOptions { Group = i % 3 == 0 ? "g" : null }, Ct)).TaskId);
        Assert.True(await mux.GetDatabase().KeyExistsAsync($"concord:q:{ns}/jobs|s:0"), "the serve process did not use the native Redis queue");

        var remaining = tasks;
        var acked = new System.Collections.Concurrent.ConcurrentBag<string>();
        var perNode = new int[2];
        await Task.WhenAll(Enumerable.Range(0, 4).Select(c => Task.Run(async () =>
        {
            using var http = new HttpClient { BaseAddress = (c % 2 == 0 ? a : b).BaseAddress };
            var queues = new HttpQueueService(http);
            while (Volatile.Read(ref remaining) > 0)
            {
                var lease = (await queues.LeaseAsync(ns, "jobs", $"node{c % 2}-c{c}", TimeSpan.FromMinutes(1), TimeSpan.FromMilliseconds(200), Ct)).Lease;
                if (lease is null) continue;
                var ack = await queues.AckAsync(lease, [TxnOp.PatchKey($"effects/{lease.TaskId}", JsonPatch.Create().Increment("/n"))], Ct);
                Assert.True(ack.IsAcked, ack.Message);
                acked.Add(lease.TaskId);
                Interlocked.Increment(ref perNode[c % 2]);
                Interlocked.Decrement(ref remaining);
            }
        }, Ct)));

        Assert.Equal(ids.Order(), acked.Order());
        var store = new ConcordHttpStore(producerHttp);
        foreach (var id in ids) Assert.Equal(1, (await store.GetAsync(ns, $"effects/{id}", null, Ct))!.Value.GetProperty("n").GetInt32());
        Assert.Equal(0, (await producer.GetStatsAsync(ns, "jobs", Ct)).Total);
        Assert.True(perNode[0] > 0 && perNode[1] > 0, $"both nodes should have served leases and acks ({perNode[0]}, {perNode[1]})");

        var server = mux.GetServers()[0];
        await foreach (var key in server.KeysAsync(pattern: $"concord:q:{ns}/*")) await mux.GetDatabase().KeyDeleteAsync(key);
    }

    /// <summary>A <c>concord serve</c> child process on a free loopback port.</summary>
    private sealed class ServeProcess : IAsyncDisposable
    {
        private readonly Process _process;
        private int _requests;

        private ServeProcess(Process process, Uri baseAddress)
        {
            _process = process;
            BaseAddress = baseAddress;
        }

        public Uri BaseAddress { get; }

        public int Requests => Volatile.Read(ref _requests);

        public static async Task<ServeProcess> StartAsync(string backend, string connection)
        {
            var port = FreePort();
            var cli = Path.Combine(AppContext.BaseDirectory, "Concord.Cli.dll");
            var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var arg in new[] { cli, "serve", "--backend", backend, "--connection", connection, "--urls", $"http://127.0.0.1:{port}", "--no-strict" })
                info.ArgumentList.Add(arg);
            var process = Process.Start(info)!;
            var serve = new ServeProcess(process, new Uri($"http://127.0.0.1:{port}/"));
            process.OutputDataReceived += (_, e) => { if (e.Data?.Contains("Request", StringComparison.Ordinal) == true) Interlocked.Increment(ref serve._requests); };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            using var http = new HttpClient { BaseAddress = serve.BaseAddress };
            for (var i = 0; i < 300; i++)
            {
                if (process.HasExited) throw new InvalidOperationException($"concord serve exited with {process.ExitCode}");
                try
                {
                    if ((await http.GetAsync("readyz", Ct)).StatusCode == HttpStatusCode.OK)
                    {
                        serve._requests = 1;
                        return serve;
                    }
                }
                catch (HttpRequestException)
                {
                }
                await Task.Delay(100, Ct);
            }
            await serve.DisposeAsync();
            throw new TimeoutException("concord serve did not become ready");
        }

        private static int FreePort()
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync(CancellationToken.None);
            }
            _process.Dispose();
        }
    }
}
