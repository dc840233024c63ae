using Concord.Redis;
using StackExchange.Redis;

namespace Concord.Tests.Redis;

/// <summary>The Redis store refuses a server it cannot be correct on, with an error that says what to change.</summary>
[Collection(Backends.SharedServiceChanges.Name)]
public sealed class RedisServerChecksTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task OpenAsync_ServerEvictsKeys_RefusedWithClearError()
    {
        _ = RedisStores.Multiplexer; // skips (or fails in CI) when Redis is down
        await using var admin = await ConnectionMultiplexer.ConnectAsync((Environment.GetEnvironmentVariable("CONCORD_REDIS") ?? "127.0.0.1:6379") + ",allowAdmin=true");
        var server = admin.GetServers()[0];
        var maxMemory = (await server.ConfigGetAsync("maxmemory")).Single().Value;
        var policy = (await server.ConfigGetAsync("maxmemory-policy")).Single().Value;
        try
        {
            // A limit far above what the tests use, so nothing is evicted meanwhile; only the policy matters.
            await server.ConfigSetAsync("maxmemory", "4gb");
            await server.ConfigSetAsync("maxmemory-policy", "allkeys-lru");
            var e = await Assert.ThrowsAsync<StoreUnavailableException>(async () =>
                await RedisStore.OpenAsync(new RedisStoreOptions { Multiplexer = RedisStores.Multiplexer, Prefix = "t" + Guid.NewGuid().ToString("N")[..12] }, Ct));
            Assert.Contains("maxmemory-policy noeviction", e.Message, StringComparison.Ordinal);
            Assert.False(e.IsTransient);
        }
        finally
        {
            await server.ConfigSetAsync("maxmemory-policy", policy);
            await server.ConfigSetAsync("maxmemory", maxMemory);
        }
    }
}
