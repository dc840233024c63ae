using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Concord.Client;
using Concord.Engine;
using Concord.Server;
using Google.Protobuf;
using Grpc.Net.Client;
using Microsoft.Data.Sqlite;
using Npgsql;
using StackExchange.Redis;
using Etcd = Etcdserverpb;

namespace Concord.Benchmarks.Load;

/// <summary>
/// A store that can do one compare-and-swap "logical update" of a counter: read the key, write it expecting what was
/// read, retry a lost race. Every peer implements the same loop with its own primitives.
/// </summary>
internal interface ICasPeer : IAsyncDisposable
{
    /// <summary>Legend name.</summary>
    string Name { get; }

    /// <summary>What exactly runs, for the doc.</summary>
    string Description { get; }

    /// <summary>Creates keys 0…<paramref name="keys"/>-1 holding 0 (replacing earlier ones) and per-client resources.</summary>
    Task PrepareAsync(int keys, int clients);

    /// <summary>One logical update of <paramref name="key"/> by client <paramref name="client"/>; returns the attempts it took.</summary>
    Task<long> CasAsync(int client, int key);

    /// <summary>Whether <see cref="TxnAsync"/> is implemented.</summary>
    bool SupportsTxn => false;

    /// <summary>One optimistic transaction over several keys: read them all, write them all if none changed, retry on conflict.</summary>
    Task<long> TxnAsync(int client, int[] keys) => throw new NotSupportedException();
}

internal static class PeerKeys
{
    public const string Ns = "bench";

    public static string Key(int i) => $"cas/{i:D5}";

    public static JsonElement Counter(long n) => JsonSerializer.SerializeToElement(new { n });
}

/// <summary>Concord through <see cref="IConcordStore"/>: the embedded engine (memory or durable) or the HTTP client.</summary>
internal sealed class ConcordPeer(string name, string description, IConcordStore store, Func<ValueTask>? dispose = null) : ICasPeer
{
    public string Name => name;
    public string Description => description;
    public IConcordStore Store => store;
    public bool SupportsTxn => true;

    public static async Task<ConcordPeer> EmbeddedAsync(string directory) =>
        new("Concord embedded", "Concord embedded engine (durable: group commit, fsync before acknowledging), in process: GetAsync, then PutAsync(Expect.Version)",
            await ConcordEngine.OpenAsync(new ConcordEngineOptions { DataDirectory = directory }));

    public static ConcordPeer Memory() =>
        new("Concord memory", "Concord in-memory engine, in process: GetAsync, then PutAsync(Expect.Version)", ConcordEngine.CreateInMemory());

    /// <summary><c>ConcordServer</c> on 127.0.0.1 over a fresh embedded engine, driven through <see cref="ConcordHttpStore"/> (HTTP/1.1, keep-alive).</summary>
    public static async Task<ConcordPeer> HttpAsync(string directory, int port)
    {
        var engine = await ConcordEngine.OpenAsync(new ConcordEngineOptions { DataDirectory = directory });
        var app = await ConcordServer.CreateAsync(["--urls", $"http://127.0.0.1:{port}", "--Logging:LogLevel:Default=Warning"], store: engine);
        await app.StartAsync();
        var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256 }) { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        var client = new ConcordHttpStore(http);
        return new ConcordPeer("Concord HTTP", $"`ConcordServer` (Kestrel, 127.0.0.1) over a durable embedded engine, through `ConcordHttpStore` (HTTP/1.1, default options: idempotency keys on): GET, then PUT with If-Match",
            client, async () =>
            {
                http.Dispose();
                await app.StopAsync();
                await app.DisposeAsync();
                await engine.DisposeAsync();
            });
    }

    public async Task PrepareAsync(int keys, int clients)
    {
        var zero = PeerKeys.Counter(0);
        for (var start = 0; start < keys; start += 500)
        {
            var ops = Enumerable.Range(start, Math.Min(500, keys - start)).Select(i => new TxnOp(TxnOpKind.Put, PeerKeys.Key(i), zero, null, Expect.Any, null)).ToList();
            await store.TransactAsync(PeerKeys.Ns, new TxnRequest { Then = ops });
        }
    }

    public async Task<long> CasAsync(int client, int key)
    {
        var k = PeerKeys.Key(key);
        var current = await store.GetAsync(PeerKeys.Ns, k);
        for (long attempts = 1; ; attempts++)
        {
            var n = current is null ? 0 : current.Value.GetProperty("n").GetInt64();
            var result = await store.PutAsync(PeerKeys.Ns, k, PeerKeys.Counter(n + 1), new WriteOptions { Expect = Expect.Version(current?.Version ?? 0) });
            if (result.IsApplied) return attempts;
            current = result.Record ?? await store.GetAsync(PeerKeys.Ns, k);
        }
    }

    public async Task<long> TxnAsync(int client, int[] keys)
    {
        for (long attempts = 1; ; attempts++)
        {
            var ops = new List<TxnOp>(keys.Length);
            foreach (var key in keys)
            {
                var k = PeerKeys.Key(key);
                var current = await store.GetAsync(PeerKeys.Ns, k);
                var n = current is null ? 0 : current.Value.GetProperty("n").GetInt64();
                ops.Add(new TxnOp(TxnOpKind.Put, k, PeerKeys.Counter(n + 1), null, Expect.Version(current?.Version ?? 0), null));
            }
            var result = await store.TransactAsync(PeerKeys.Ns, new TxnRequest { Then = ops });
            if (result.Succeeded) return attempts;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (dispose is not null) await dispose();
        else await store.DisposeAsync();
    }
}

/// <summary>The lock-free CAS loop on a <see cref="ConcurrentDictionary{TKey, TValue}"/>: TryGetValue, then TryUpdate.</summary>
internal sealed class DictionaryPeer : ICasPeer
{
    private readonly ConcurrentDictionary<int, long> _map = new();
    public string Name => "ConcurrentDictionary";
    public string Description => "ConcurrentDictionary<int, long> in process: TryGetValue, then TryUpdate(key, n + 1, n)";

    public Task PrepareAsync(int keys, int clients)
    {
        _map.Clear();
        for (var i = 0; i < keys; i++) _map[i] = 0;
        return Task.CompletedTask;
    }

    public Task<long> CasAsync(int client, int key)
    {
        for (long attempts = 1; ; attempts++)
        {
            var n = _map[key];
            if (_map.TryUpdate(key, n + 1, n)) return Task.FromResult(attempts);
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>SQLite (WAL, synchronous=FULL) on the same disk as Concord's data: SELECT, then UPDATE … WHERE v = read, one connection per client.</summary>
internal sealed class SqlitePeer(string path) : ICasPeer
{
    private readonly List<SqliteConnection> _connections = [];
    public string Name => "SQLite";
    public string Description => "SQLite (WAL, synchronous=FULL, busy_timeout=10000) in a file next to Concord's data: SELECT v, then UPDATE … SET v = v + 1 WHERE k = ? AND v = ? (autocommit), one connection per client (calls block a thread-pool thread)";

    private SqliteConnection Open()
    {
        var c = new SqliteConnection($"Data Source={path};Pooling=False");
        c.Open();
        Exec(c, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=10000;");
        return c;
    }

    private static void Exec(SqliteConnection c, string sql)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    public Task PrepareAsync(int keys, int clients)
    {
        while (_connections.Count < Math.Max(1, clients)) _connections.Add(Open());
        var c = _connections[0];
        Exec(c, "CREATE TABLE IF NOT EXISTS kv (k INTEGER PRIMARY KEY, v INTEGER NOT NULL); DELETE FROM kv;");
        using var tx = c.BeginTransaction();
        using var insert = c.CreateCommand();
        insert.CommandText = "INSERT INTO kv (k, v) VALUES ($k, 0)";
        var p = insert.Parameters.Add("$k", SqliteType.Integer);
        for (var i = 0; i < keys; i++)
        {
            p.Value = i;
            insert.ExecuteNonQuery();
        }
        tx.Commit();
        return Task.CompletedTask;
    }

    public Task<long> CasAsync(int client, int key)
    {
        var c = _connections[client];
        for (long attempts = 1; ; attempts++)
        {
            long n;
            using (var read = c.CreateCommand())
            {
                read.CommandText = "SELECT v FROM kv WHERE k = $k";
                read.Parameters.AddWithValue("$k", key);
                n = (long)read.ExecuteScalar()!;
            }
            using var write = c.CreateCommand();
            write.CommandText = "UPDATE kv SET v = $n WHERE k = $k AND v = $old";
            write.Parameters.AddWithValue("$n", n + 1);
            write.Parameters.AddWithValue("$k", key);
            write.Parameters.AddWithValue("$old", n);
            if (write.ExecuteNonQuery() == 1) return Task.FromResult(attempts);
        }
    }

    public ValueTask DisposeAsync()
    {
        foreach (var c in _connections) c.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>PostgreSQL: SELECT, then UPDATE … WHERE v = read (autocommit), on a plain table in a scratch schema.</summary>
internal sealed class PostgresPeer(NpgsqlDataSource source, string schema, string server) : ICasPeer
{
    public string Name => "PostgreSQL";
    public string Description => $"{server}, Npgsql pool: SELECT v, then UPDATE {schema}.kv SET v = v + 1 WHERE k = $1 AND v = $2 (autocommit)";
    public string Server => server;
    public bool SupportsTxn => false;

    public static async Task<PostgresPeer> OpenAsync(string connection)
    {
        var builder = new NpgsqlConnectionStringBuilder(connection) { MaxPoolSize = 70 };
        var source = NpgsqlDataSource.Create(builder.ConnectionString);
        var schema = $"bench_cas_{Environment.ProcessId}";
        await using (var cmd = source.CreateCommand($"CREATE SCHEMA IF NOT EXISTS {schema}; CREATE TABLE IF NOT EXISTS {schema}.kv (k int PRIMARY KEY, v bigint NOT NULL)"))
            await cmd.ExecuteNonQueryAsync();
        await using var info = source.CreateCommand("SELECT 'PostgreSQL ' || current_setting('server_version') || ' (synchronous_commit=' || current_setting('synchronous_commit') || ', fsync=' || current_setting('fsync') || ')'");
        return new PostgresPeer(source, schema, (string)(await info.ExecuteScalarAsync())!);
    }

    public async Task PrepareAsync(int keys, int clients)
    {
        await using var cmd = source.CreateCommand($"TRUNCATE {schema}.kv; INSERT INTO {schema}.kv SELECT g, 0 FROM generate_series(0, {keys - 1}) g");
        await cmd.ExecuteNonQueryAsync();
    }

    public async Task<long> CasAsync(int client, int key)
    {
        try
        {
            return await CasCoreAsync(key);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.TooManyConnections)
        {
            // The server is shared with other test runs: a refused connection is a failed attempt, not a crash.
            await Task.Delay(10);
            return -1;
        }
    }

    private async Task<long> CasCoreAsync(int key)
    {
        for (long attempts = 1; ; attempts++)
        {
            await using var read = source.CreateCommand($"SELECT v FROM {schema}.kv WHERE k = $1");
            read.Parameters.Add(new NpgsqlParameter<int> { TypedValue = key });
            var n = (long)(await read.ExecuteScalarAsync())!;
            await using var write = source.CreateCommand($"UPDATE {schema}.kv SET v = $3 WHERE k = $1 AND v = $2");
            write.Parameters.Add(new NpgsqlParameter<int> { TypedValue = key });
            write.Parameters.Add(new NpgsqlParameter<long> { TypedValue = n });
            write.Parameters.Add(new NpgsqlParameter<long> { TypedValue = n + 1 });
            if (await write.ExecuteNonQueryAsync() == 1) return attempts;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await using (var cmd = source.CreateCommand($"DROP SCHEMA IF EXISTS {schema} CASCADE")) await cmd.ExecuteNonQueryAsync();
        await source.DisposeAsync();
    }
}

/// <summary>Redis: GET, then a Lua script that SETs only if the value is still the one read.</summary>
internal sealed class RedisPeer(ConnectionMultiplexer mux, string prefix, string server) : ICasPeer
{
    private const string CasScript = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end return 0";
    private readonly IDatabase _db = mux.GetDatabase(9);
    private int _keys;
    public string Name => "Redis";
    public string Description => $"{server}, StackExchange.Redis multiplexer: GET, then EVAL of a compare-and-set Lua script (SET only if the value is still the one read)";
    public string Server => server;

    public static async Task<RedisPeer> OpenAsync(string configuration)
    {
        var mux = await ConnectionMultiplexer.ConnectAsync(configuration + ",allowAdmin=true");
        var endpoint = mux.GetEndPoints()[0];
        var info = (await mux.GetServer(endpoint).InfoAsync("server")).SelectMany(g => g).FirstOrDefault(p => p.Key == "redis_version").Value;
        var config = (await mux.GetServer(endpoint).ConfigGetAsync("append*")).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        return new RedisPeer(mux, $"benchcas{Environment.ProcessId}:", $"Redis {info} (appendonly={config.GetValueOrDefault("appendonly")}, appendfsync={config.GetValueOrDefault("appendfsync")})");
    }

    public async Task PrepareAsync(int keys, int clients)
    {
        await Clear();
        _keys = keys;
        var batch = _db.CreateBatch();
        var tasks = Enumerable.Range(0, keys).Select(i => batch.StringSetAsync(prefix + i, "0")).ToArray();
        batch.Execute();
        await Task.WhenAll(tasks);
    }

    private async Task Clear()
    {
        if (_keys > 0) await _db.KeyDeleteAsync([.. Enumerable.Range(0, _keys).Select(i => (RedisKey)(prefix + i))]);
    }

    public async Task<long> CasAsync(int client, int key)
    {
        RedisKey k = prefix + key;
        for (long attempts = 1; ; attempts++)
        {
            var n = (long)(await _db.StringGetAsync(k));
            var ok = (long)(await _db.ScriptEvaluateAsync(CasScript, [k], [n.ToString(CultureInfo.InvariantCulture), (n + 1).ToString(CultureInfo.InvariantCulture)]));
            if (ok == 1) return attempts;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Clear();
        await mux.DisposeAsync();
    }
}

/// <summary>etcd v3 over gRPC (Grpc.Net.Client, HTTP/2 on loopback): Range, then Txn(compare mod_revision = read → put).</summary>
internal sealed class EtcdPeer(GrpcChannel channel, string server) : ICasPeer
{
    private readonly Etcd.KV.KVClient _kv = new(channel);
    public string Name => "etcd";
    public string Description => $"{server} (single member, loopback, data under /tmp, default fsync), gRPC through Grpc.Net.Client with dotnet-etcd's generated stubs: Range, then Txn(compare mod_revision == read → Put)";
    public bool SupportsTxn => true;
    public GrpcChannel Channel => channel;
    public string Server => server;

    public static async Task<EtcdPeer> OpenAsync(string endpoint)
    {
        var channel = GrpcChannel.ForAddress(endpoint, new GrpcChannelOptions { HttpHandler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true } });
        var status = await new Etcd.Maintenance.MaintenanceClient(channel).StatusAsync(new Etcd.StatusRequest());
        return new EtcdPeer(channel, $"etcd {status.Version}");
    }

    private static ByteString Key(int i) => ByteString.CopyFromUtf8("/bench/" + PeerKeys.Key(i));

    public async Task PrepareAsync(int keys, int clients)
    {
        await _kv.DeleteRangeAsync(new Etcd.DeleteRangeRequest { Key = ByteString.CopyFromUtf8("/bench/"), RangeEnd = ByteString.CopyFromUtf8("/bench0") });
        for (var start = 0; start < keys; start += 100)
        {
            var txn = new Etcd.TxnRequest();
            for (var i = start; i < Math.Min(keys, start + 100); i++)
                txn.Success.Add(new Etcd.RequestOp { RequestPut = new Etcd.PutRequest { Key = Key(i), Value = ByteString.CopyFromUtf8("0") } });
            await _kv.TxnAsync(txn);
        }
    }

    public async Task<long> CasAsync(int client, int key)
    {
        var k = Key(key);
        for (long attempts = 1; ; attempts++)
        {
            var range = await _kv.RangeAsync(new Etcd.RangeRequest { Key = k });
            var kv = range.Kvs[0];
            var n = long.Parse(kv.Value.ToStringUtf8(), CultureInfo.InvariantCulture);
            var txn = new Etcd.TxnRequest();
            txn.Compare.Add(new Etcd.Compare { Key = k, Target = Etcd.Compare.Types.CompareTarget.Mod, Result = Etcd.Compare.Types.CompareResult.Equal, ModRevision = kv.ModRevision });
            txn.Success.Add(new Etcd.RequestOp { RequestPut = new Etcd.PutRequest { Key = k, Value = ByteString.CopyFromUtf8((n + 1).ToString(CultureInfo.InvariantCulture)) } });
            if ((await _kv.TxnAsync(txn)).Succeeded) return attempts;
        }
    }

    public async Task<long> TxnAsync(int client, int[] keys)
    {
        for (long attempts = 1; ; attempts++)
        {
            var txn = new Etcd.TxnRequest();
            foreach (var key in keys)
            {
                var k = Key(key);
                var kv = (await _kv.RangeAsync(new Etcd.RangeRequest { Key = k })).Kvs[0];
                var n = long.Parse(kv.Value.ToStringUtf8(), CultureInfo.InvariantCulture);
                txn.Compare.Add(new Etcd.Compare { Key = k, Target = Etcd.Compare.Types.CompareTarget.Mod, Result = Etcd.Compare.Types.CompareResult.Equal, ModRevision = kv.ModRevision });
                txn.Success.Add(new Etcd.RequestOp { RequestPut = new Etcd.PutRequest { Key = k, Value = ByteString.CopyFromUtf8((n + 1).ToString(CultureInfo.InvariantCulture)) } });
            }
            if ((await _kv.TxnAsync(txn)).Succeeded) return attempts;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _kv.DeleteRangeAsync(new Etcd.DeleteRangeRequest { Key = ByteString.CopyFromUtf8("/bench/"), RangeEnd = ByteString.CopyFromUtf8("/bench0") });
        channel.Dispose();
    }
}
