using System.Text.Json;
using Concord.Redis;
using Concord.Tests.Conformance;

namespace Concord.Tests.Redis;

/// <summary>
/// Pipelined speculative commits on Redis: one node keeps several commit scripts on the wire, each evaluated on top of
/// the ones before it, while a second node writes the same keys — so flights fail mid-pipeline and must be re-run in
/// order through the read path. Every applied compare-and-swap must be counted exactly once and the revisions must stay
/// one per commit.
/// </summary>
[Trait("Category", "Stress")]
public sealed class RedisPipelineTests : IAsyncLifetime
{
    private const int Clients = 16;
    private const int IncrementsPerClient = 40;
    private static readonly string[] Keys = ["p/0", "p/1", "p/2", "p/3"];
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private readonly RedisStores _stores = new();

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => _stores.DeletePrefixesAsync();

    [Fact]
    public async Task PipelinedCas_WhileAnotherNodeWritesTheSameKeys_EveryAppliedCasCountedOnceAndFlightsRerun()
    {
        var a = (RedisStore)await _stores.CreateAsync(StoreFixtureOptions.Default);
        var b = await _stores.OpenNodeAsync(a);
        // Several rounds: the race that only the commit token catches (another node's commits reaching exactly the
        // revision a failed flight's successor expects) is frequent but not certain in one round.
        for (var round = 0; round < Rounds; round++) await RoundAsync(a, b, $"pipe{round}");
        var (pipelined, rerun) = a.PipelineStats;
        Assert.True(pipelined > 0, "no commit script was sent while another was in flight: the test did not test pipelining");
        Assert.True(rerun > 0, "no flight failed: the test did not test the re-run of a broken pipeline");
    }

    private const int Rounds = 6;

    private static async Task RoundAsync(RedisStore a, IConcordStore b, string ns)
    {
        foreach (var key in Keys) await a.PutAsync(ns, key, JsonSerializer.SerializeToElement(new { n = 0 }), null, Ct);
        var start = await a.GetRevisionAsync(Ct);
        var applied = new int[Keys.Length];

        // Node B: increments by patch, so it never conflicts but keeps moving the revision under A's pipeline.
        // One commit each, so B's revisions often land exactly where A's failed flights expected theirs — which only the
        // commit token tells apart.
        var interferers = Enumerable.Range(0, 2).Select(t => Task.Run(async () =>
        {
            for (var i = 0; i < 150; i++)
            {
                var k = (i + t) % Keys.Length;
                var w = await b.PatchAsync(ns, Keys[k], JsonPatch.Create().Increment("/n"), null, Ct);
                Assert.True(w.IsApplied);
                Interlocked.Increment(ref applied[k]);
            }
        }, Ct)).ToArray();
        // Node A: compare-and-swap from the version each client last saw — no read before a write, so batches are
        // speculative and pipelined; a conflict carries the current record to recompute from.
        var clients = Enumerable.Range(0, Clients).Select(client => Task.Run(async () =>
        {
            var random = new Random(client);
            for (var i = 0; i < IncrementsPerClient; i++)
            {
                var k = random.Next(Keys.Length);
                var current = (await a.GetAsync(ns, Keys[k], null, Ct))!;
                while (true)
                {
                    var next = JsonSerializer.SerializeToElement(new { n = current.Value.GetProperty("n").GetInt64() + 1 });
                    var w = await a.PutAsync(ns, Keys[k], next, new WriteOptions { Expect = Expect.Version(current.Version) }, Ct);
                    if (w.IsApplied)
                    {
                        Interlocked.Increment(ref applied[k]);
                        break;
                    }
                    Assert.Equal(ConflictKind.VersionMismatch, w.Conflict);
                    current = w.Record!; // a conflict carries the current record
                }
            }
        }, Ct)).ToArray();
        await Task.WhenAll([.. clients, .. interferers]);

        var total = applied.Sum();
        for (var k = 0; k < Keys.Length; k++)
        {
            foreach (var node in new IConcordStore[] { a, b })
            {
                var record = (await node.GetAsync(ns, Keys[k], null, Ct))!;
                Assert.Equal(applied[k], record.Value.GetProperty("n").GetInt64());
                Assert.Equal(applied[k] + 1, record.Version);
            }
        }
        Assert.Equal(start + total, await b.GetRevisionAsync(Ct));
    }
}
