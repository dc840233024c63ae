using Concord.Redis;
using Concord.Tests.Conformance;
using Concord.Tests.Engine;
using StackExchange.Redis;

namespace Concord.Tests.Redis;

/// <summary>
/// Redis stores for the shared suites: each store gets its own key prefix, deleted afterwards. The server comes from
/// CONCORD_REDIS (scripts/ensure-deps.sh starts Redis and sets it); without it the tests skip (in CI they fail).
/// </summary>
internal sealed class RedisStores
{
    private static readonly Lazy<ConnectionMultiplexer?> s_mux = new(() =>
    {
        try
        {
            return ConnectionMultiplexer.Connect(Environment.GetEnvironmentVariable("CONCORD_REDIS") ?? "127.0.0.1:6379");
        }
        catch (RedisConnectionException)
        {
            return null;
        }
    });

    private readonly Dictionary<IConcordStore, RedisStoreOptions> _open = new(ReferenceEqualityComparer.Instance);
    private readonly List<string> _prefixes = [];
    private readonly Lock _gate = new();

    public static ConnectionMultiplexer Multiplexer
    {
        get
        {
            var mux = s_mux.Value;
            if (mux is null && Environment.GetEnvironmentVariable("CI") == "true") throw new InvalidOperationException("Redis is not reachable; scripts/ensure-deps.sh starts it");
            Assert.SkipWhen(mux is null, "Redis is not reachable; run scripts/ensure-deps.sh");
            return mux!;
        }
    }

    public async Task<IConcordStore> CreateAsync(StoreFixtureOptions options)
    {
        var prefix = "t" + Guid.NewGuid().ToString("N")[..16];
        lock (_gate) _prefixes.Add(prefix);
        var redis = new RedisStoreOptions { Multiplexer = Multiplexer, Prefix = prefix, Semantics = EngineStores.ToEngineOptions(options, null), PollInterval = TimeSpan.FromMilliseconds(200) };
        var store = await RedisStore.OpenAsync(redis);
        lock (_gate) _open[store] = redis;
        return store;
    }

    public async Task<IConcordStore> RestartAsync(IConcordStore store)
    {
        RedisStoreOptions options;
        lock (_gate) options = _open[store];
        await store.DisposeAsync();
        var reopened = await RedisStore.OpenAsync(options);
        lock (_gate) _open[reopened] = options;
        return reopened;
    }

    /// <summary>Another node over the same keys as <paramref name="store"/> (same prefix), closed by the caller.</summary>
    public async Task<IConcordStore> OpenNodeAsync(IConcordStore store)
    {
        RedisStoreOptions options;
        lock (_gate) options = _open[store];
        return await RedisStore.OpenAsync(options);
    }

    public async ValueTask DeletePrefixesAsync()
    {
        List<string> prefixes;
        lock (_gate) prefixes = [.. _prefixes];
        if (prefixes.Count == 0) return;
        var mux = Multiplexer;
        var server = mux.GetServers()[0];
        var db = mux.GetDatabase();
        foreach (var prefix in prefixes)
        {
            var keys = new List<RedisKey>();
            await foreach (var key in server.KeysAsync(pattern: prefix + ":*", pageSize: 1000)) keys.Add(key);
            if (keys.Count > 0) await db.KeyDeleteAsync([.. keys]);
        }
    }
}

/// <summary>The conformance suite on Redis.</summary>
public sealed class RedisConformanceTests : StoreConformanceTests
{
    private readonly RedisStores _stores = new();

    protected override Task<IConcordStore> CreateStoreAsync(StoreFixtureOptions options) => _stores.CreateAsync(options);

    protected override bool SupportsRestart => true;

    protected override Task<IConcordStore> RestartAsync(IConcordStore store) => _stores.RestartAsync(store);

    protected override double StressScale => 0.2;

    protected override ValueTask CleanupAsync() => _stores.DeletePrefixesAsync();
}

/// <summary>The model-based tests on Redis.</summary>
public sealed class RedisModelTests : StoreModelTests
{
    private readonly RedisStores _stores = new();

    protected override Task<IConcordStore> CreateStoreAsync(StoreFixtureOptions options) => _stores.CreateAsync(options);

    protected override double StressScale => 0.2;

    protected override ValueTask CleanupAsync() => _stores.DeletePrefixesAsync();
}
