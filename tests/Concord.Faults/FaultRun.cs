using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Concord.Client;
using Concord.Lab.Checkers;
using Concord.Lab.Checkers.Linearizability;
using Concord.Lab.History;

namespace Concord.Faults;

/// <summary>Settings of one fault run.</summary>
public sealed record FaultRunOptions
{
    /// <summary>embedded | postgres | redis.</summary>
    public string Backend { get; init; } = "embedded";

    /// <summary>Connection string of postgres/redis (host and port are rewritten to go through the nemesis's proxy).</summary>
    public string? Connection { get; init; }

    /// <summary>How long clients run while the nemesis injects faults.</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(60);

    public int Clients { get; init; } = 4;

    public int Seed { get; init; } = 1;

    /// <summary>Lease TTL of the fence probe; the pause lasts well past it.</summary>
    public TimeSpan LeaseTtl { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan PauseLength { get; init; } = TimeSpan.FromMilliseconds(2500);

    public TextWriter Log { get; init; } = TextWriter.Null;

    /// <summary>Where to save the recorded register history (JSONL, <c>concord check</c> reads it); null: not saved. The
    /// transaction history goes next to it with a <c>-txn</c> suffix.</summary>
    public string? HistoryPath { get; init; }

    /// <summary>
    /// The suite's private PostgreSQL/Redis (<c>scripts/fault-dbs.sh</c>): when set, the nemesis really restarts and
    /// crashes the database; when null it only cuts the server's database connections at a proxy.
    /// </summary>
    public PrivateDatabases? Databases { get; init; }

    /// <summary>The real database faults the nemesis picks from; null: all of <see cref="PrivateDatabases.FaultsFor"/>. (The final
    /// crash before checking, <see cref="PrivateDatabases.CrashFor"/>, happens regardless.)</summary>
    public IReadOnlyList<string>? DatabaseFaults { get; init; }

    /// <summary><c>concord serve</c> processes sharing the database (embedded: always 1, one process owns its directory).</summary>
    public int Nodes { get; init; } = 2;

    /// <summary>Processes actually started.</summary>
    public int ServeNodes => Backend == "embedded" ? 1 : Math.Max(1, Nodes);
}

/// <summary>One checked property of a run. <paramref name="Tolerated"/>: failed, but within a loss window the backend documents (reported, never hidden).</summary>
public sealed record FaultVerdict(string Property, bool Passed, string Detail, bool Tolerated = false)
{
    public string Label => Passed ? "PASS" : Tolerated ? "LOST-IN-DOCUMENTED-WINDOW" : "FAIL";
}

/// <summary>What a run did and whether every checker passed.</summary>
public sealed class FaultRunResult
{
    public required FaultRunOptions Options { get; init; }
    public TimeSpan Elapsed { get; set; }
#pragma warning disable CA1051 // counters bumped with Interlocked
    public int RegisterOps;
    public int RegisterInfo;
    public int IncrementsAcked;
    public int IncrementsUnknown;
    public int IncrementAttempts;
    public int UniqueWritesAcked;
    public int UniqueWritesUnknown;
    public int FenceProbes;
    public int TxnOk;
    public int TxnFail;
    public int TxnInfo;
    public int Enqueued;
    public int EnqueueUnknown;
    public int Acks;
    public int AckUnknown;
    public int StaleReceipts;
#pragma warning restore CA1051
    public long FinalCounter { get; set; }
    public long QueueCounter { get; set; }
    public ConcurrentDictionary<string, int> Faults { get; } = new();
    public ConcurrentDictionary<string, int> Errors { get; } = new();
    public List<FaultVerdict> Verdicts { get; } = [];
    public bool Passed => Verdicts.Count > 0 && Verdicts.All(v => v.Passed || v.Tolerated);
    public int TxnOps => TxnOk + TxnFail + TxnInfo;
    public int QueueOps => Enqueued + EnqueueUnknown + Acks + AckUnknown + StaleReceipts;
    public int TotalOps => RegisterOps + IncrementAttempts + UniqueWritesAcked + UniqueWritesUnknown + FenceProbes * 5 + TxnOps + QueueOps;
    public int FaultCount => Faults.Values.Sum();
    public string? Anomaly { get; set; }
}

/// <summary>
/// Concurrent clients against real <c>concord serve</c> processes (two sharing the database for postgres/redis) while a
/// nemesis SIGKILLs and restarts them, SIGSTOPs one past a lease expiry, adds proxy latency, cuts a node off its
/// database and — with <see cref="FaultRunOptions.Databases"/> — really restarts and crashes PostgreSQL/Redis.
/// Afterwards: the register history must be linearizable, the list-append transactions serializable (and strict
/// serializable), every idempotent increment and every queue task's effects applied exactly once, no acknowledged
/// write lost, every stale fence refused.
/// </summary>
public sealed partial class FaultRun
{
    private const int RegisterKeys = 8;
    private const int ListKeys = 8;
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly FaultRunOptions _o;
    private readonly FaultRunResult _r;
    private string _ns = "faults";
    private readonly HistoryRecorder _recorder;
    private readonly HistoryRecorder _txnRecorder;
    private readonly ConcurrentDictionary<string, (long I, TimeSpan AckedAt)> _ackedWrites = new();
    private readonly ConcurrentQueue<(string Fault, TimeSpan At)> _dbCrashes = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private int _processIds = 1000;

    public FaultRun(FaultRunOptions options)
    {
        _o = options;
        _r = new FaultRunResult { Options = options };
        var where = $"{options.Backend}, {options.ServeNodes} serve node(s){(options.Databases is null ? "" : ", real database restarts")}";
        _recorder = new HistoryRecorder(TimeProvider.System, new HistoryMeta { Workload = $"fault suite cas-register on {where}" });
        _txnRecorder = new HistoryRecorder(TimeProvider.System, new HistoryMeta { Workload = $"fault suite list-append transactions on {where}" });
    }

    public static Task<FaultRunResult> RunAsync(FaultRunOptions options, CancellationToken ct) => new FaultRun(options).RunAsync(ct);

    private sealed class Node : IAsyncDisposable
    {
        public required ServeProcess Serve { get; init; }
        public required TcpProxy Front { get; init; }
        public TcpProxy? Back { get; init; }
        public required HttpClient Http { get; init; }

        public async ValueTask DisposeAsync()
        {
            Http.Dispose();
            await Front.DisposeAsync();
            await Serve.DisposeAsync();
            if (Back is not null) await Back.DisposeAsync();
        }
    }

    private async Task<FaultRunResult> RunAsync(CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        var data = Path.Combine(Path.GetTempPath(), "concord-faults-" + Guid.NewGuid().ToString("N")[..8]);
        var connection = _o.Connection ?? _o.Databases?.ConnectionFor(_o.Backend);
        var nodes = new List<Node>();
        try
        {
            // The nodes start in parallel (each start is a process launch plus a database connection).
            nodes.AddRange(await Task.WhenAll(Enumerable.Range(0, _o.ServeNodes).Select(async _ =>
            {
                TcpProxy? back = null;
                var nodeConnection = connection;
                if (_o.Backend is "postgres" or "redis")
                {
                    var (_, port) = DbEndpoint(_o.Backend, connection ?? throw new InvalidOperationException($"{_o.Backend} needs a connection string"));
                    back = new TcpProxy(port);
                    nodeConnection = RewritePort(_o.Backend, connection, back.Port);
                }
                var serve = await ServeProcess.StartAsync(_o.Backend, nodeConnection, _o.Backend == "embedded" ? data : null, ct);
                var front = new TcpProxy(serve.Port);
                return new Node { Serve = serve, Front = front, Back = back, Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{front.Port}/"), Timeout = TimeSpan.FromSeconds(6) } };
            })));
            _o.Log.WriteLine($"  {nodes.Count} serve node(s) ready @{_clock.Elapsed.TotalSeconds:F1}s");
            var store = Store(nodes[0].Http);
            if (_o.Backend != "embedded") _ns = "f" + Guid.NewGuid().ToString("N")[..10];
            await Retry(() => store.PutAsync(_ns, "counter", JsonSerializer.SerializeToElement(new { n = 0 }), null, ct).AsTask(), ct);

            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var clients = Enumerable.Range(0, _o.Clients).Select(c => Task.Run(() => ClientAsync(c, nodes[c % nodes.Count].Http, stop.Token, ct), ct)).ToArray();
            var nemesis = Task.Run(() => NemesisAsync(nodes, ct), ct);
            await nemesis;
            await stop.CancelAsync();
            await Task.WhenAll(clients);

            // A last crash before checking: everything acknowledged must have been durable. The embedded server holds the
            // data itself; postgres/redis hold it in the database, which (when private) crashes instead.
            if (_o.Databases is not null && PrivateDatabases.CrashFor(_o.Backend) is { } crash)
            {
                await InjectDbFaultAsync(crash, ct);
            }
            foreach (var node in _o.Backend == "embedded" ? nodes : [])
            {
                await node.Serve.KillAsync();
                node.Front.SeverAll();
                Count(_r.Faults, "sigkill+restart");
                await node.Serve.RestartAsync(ct);
                node.Front.TargetPort = node.Serve.Port;
            }
            _o.Log.WriteLine($"  clients stopped, final crash done @{_clock.Elapsed.TotalSeconds:F1}s");
            await DrainQueueAsync(nodes.Select(n => n.Http).ToList(), ct);
            _o.Log.WriteLine($"  queue drained @{_clock.Elapsed.TotalSeconds:F1}s");
            await CheckAsync(store, ct);
            _o.Log.WriteLine($"  checked @{_clock.Elapsed.TotalSeconds:F1}s");
        }
        finally
        {
            foreach (var node in nodes) await node.DisposeAsync();
            try
            {
                Directory.Delete(data, recursive: true);
            }
            catch (DirectoryNotFoundException)
            {
            }
        }
        _r.Elapsed = watch.Elapsed;
        return _r;
    }

    private static ConcordHttpStore Store(HttpClient http) =>
        new(http, new ConcordClientOptions { MaxAttempts = 4, RetryDelay = TimeSpan.FromMilliseconds(150) });

    // ------------------------------------------------------------------ clients

    private async Task ClientAsync(int client, HttpClient http, CancellationToken stop, CancellationToken ct)
    {
        var store = Store(http);
        var queue = new HttpQueueService(http, new ConcordClientOptions { MaxAttempts = 4, RetryDelay = TimeSpan.FromMilliseconds(150) });
        var random = new Random(_o.Seed * 7919 + client);
        var process = client;
        var txnProcess = client;
        var lastRead = new Dictionary<string, (long Version, long? Value)>();
        for (var i = 0; !stop.IsCancellationRequested; i++)
        {
            var dice = random.Next(20);
            if (dice < 8)
            {
                if (!await RegisterOpAsync(store, random, process, client, i, lastRead, ct)) process = Interlocked.Increment(ref _processIds);
            }
            else if (dice < 12)
            {
                if (!await TxnAsync(store, random, txnProcess, client, ct)) txnProcess = Interlocked.Increment(ref _processIds);
            }
            else if (dice < 14)
            {
                await IncrementAsync(store, $"inc-{client}-{i}", ct);
            }
            else if (dice < 16)
            {
                await UniqueWriteAsync(store, client, i, ct);
            }
            else if (dice < 18)
            {
                await EnqueueAsync(queue, $"t-{client}-{i}", ct);
            }
            else
            {
                await ConsumeAsync(queue, $"consumer-{client}", ct);
            }
        }
    }

    /// <summary>One read/write/cas on a register; false when the outcome is unknown (the process must not be reused).</summary>
    private async Task<bool> RegisterOpAsync(ConcordHttpStore store, Random random, int process, int client, int i, Dictionary<string, (long Version, long? Value)> lastRead, CancellationToken ct)
    {
        var key = "r/" + random.Next(RegisterKeys);
        var unique = client * 1_000_000 + i + 1;
        var choice = random.Next(3);
        Interlocked.Increment(ref _r.RegisterOps);
        if (choice == 0 || (choice == 2 && !lastRead.ContainsKey(key)))
        {
            using var op = _recorder.Invoke(process, Functions.Read, key);
            try
            {
                var record = await store.GetAsync(_ns, key, null, ct);
                long? value = record is null ? null : record.Value.GetProperty("n").GetInt64();
                lastRead[key] = (record?.Version ?? 0, value);
                op.Ok(JsonSerializer.SerializeToElement(value), record?.Version);
            }
            catch (Exception e) when (IsFault(e, ct))
            {
                Count(_r.Errors, Kind(e));
                op.Fail(e.Message); // a read has no effect
            }
            return true;
        }
        var expect = choice == 1 ? Expect.Any : Expect.Version(lastRead[key].Version);
        using var w = choice == 1
            ? _recorder.Invoke(process, Functions.Write, key, HistoryValue.Of(unique))
            : _recorder.Invoke(process, Functions.Cas, key, JsonSerializer.SerializeToElement(new long?[] { lastRead[key].Value, unique }));
        try
        {
            var result = await store.PutAsync(_ns, key, JsonSerializer.SerializeToElement(new { n = unique }), new WriteOptions { Expect = expect, Agent = $"c{client}" }, ct);
            if (result.IsApplied) w.Ok(version: result.Version);
            else w.Fail(result.Conflict.ToString());
            return true;
        }
        catch (Exception e) when (IsFault(e, ct))
        {
            Count(_r.Errors, Kind(e));
            w.Info(e.Message);
            Interlocked.Increment(ref _r.RegisterInfo);
            return false;
        }
    }

    /// <summary>An increment with one idempotency key, retried (same key) until acknowledged or the grace period ends.</summary>
    private async Task IncrementAsync(ConcordHttpStore store, string idempotencyKey, CancellationToken ct)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(30))
        {
            Interlocked.Increment(ref _r.IncrementAttempts);
            try
            {
                var result = await store.PatchAsync(_ns, "counter", JsonPatch.Create().Increment("/n"), new WriteOptions { IdempotencyKey = idempotencyKey }, ct);
                if (!result.IsApplied) throw new InvalidOperationException($"increment refused: {result.Conflict}");
                Interlocked.Increment(ref _r.IncrementsAcked);
                return;
            }
            catch (Exception e) when (IsFault(e, ct))
            {
                Count(_r.Errors, Kind(e));
                await Task.Delay(200, ct);
            }
        }
        Interlocked.Increment(ref _r.IncrementsUnknown);
    }

    /// <summary>Creates a key nobody else writes; once acknowledged it must survive every crash.</summary>
    private async Task UniqueWriteAsync(ConcordHttpStore store, int client, int i, CancellationToken ct)
    {
        var key = $"w/{client}/{i}";
        var idempotencyKey = $"w-{client}-{i}";
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(30))
        {
            try
            {
                var result = await store.PutAsync(_ns, key, JsonSerializer.SerializeToElement(new { c = client, i }),
                    new WriteOptions { Expect = Expect.Absent, IdempotencyKey = idempotencyKey }, ct);
                if (!result.IsApplied) throw new InvalidOperationException($"unique write {key} refused: {result.Conflict} (a retry was applied twice?)");
                _ackedWrites[key] = (i, _clock.Elapsed);
                return;
            }
            catch (Exception e) when (IsFault(e, ct))
            {
                Count(_r.Errors, Kind(e));
                await Task.Delay(200, ct);
            }
        }
        Interlocked.Increment(ref _r.UniqueWritesUnknown);
    }

    private static bool IsFault(Exception e, CancellationToken ct) =>
        !ct.IsCancellationRequested && e is HttpRequestException or TaskCanceledException or IOException or ConcordException { IsTransient: true };

    private static string Kind(Exception e) => e switch
    {
        ConcordException c => c.Code,
        TaskCanceledException => "timeout",
        HttpRequestException h => "connection:" + (h.HttpRequestError.ToString()),
        _ => e.GetType().Name,
    };

    // ------------------------------------------------------------------ nemesis

    private async Task NemesisAsync(List<Node> nodes, CancellationToken ct)
    {
        var random = new Random(_o.Seed);
        var faults = new List<string> { "fence-pause", "sigkill", "latency" };
        if (nodes[0].Back is not null) faults.Add("db-cut");
        if (_o.Databases is not null) faults.AddRange(_o.DatabaseFaults ?? PrivateDatabases.FaultsFor(_o.Backend));
        var n = 0;
        var clock = Stopwatch.StartNew();
        // Runs for the duration and at least until every kind of fault was injected once, then stops the clients.
        while (clock.Elapsed < _o.Duration || n < faults.Count)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(800 + random.Next(1200)), ct);
            // Every kind once first (so even a short run sees all), then at random.
            var fault = n < faults.Count ? faults[n] : faults[random.Next(faults.Count)];
            var node = nodes[random.Next(nodes.Count)];
            n++;
            _o.Log.WriteLine($"  nemesis @{_clock.Elapsed.TotalSeconds:F1}s: {fault}");
            switch (fault)
            {
                case "sigkill":
                    await node.Serve.KillAsync();
                    node.Front.SeverAll();
                    Count(_r.Faults, "sigkill+restart");
                    await Task.Delay(200, ct);
                    await node.Serve.RestartAsync(ct);
                    node.Front.TargetPort = node.Serve.Port;
                    break;
                case "latency":
                    var delay = TimeSpan.FromMilliseconds(50 + random.Next(150));
                    foreach (var x in nodes) x.Front.Delay = delay;
                    Count(_r.Faults, "proxy-latency");
                    await Task.Delay(2000, ct);
                    foreach (var x in nodes) x.Front.Delay = TimeSpan.Zero;
                    break;
                case "db-cut":
                    // One node loses its database connections (a partition between that node and the database).
                    node.Back!.Refusing = true;
                    node.Back.SeverAll();
                    Count(_r.Faults, "db-cut (proxy)");
                    await Task.Delay(2000, ct);
                    node.Back.Refusing = false;
                    break;
                case "fence-pause":
                    await FenceProbeAsync(nodes, ct);
                    break;
                default:
                    await InjectDbFaultAsync(fault, ct);
                    break;
            }
        }
    }

    private async Task InjectDbFaultAsync(string fault, CancellationToken ct)
    {
        var at = _clock.Elapsed;
        await PrivateDatabases.InjectAsync(fault, ct);
        if (fault.EndsWith("sigkill", StringComparison.Ordinal) || fault.EndsWith("immediate", StringComparison.Ordinal)) _dbCrashes.Enqueue((fault, at));
        Count(_r.Faults, fault);
    }

    private sealed record LeaseReply(string Name, string Owner, long Token, string LeaseId);

    /// <summary>
    /// A holds a short lease through node 0; node 0 is SIGSTOPped well past the lease's expiry; B acquires (through the
    /// other node while node 0 is still frozen, if there are two) and writes with its fence; node 0 is SIGCONTinued and
    /// A, believing it still holds the lock, writes with its old fence through it: that write must be refused (stale
    /// fence) and A's renewal must fail (lease lost). With two nodes it also records whether B could make progress at
    /// all while node 0 was frozen (node 0 stays frozen at most <see cref="MaxFreeze"/>).
    /// </summary>
    private async Task FenceProbeAsync(List<Node> nodes, CancellationToken ct)
    {
        var probe = _r.FenceProbes;
        var name = $"fence-{probe}";
        var key = $"fenced/{probe}";
        var (nodeA, nodeB) = (nodes[0], nodes[^1]);
        var storeA = Store(nodeA.Http);
        var storeB = Store(nodeB.Http);
        var a = await AcquireAsync(nodeA.Http, name, "holder-a", ct);
        var wa = await Retry(() => storeA.PutAsync(_ns, key, JsonSerializer.SerializeToElement(new { by = "a" }), new WriteOptions { Expect = Expect.Fenced(new Fence(name, a.Token)) }, ct).AsTask(), ct);
        nodeA.Serve.Pause();
        Count(_r.Faults, "sigstop-past-lease");
        await Task.Delay(_o.PauseLength, ct);
        if (nodeA == nodeB) nodeA.Serve.Resume();
        var frozen = Stopwatch.StartNew();
        var bTask = Task.Run(async () =>
        {
            var lease = await AcquireAsync(nodeB.Http, name, "holder-b", ct);
            var write = await Retry(() => storeB.PutAsync(_ns, key, JsonSerializer.SerializeToElement(new { by = "b" }), new WriteOptions { Expect = Expect.Fenced(new Fence(name, lease.Token)) }, ct).AsTask(), ct);
            return (lease, write);
        }, ct);
        if (nodeA != nodeB)
        {
            await Task.WhenAny(bTask, Task.Delay(MaxFreeze, ct));
            if (!bTask.IsCompleted)
            {
                Interlocked.Increment(ref _stalledProbes);
                _o.Log.WriteLine($"  probe {probe}: B made no progress through the other node for {frozen.Elapsed.TotalSeconds:F1} s while node A was frozen");
            }
            nodeA.Serve.Resume();
        }
        var (b, wb) = await bTask;
        var stale = await Retry(() => storeA.PutAsync(_ns, key, JsonSerializer.SerializeToElement(new { by = "a-after-pause" }), new WriteOptions { Expect = Expect.Fenced(new Fence(name, a.Token)) }, ct).AsTask(), ct);
        var renew = await Retry(() => nodeA.Http.PostAsJsonAsync($"v1/ns/{_ns}/locks/renew", new { name, leaseId = a.LeaseId, ttlMs = 1000 }, ct), ct);
        var final = await Retry(() => storeA.GetAsync(_ns, key, null, ct).AsTask(), ct);
        var ok = wa.IsApplied && wb.IsApplied && b.Token > a.Token && stale.Conflict == ConflictKind.StaleFence
            && renew.StatusCode == HttpStatusCode.Conflict && final?.Value.GetProperty("by").GetString() == "b";
        lock (_r.Verdicts)
        {
            _r.FenceProbes++;
            if (!ok)
                _r.Verdicts.Add(new FaultVerdict("fences honoured", false,
                    $"probe {probe}: a={a.Token} applied={wa.IsApplied}, b={b.Token} applied={wb.IsApplied}, stale write → {stale.Conflict}, renew → {(int)renew.StatusCode}, final={final?.Value}"));
        }
    }

    /// <summary>Longest a node stays frozen in a fence probe while the other node tries to take over.</summary>
    private static readonly TimeSpan MaxFreeze = TimeSpan.FromSeconds(8);

    private int _stalledProbes;

    private async Task<LeaseReply> AcquireAsync(HttpClient http, string name, string owner, CancellationToken ct)
    {
        var reply = await Retry(async () =>
        {
            using var response = await http.PostAsJsonAsync($"v1/ns/{_ns}/locks/acquire", new { name, owner, ttlMs = (long)_o.LeaseTtl.TotalMilliseconds, waitMs = 5000 }, ct);
            if (response.StatusCode == HttpStatusCode.ServiceUnavailable) throw new HttpRequestException("503");
            response.EnsureSuccessStatusCode();
            return await response.Content.ReadFromJsonAsync<LeaseReply>(Json, ct);
        }, ct);
        return reply ?? throw new InvalidOperationException("empty lease");
    }

    private static async Task<T> Retry<T>(Func<Task<T>> action, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await action();
            }
            catch (Exception e) when (attempt < 100 && IsFault(e, ct))
            {
                await Task.Delay(200, ct);
            }
        }
    }

    // ------------------------------------------------------------------ checks

    private async Task CheckAsync(ConcordHttpStore store, CancellationToken ct)
    {
        var history = _recorder.ToHistory();
        if (_o.HistoryPath is { } path) HistoryWriter.WriteFile(history, path);
        var lin = LinearizabilityChecker.Check(history, new LinearizabilityOptions { Model = LinearizabilityModel.CasRegister, Timeout = TimeSpan.FromSeconds(60), MaxDegreeOfParallelism = 2 }, ct);
        _r.Verdicts.Add(new FaultVerdict("linearizable registers", lin.Verdict == Verdict.Valid,
            $"{lin.Verdict}: {history.Operations.Count(o => o.Type == OperationType.Invoke)} ops on {lin.Keys.Count} keys" + (lin.Verdict == Verdict.Valid ? "" : " — " + lin.Explanation)));

        CheckTransactions(ct);

        var counter = await Retry(() => store.GetAsync(_ns, "counter", null, ct).AsTask(), ct);
        var n = counter?.Value.GetProperty("n").GetInt64() ?? -1;
        _r.FinalCounter = n;
        var exact = n >= _r.IncrementsAcked && n <= _r.IncrementsAcked + _r.IncrementsUnknown;
        _r.Verdicts.Add(new FaultVerdict("exactly-once idempotent increments", exact,
            $"counter {n}, acknowledged {_r.IncrementsAcked}, never resolved {_r.IncrementsUnknown}, attempts {_r.IncrementAttempts}"));

        await CheckQueueAsync(store, ct);

        var stored = new Dictionary<string, long>(StringComparer.Ordinal);
        string? after = null;
        while (true)
        {
            var page = await Retry(() => store.ListAsync(_ns, new ListRequest { Prefix = "w/", After = after, Limit = 1000 }, ct).AsTask(), ct);
            foreach (var record in page.Records) stored[record.Key] = record.Value.GetProperty("i").GetInt64();
            if (page.Records.Count == 0 || page.NextAfter is null) break;
            after = page.NextAfter;
        }
        var lost = _ackedWrites.Where(w => !stored.TryGetValue(w.Key, out var i) || i != w.Value.I).Select(w => (w.Key, w.Value.AckedAt)).ToList();
        _r.UniqueWritesAcked = _ackedWrites.Count;
        var crashes = _dbCrashes.ToArray();
        // Redis with appendfsync everysec documents losing up to about a second (two in the worst case) of acknowledged
        // writes when it crashes; a loss acknowledged within 2 s before a redis-sigkill is that window, any other is a bug.
        var inWindow = lost.Where(l => _o.Backend == "redis" && InRedisAofWindow(l.AckedAt, crashes)).ToList();
        _r.Verdicts.Add(new FaultVerdict("no acknowledged write lost", lost.Count == 0,
            $"{_ackedWrites.Count} acknowledged creates read back after the final {(_o.Backend == "embedded" ? "server SIGKILL and restart" : _o.Databases is null ? "check" : "database crash")}"
            + (lost.Count == 0 ? "" : $"; LOST {lost.Count} ({inWindow.Count} acknowledged within 2 s before a Redis SIGKILL): {string.Join(", ", lost.Take(10).Select(l => $"{l.Key}@{l.AckedAt.TotalSeconds:F1}s"))}; crashes at {string.Join(", ", crashes.Select(c => $"{c.Fault}@{c.At.TotalSeconds:F1}s"))}"),
            Tolerated: lost.Count > 0 && inWindow.Count == lost.Count));

        if (!_r.Verdicts.Any(v => v.Property == "fences honoured"))
            _r.Verdicts.Add(new FaultVerdict("fences honoured", _r.FenceProbes > 0, $"{_r.FenceProbes} pause-past-lease probes: every stale-fenced write refused, every lost lease detected"));
        if (_o.ServeNodes > 1)
            _r.Verdicts.Add(new FaultVerdict("a frozen node does not stall the others", _stalledProbes == 0,
                _stalledProbes == 0
                    ? $"in all {_r.FenceProbes} probes B acquired the expired lock and wrote through the other node while A's node was still frozen"
                    : $"in {_stalledProbes} of {_r.FenceProbes} probes B could not acquire the expired lock and write through the other node within {MaxFreeze.TotalSeconds:F0} s while A's node was frozen (progress resumed only when it was thawed)"));
    }

    /// <summary>
    /// True when a write acknowledged at <paramref name="ackedAt"/> falls in the window Redis with <c>appendfsync
    /// everysec</c> may lose on a crash: acknowledged at most 2 s before a <c>redis-sigkill</c> started (or while it was
    /// being injected, which takes well under a second).
    /// </summary>
    public static bool InRedisAofWindow(TimeSpan ackedAt, IEnumerable<(string Fault, TimeSpan At)> crashes) =>
        crashes.Any(c => c.Fault == "redis-sigkill" && ackedAt >= c.At - TimeSpan.FromSeconds(2) && ackedAt <= c.At + TimeSpan.FromSeconds(1));

    private static void Count(ConcurrentDictionary<string, int> counts, string name) => counts.AddOrUpdate(name, 1, (_, v) => v + 1);

    internal static (string Host, int Port) DbEndpoint(string backend, string connection)
    {
        if (backend == "redis")
        {
            var first = connection.Split(',')[0];
            var colon = first.LastIndexOf(':');
            return colon < 0 ? (first, 6379) : (first[..colon], int.Parse(first[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture));
        }
        var parts = Parse(connection);
        return (parts.GetValueOrDefault("host", "127.0.0.1"), int.Parse(parts.GetValueOrDefault("port", "5432"), System.Globalization.CultureInfo.InvariantCulture));
    }

    internal static string RewritePort(string backend, string connection, int port)
    {
        if (backend == "redis")
        {
            var rest = connection.Split(',').Skip(1);
            return string.Join(',', new[] { $"127.0.0.1:{port}" }.Concat(rest));
        }
        var parts = Parse(connection);
        parts["host"] = "127.0.0.1";
        parts["port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return string.Join(';', parts.Select(p => $"{p.Key}={p.Value}"));
    }

    private static Dictionary<string, string> Parse(string connection) =>
        connection.Split(';', StringSplitOptions.RemoveEmptyEntries).Select(p => p.Split('=', 2))
            .ToDictionary(p => p[0].Trim().ToLowerInvariant(), p => p.Length > 1 ? p[1] : "");
}
