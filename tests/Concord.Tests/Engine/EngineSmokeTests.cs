using System.Text.Json;
using Concord.Engine;

namespace Concord.Tests.Engine;

public sealed class EngineSmokeTests
{
    private static JsonElement J(string json) => JsonDocument.Parse(json).RootElement.Clone();

    [Fact]
    public async Task PutGetCasPatch_Memory_Works()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var s = new ConcordSession(store, "t", "a1");
        var w = await s.PutAsync("acct/1", J("""{"fees":1}"""), Expect.Absent, cancellationToken: TestContext.Current.CancellationToken);
        Assert.True(w.IsApplied);
        Assert.Equal(1, w.Version);
        var c = await s.PutAsync("acct/1", J("""{"fees":2}"""), Expect.Version(5), cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(ConflictKind.VersionMismatch, c.Conflict);
        Assert.Equal(1, c.Record!.Version);
        var p = await s.PatchAsync("acct/1", JsonPatch.Create().Increment("/fees", 2), cancellationToken: TestContext.Current.CancellationToken);
        Assert.True(p.IsApplied);
        var g = await s.GetAsync("acct/1", TestContext.Current.CancellationToken);
        Assert.Equal(3, g!.Value.GetProperty("fees").GetInt64());
        Assert.Equal(2, g.Version);
    }

    [Fact]
    public async Task Embedded_SurvivesReopen()
    {
        var dir = Path.Combine(Path.GetTempPath(), "concord-smoke-" + Guid.NewGuid().ToString("N"));
        try
        {
            var ct = TestContext.Current.CancellationToken;
            await using (var store = await ConcordEngine.OpenAsync(new ConcordEngineOptions { DataDirectory = dir }, ct))
            {
                var s = new ConcordSession(store, "t", "a1");
                for (var i = 0; i < 100; i++) Assert.True((await s.IncrementAsync("counter", cancellationToken: ct)).IsApplied);
                await s.PutAsync("x", J("1"), idempotencyKey: "op-1", cancellationToken: ct);
                await store.SnapshotAsync(ct);
                for (var i = 0; i < 50; i++) Assert.True((await s.IncrementAsync("counter", cancellationToken: ct)).IsApplied);
            }
            await using (var store = await ConcordEngine.OpenAsync(new ConcordEngineOptions { DataDirectory = dir }, ct))
            {
                var s = new ConcordSession(store, "t", "a1");
                var r = await s.GetAsync("counter", ct);
                Assert.Equal(150, r!.Value.GetProperty("value").GetInt64());
                Assert.Equal(150, r.Version);
                var replay = await s.PutAsync("x", J("1"), idempotencyKey: "op-1", cancellationToken: ct);
                Assert.True(replay.Replayed);
                await Assert.ThrowsAsync<IdempotencyKeyReusedException>(async () => await s.PutAsync("x", J("2"), idempotencyKey: "op-1", cancellationToken: ct));
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
