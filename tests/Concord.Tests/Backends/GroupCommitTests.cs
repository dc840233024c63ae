using System.Text.Json;
using Concord.Tests.Conformance;
using Concord.Tests.Postgres;
using Concord.Tests.Redis;

namespace Concord.Tests.Backends;

/// <summary>
/// Group commit (PostgreSQL, Redis) and speculative commits (Redis) under real concurrency: two nodes over one backend,
/// clients on both doing compare-and-swap increments of a few hot keys, so batches hold several requests for one key and
/// nodes keep invalidating each other's remembered rows. Every applied increment must be counted exactly once, and the
/// revisions must stay one per commit, consecutive, in the change feed's order.
/// </summary>
[Trait("Category", "Stress")]
public abstract class GroupCommitTests
{
    private const int ClientsPerNode = 4;
    private const int IncrementsPerClient = 25;
    private static readonly string[] Keys = ["hot/0", "hot/1", "hot/2"];
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A store and a second node over the same data.</summary>
    private protected abstract Task<(IConcordStore A, IConcordStore B)> OpenTwoNodesAsync();

    private protected abstract ValueTask CleanupAsync();

    [Fact]
    public async Task TwoNodes_ConcurrentCasIncrementsOfHotKeys_EveryAppliedIncrementCountedOnceAndRevisionsConsecutive()
    {
        var (a, b) = await OpenTwoNodesAsync();
        try
        {
            const string ns = "gc";
            foreach (var key in Keys) await a.PutAsync(ns, key, JsonSerializer.SerializeToElement(new { n = 0 }), null, Ct);
            var start = await a.GetRevisionAsync(Ct);
            var applied = new int[Keys.Length];
            var conflicts = 0;
            var clients = Enumerable.Range(0, 2 * ClientsPerNode).Select(client => Task.Run(async () =>
            {
                var store = client % 2 == 0 ? a : b;
                var random = new Random(client);
                for (var i = 0; i < IncrementsPerClient; i++)
                {
                    var k = random.Next(Keys.Length);
                    while (true)
                    {
                        var current = (await store.GetAsync(ns, Keys[k], null, Ct))!;
                        var next = JsonSerializer.SerializeToElement(new { n = current.Value.GetProperty("n").GetInt64() + 1 });
                        var w = await store.PutAsync(ns, Keys[k], next, new WriteOptions { Expect = Expect.Version(current.Version) }, Ct);
                        if (w.IsApplied)
                        {
                            Interlocked.Increment(ref applied[k]);
                            break;
                        }
                        Assert.Equal(ConflictKind.VersionMismatch, w.Conflict);
                        Interlocked.Increment(ref conflicts);
                    }
                }
            }, Ct)).ToArray();
            await Task.WhenAll(clients);

            var total = applied.Sum();
            Assert.Equal(2 * ClientsPerNode * IncrementsPerClient, total);
            for (var k = 0; k < Keys.Length; k++)
            {
                foreach (var node in new[] { a, b })
                {
                    var record = (await node.GetAsync(ns, Keys[k], null, Ct))!;
                    Assert.Equal(applied[k], record.Value.GetProperty("n").GetInt64());
                    Assert.Equal(applied[k] + 1, record.Version);
                }
            }
            // One revision per applied increment, no gaps, and the change feed lists them in order.
            Assert.Equal(start + total, await b.GetRevisionAsync(Ct));
            var seen = new List<long>();
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            await foreach (var change in b.WatchAsync(ns, new WatchRequest { Prefix = "hot/", FromRevision = start + 1 }, stop.Token))
            {
                seen.Add(change.Revision);
                if (seen.Count == total) break;
            }
            Assert.Equal(Enumerable.Range(0, total).Select(i => start + 1 + i), seen);
            TestContext.Current.TestOutputHelper?.WriteLine($"{total} increments, {conflicts} conflicts");
        }
        finally
        {
            await b.DisposeAsync();
            await a.DisposeAsync();
            await CleanupAsync();
        }
    }
}

/// <summary>Group commit on PostgreSQL.</summary>
public sealed class PostgresGroupCommitTests : GroupCommitTests
{
    private readonly PostgresStores _stores = new();

    private protected override async Task<(IConcordStore A, IConcordStore B)> OpenTwoNodesAsync()
    {
        var a = await _stores.CreateAsync(StoreFixtureOptions.Default);
        return (a, await _stores.OpenNodeAsync(a));
    }

    private protected override ValueTask CleanupAsync() => _stores.DropSchemasAsync();
}

/// <summary>Group commit and speculative commits on Redis.</summary>
public sealed class RedisGroupCommitTests : GroupCommitTests
{
    private readonly RedisStores _stores = new();

    private protected override async Task<(IConcordStore A, IConcordStore B)> OpenTwoNodesAsync()
    {
        var a = await _stores.CreateAsync(StoreFixtureOptions.Default);
        return (a, await _stores.OpenNodeAsync(a));
    }

    private protected override ValueTask CleanupAsync() => _stores.DeletePrefixesAsync();
}
