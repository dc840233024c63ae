using System.Text.Json;
using Concord.Engine;

namespace Concord.Tests.Engine;

/// <summary>
/// The engine's list index: a list at a revision must return exactly the keys live at that revision, for the latest
/// revision and for older retained ones, while deleted keys accumulate as tombstones and the live-key history is trimmed.
/// </summary>
public sealed class ListIndexTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly JsonElement One = JsonDocument.Parse("1").RootElement.Clone();

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(300)]
    public async Task List_AtEveryRetainedRevision_MatchesModelUnderChurn(int seed)
    {
        await using var store = ConcordEngine.CreateInMemory(new ConcordEngineOptions { RetainedRevisions = 200 });
        var random = new Random(seed);
        var live = new SortedSet<string>(StringComparer.Ordinal);
        var states = new Dictionary<long, string[]>();
        for (var step = 0; step < 1500; step++)
        {
            var key = $"{(random.Next(3) == 0 ? "a" : "b")}/{random.Next(60):D3}";
            WriteResult result;
            if (live.Contains(key) && random.Next(2) == 0)
            {
                result = await store.DeleteAsync("n", key, new WriteOptions { Expect = Expect.Exists }, Ct);
                live.Remove(key);
            }
            else
            {
                result = await store.PutAsync("n", key, One, null, Ct);
                live.Add(key);
            }
            states[result.Revision] = [.. live.Where(k => k.StartsWith("b/", StringComparison.Ordinal))];
        }

        var latest = await store.GetRevisionAsync(Ct);
        foreach (var (revision, expected) in states.Where(s => s.Key > latest - 150))
        {
            Assert.Equal(expected, await ListAllAsync(store, "b/", revision));
        }
        Assert.Equal(states[latest], await ListAllAsync(store, "b/", null));
    }

    private static async Task<string[]> ListAllAsync(IConcordStore store, string prefix, long? revision)
    {
        var keys = new List<string>();
        string? after = null;
        do
        {
            var page = await store.ListAsync("n", new ListRequest { Prefix = prefix, After = after, Limit = 7, AtRevision = revision }, Ct);
            keys.AddRange(page.Records.Select(r => r.Key));
            after = page.NextAfter;
        }
        while (after is not null);
        return [.. keys];
    }

    [Fact]
    public async Task List_AfterRecreatingDeletedKeys_AndAfterSnapshotRecovery_ShowsLiveKeysOnly()
    {
        var dir = Path.Combine(Path.GetTempPath(), "concord-listindex-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using (var store = await ConcordEngine.OpenAsync(new ConcordEngineOptions { DataDirectory = dir }, Ct))
            {
                for (var i = 0; i < 100; i++) await store.PutAsync("n", $"k/{i:D3}", One, null, Ct);
                for (var i = 0; i < 100; i++)
                {
                    if (i % 10 != 0) await store.DeleteAsync("n", $"k/{i:D3}", null, Ct);
                }
                await store.PutAsync("n", "k/005", One, null, Ct);
                await store.SnapshotAsync(Ct);
                await store.DeleteAsync("n", "k/010", null, Ct);
                await store.PutAsync("n", "k/011", One, null, Ct);
            }
            await using (var store = await ConcordEngine.OpenAsync(new ConcordEngineOptions { DataDirectory = dir }, Ct))
            {
                string[] expected = ["k/000", "k/005", "k/011", "k/020", "k/030", "k/040", "k/050", "k/060", "k/070", "k/080", "k/090"];
                Assert.Equal(expected, await ListAllAsync(store, "k/", null));
                Assert.Equal(expected[2..], (await store.ListAsync("n", new ListRequest { Prefix = "k/", After = "k/005" }, Ct)).Records.Select(r => r.Key));
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
