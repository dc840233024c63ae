using Concord.Coordination.Locks;
using Google.Protobuf;
using Etcd = Etcdserverpb;
using Lockpb = V3Lockpb;

namespace Concord.Benchmarks.Load;

/// <summary>
/// <c>load peers</c>: the same compare-and-swap loop on Concord (memory, embedded durable, over HTTP) and on every peer
/// reachable on this machine (ConcurrentDictionary, SQLite, PostgreSQL, Redis, etcd), against concurrency (clients on
/// 1,000 keys) and against contention (16 clients on 1, 16 or 256 hot keys); then etcd-specific figures: a 4-key
/// transaction, lock acquire/release and lease renewal against Concord's lock service. Runs of the subjects are
/// interleaved point by point, so a noisy neighbour hits all of them alike.
/// </summary>
internal static class PeersLoad
{
    public static readonly int[] Clients = [1, 4, 16, 64];
    public static readonly int[] HotKeys = [1, 16, 256];
    public const int ContentionClients = 16;
    public const int SpreadKeys = 1000;
    public static readonly int[] TxnClients = [1, 16];
    public static readonly int[] LockClients = [1, 4, 16];

    public static string? EtcdEndpoint => Environment.GetEnvironmentVariable("CONCORD_ETCD");

    private static TimeSpan Window(LoadSettings s) => s.Quick ? TimeSpan.FromMilliseconds(150) : TimeSpan.FromSeconds(0.8);

    private static TimeSpan Warmup(LoadSettings s) => s.Quick ? TimeSpan.FromMilliseconds(50) : TimeSpan.FromMilliseconds(200);

    public static async Task<(List<CurvePoint> Points, Dictionary<string, string> Peers, List<string> Notes)> RunAsync(LoadSettings settings, bool includeServers, Action<string> log)
    {
        ThreadPool.SetMinThreads(128, 128);
        var peers = new List<ICasPeer>();
        var versions = new Dictionary<string, string>(StringComparer.Ordinal);
        var notes = new List<string>();
        var points = new List<CurvePoint>();
        Directory.CreateDirectory(settings.WorkDirectory);
        try
        {
            peers.Add(await ConcordPeer.EmbeddedAsync(Path.Combine(settings.WorkDirectory, "concord-embedded")));
            peers.Add(ConcordPeer.Memory());
            peers.Add(await ConcordPeer.HttpAsync(Path.Combine(settings.WorkDirectory, "concord-http"), 7400 + Environment.ProcessId % 500));
            peers.Add(new DictionaryPeer());
            peers.Add(new SqlitePeer(Path.Combine(settings.WorkDirectory, "sqlite-cas.db")));
            if (includeServers)
            {
                try
                {
                    var pg = await PostgresPeer.OpenAsync(BackendsLoad.PgConnection);
                    peers.Add(pg);
                    versions["PostgreSQL"] = pg.Server;
                }
                catch (Exception e) when (e is Npgsql.NpgsqlException or System.Net.Sockets.SocketException)
                {
                    notes.Add($"PostgreSQL not measured: {e.Message}");
                }
                try
                {
                    var redis = await RedisPeer.OpenAsync(BackendsLoad.RedisConnection);
                    peers.Add(redis);
                    versions["Redis"] = redis.Server;
                }
                catch (StackExchange.Redis.RedisConnectionException e)
                {
                    notes.Add($"Redis not measured: {e.Message}");
                }
            }
            EtcdPeer? etcd = null;
            if (EtcdEndpoint is { } endpoint)
            {
                etcd = await EtcdPeer.OpenAsync(endpoint);
                peers.Add(etcd);
                versions["etcd"] = etcd.Server;
            }
            else notes.Add("etcd not measured: CONCORD_ETCD is not set (scripts/bench.sh starts a private etcd and sets it).");
            foreach (var p in peers) versions[$"desc:{p.Name}"] = p.Description;
            versions["timing:peers"] = $"{Window(settings).TotalSeconds:0.##} s after {Warmup(settings).TotalSeconds:0.##} s of warm-up";

            // Untimed round so nobody's first point pays for JIT compilation and connection set-up.
            foreach (var p in peers)
            {
                try
                {
                    await p.PrepareAsync(SpreadKeys, 4);
                    Harness.Run(4, TimeSpan.Zero, TimeSpan.FromMilliseconds(settings.Quick ? 30 : 200), -1, (c, rng) => p.CasAsync(c, rng.Next(SpreadKeys)));
                }
                catch (Exception e) when (p is PostgresPeer or RedisPeer)
                {
                    s_failed[p.Name] = $"warm-up: {e.GetType().Name}: {e.Message.Split('\n')[0]}";
                }
            }

            foreach (var clients in settings.Quick ? [1, 4] : Clients)
                points.AddRange(await Sweep("cas-clients", clients, peers, SpreadKeys, clients, settings, log));
            foreach (var keys in settings.Quick ? [1, 16] : HotKeys)
                points.AddRange(await Sweep("cas-keys", keys, peers, keys, ContentionClients, settings, log));

            // Multi-key transactions: 4 random keys of 1,000, read them, write them all if none changed.
            var txnPeers = peers.Where(p => p.SupportsTxn).ToList();
            foreach (var clients in settings.Quick ? [1] : TxnClients)
            {
                var builders = txnPeers.ToDictionary(p => p.Name, p => new PointBuilder("txn4", p.Name, clients));
                foreach (var p in txnPeers) await p.PrepareAsync(SpreadKeys, clients);
                for (var run = 0; run < settings.Runs; run++)
                {
                    foreach (var p in txnPeers)
                    {
                        var figures = Harness.Run(clients, Warmup(settings), Window(settings), run, (c, rng) => p.TxnAsync(c, Distinct(rng, 4, SpreadKeys)));
                        builders[p.Name].Add(figures);
                        log($"txn4 {clients,2} clients run {run + 1}: {p.Name,-22} {figures.Rate,10:N0} txn/s  p50 {figures.P50Ms:0.000} ms  p99 {figures.P99Ms:0.000} ms  wasted {figures.WastedPerSuccess:0.00}");
                    }
                }
                points.AddRange(builders.Values.Select(b => b.Build()));
            }

            var embedded = (ConcordPeer)peers[0];
            points.AddRange(await LocksAsync(embedded.Store, etcd, settings, log));
        }
        finally
        {
            foreach (var p in peers)
            {
                try
                {
                    await p.DisposeAsync();
                }
                catch (Exception e) when (p is PostgresPeer or RedisPeer)
                {
                    log($"{p.Name}: clean-up failed: {e.Message.Split('\n')[0]}");
                }
            }
        }
        foreach (var (name, why) in s_failed) notes.Add($"{name} failed during the run and was dropped from later points ({why}); the server is shared with other jobs, which may restart it.");
        return (points, versions, notes);
    }

    private static int[] Distinct(Random rng, int count, int range)
    {
        var set = new HashSet<int>();
        while (set.Count < count) set.Add(rng.Next(range));
        return [.. set.Order()];
    }

    /// <summary>Servers shared with other jobs (PostgreSQL, Redis) can go away mid-run: such a peer is dropped with a note, not the whole run.</summary>
    private static readonly Dictionary<string, string> s_failed = new(StringComparer.Ordinal);

    public static IReadOnlyDictionary<string, string> Failed => s_failed;

    private static async Task<List<CurvePoint>> Sweep(string suite, double x, List<ICasPeer> peers, int keys, int clients, LoadSettings settings, Action<string> log)
    {
        var builders = peers.ToDictionary(p => p.Name, p => new PointBuilder(suite, p.Name, x));
        for (var run = 0; run < settings.Runs; run++)
        {
            foreach (var p in peers.Where(p => !s_failed.ContainsKey(p.Name)))
            {
                try
                {
                    await p.PrepareAsync(keys, clients);
                    var figures = Harness.Run(clients, Warmup(settings), Window(settings), run, (c, rng) => p.CasAsync(c, keys == 1 ? 0 : rng.Next(keys)));
                    builders[p.Name].Add(figures);
                    log($"{suite} {clients,2} clients {keys,4} keys run {run + 1}: {p.Name,-22} {figures.Rate,12:N0} CAS/s  p50 {figures.P50Ms:0.000} ms  p99 {figures.P99Ms:0.000} ms  wasted {figures.WastedPerSuccess:0.00}");
                }
                catch (Exception e) when (p is PostgresPeer or RedisPeer)
                {
                    s_failed[p.Name] = $"{suite} at {x}, run {run + 1}: {e.GetType().Name}: {e.Message.Split('\n')[0]}";
                    log($"{p.Name} FAILED, dropped from the rest of the run: {s_failed[p.Name]}");
                }
            }
        }
        return [.. builders.Values.Where(b => b.HasRuns).Select(b => b.Build())];
    }

    /// <summary>
    /// Locks: every client acquires the same lock, then releases it (a hand-off per cycle; throughput = grants/s) —
    /// Concord's <see cref="StoreLockService"/> (waiting FIFO, fencing token per grant) vs etcd's Lock/Unlock on a lease
    /// per client. Leases: each client renews its own lease back to back — Concord <c>Lease.RenewAsync</c> vs etcd
    /// LeaseKeepAlive on a stream.
    /// </summary>
    private static async Task<List<CurvePoint>> LocksAsync(IConcordStore store, EtcdPeer? etcd, LoadSettings settings, Action<string> log)
    {
        var points = new List<CurvePoint>();
        var locks = new StoreLockService(store);
        var lockClient = etcd is null ? null : new Lockpb.Lock.LockClient(etcd.Channel);
        var leaseClient = etcd is null ? null : new Etcd.Lease.LeaseClient(etcd.Channel);
        foreach (var clients in settings.Quick ? [1, 4] : LockClients)
        {
            var concord = new PointBuilder("lock", "Concord embedded", clients);
            var peer = new PointBuilder("lock", "etcd", clients);
            var etcdLeases = new long[clients];
            if (leaseClient is not null)
                for (var i = 0; i < clients; i++) etcdLeases[i] = (await leaseClient.LeaseGrantAsync(new Etcd.LeaseGrantRequest { TTL = 60 })).ID;
            for (var run = 0; run < settings.Runs; run++)
            {
                var name = $"lock-{clients}-{run}";
                var figures = Harness.Run(clients, Warmup(settings), Window(settings), run, async (c, _) =>
                {
                    var result = await locks.AcquireAsync(PeerKeys.Ns, name, new LockRequest { Owner = $"agent-{c}", Wait = TimeSpan.FromSeconds(30) });
                    if (!result.IsAcquired) throw new InvalidOperationException($"lock not acquired: {result.Status} {result.Message}");
                    await result.Lease!.ReleaseAsync();
                    return 1;
                });
                concord.Add(figures);
                log($"lock {clients,2} clients run {run + 1}: Concord embedded {figures.Rate,8:N0} grants/s p50 {figures.P50Ms:0.000} ms p99 {figures.P99Ms:0.000} ms");
                if (lockClient is not null)
                {
                    var lockName = ByteString.CopyFromUtf8($"/bench-lock/{name}");
                    figures = Harness.Run(clients, Warmup(settings), Window(settings), run, async (c, _) =>
                    {
                        var held = await lockClient.LockAsync(new Lockpb.LockRequest { Name = lockName, Lease = etcdLeases[c] });
                        await lockClient.UnlockAsync(new Lockpb.UnlockRequest { Key = held.Key });
                        return 1;
                    });
                    peer.Add(figures);
                    log($"lock {clients,2} clients run {run + 1}: etcd             {figures.Rate,8:N0} grants/s p50 {figures.P50Ms:0.000} ms p99 {figures.P99Ms:0.000} ms");
                }
            }
            if (leaseClient is not null)
                foreach (var id in etcdLeases) await leaseClient.LeaseRevokeAsync(new Etcd.LeaseRevokeRequest { ID = id });
            points.Add(concord.Build());
            if (lockClient is not null) points.Add(peer.Build());
        }

        foreach (var clients in settings.Quick ? [1] : TxnClients)
        {
            var concord = new PointBuilder("lease", "Concord embedded", clients);
            var peer = new PointBuilder("lease", "etcd", clients);
            var held = new Lease[clients];
            for (var i = 0; i < clients; i++)
                held[i] = (await locks.AcquireAsync(PeerKeys.Ns, $"lease-{clients}-{i}", new LockRequest { Owner = $"agent-{i}", Ttl = TimeSpan.FromSeconds(60) })).Lease!;
            var streams = new Grpc.Core.AsyncDuplexStreamingCall<Etcd.LeaseKeepAliveRequest, Etcd.LeaseKeepAliveResponse>[clients];
            var ids = new long[clients];
            if (leaseClient is not null)
            {
                for (var i = 0; i < clients; i++)
                {
                    ids[i] = (await leaseClient.LeaseGrantAsync(new Etcd.LeaseGrantRequest { TTL = 60 })).ID;
                    streams[i] = leaseClient.LeaseKeepAlive();
                }
            }
            for (var run = 0; run < settings.Runs; run++)
            {
                var figures = Harness.Run(clients, Warmup(settings), Window(settings), run, async (c, _) =>
                {
                    if (!await held[c].RenewAsync(TimeSpan.FromSeconds(60))) throw new InvalidOperationException("lease lost");
                    return 1;
                });
                concord.Add(figures);
                log($"lease {clients,2} clients run {run + 1}: Concord embedded {figures.Rate,8:N0} renewals/s p50 {figures.P50Ms:0.000} ms");
                if (leaseClient is not null)
                {
                    figures = Harness.Run(clients, Warmup(settings), Window(settings), run, async (c, _) =>
                    {
                        await streams[c].RequestStream.WriteAsync(new Etcd.LeaseKeepAliveRequest { ID = ids[c] });
                        if (!await streams[c].ResponseStream.MoveNext(CancellationToken.None) || streams[c].ResponseStream.Current.TTL <= 0)
                            throw new InvalidOperationException("etcd lease lost");
                        return 1;
                    });
                    peer.Add(figures);
                    log($"lease {clients,2} clients run {run + 1}: etcd             {figures.Rate,8:N0} renewals/s p50 {figures.P50Ms:0.000} ms");
                }
            }
            foreach (var lease in held) await lease.ReleaseAsync();
            for (var i = 0; i < clients && leaseClient is not null; i++)
            {
                await streams[i].RequestStream.CompleteAsync();
                streams[i].Dispose();
                await leaseClient.LeaseRevokeAsync(new Etcd.LeaseRevokeRequest { ID = ids[i] });
            }
            points.Add(concord.Build());
            if (leaseClient is not null) points.Add(peer.Build());
        }
        return points;
    }
}
