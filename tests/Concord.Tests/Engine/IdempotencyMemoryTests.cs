using System.Text.Json;
using Concord.Engine;
using Microsoft.Extensions.Time.Testing;

namespace Concord.Tests.Engine;

/// <summary>
/// Idempotency records stay within <see cref="ConcordEngineOptions.IdempotencyMemoryLimit"/>: under a write rate the
/// limit cannot carry for the whole retention, the oldest records are forgotten first (counted, and shown by
/// <see cref="ConcordEngine.GetIdempotencyStats"/>), the newest keep replaying, and the limit holds across restarts.
/// </summary>
public sealed class IdempotencyMemoryTests
{
    private const string Ns = "t";
    private const long Limit = 64 * 1024;
    private static readonly DateTimeOffset T0 = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static JsonElement ValueOf(int i) => JsonDocument.Parse($$"""{"i":{{i}},"pad":"{{new string('x', 100)}}"}""").RootElement.Clone();

    private static WriteOptions Keyed(int i) => new() { IdempotencyKey = $"op-{i}" };

    private static async Task WriteAsync(ConcordEngine engine, int from, int count)
    {
        for (var i = from; i < from + count; i++)
        {
            var w = await engine.PutAsync(Ns, $"k/{i % 50}", ValueOf(i), Keyed(i), Ct);
            Assert.True(w.IsApplied && !w.Replayed, w.ToString());
        }
    }

    [Fact]
    public async Task KeyedWrites_BeyondTheLimit_ForgetOldestFirst_NewestStillReplay()
    {
        var time = new FakeTimeProvider(T0);
        await using var engine = ConcordEngine.CreateInMemory(new ConcordEngineOptions { TimeProvider = time, IdempotencyMemoryLimit = Limit });
        await WriteAsync(engine, 0, 2_000);

        var stats = engine.GetIdempotencyStats();
        Assert.True(stats.EstimatedBytes <= Limit, $"{stats}");
        Assert.InRange(stats.Records, 50, 1_999);
        Assert.Equal(2_000 - stats.Records, stats.EvictedEarly);
        Assert.NotNull(stats.LastEvictedStoredAt);

        // The newest record replays; the first one was forgotten, so its retry runs again (the documented trade-off).
        var newest = await engine.PutAsync(Ns, $"k/{1_999 % 50}", ValueOf(1_999), Keyed(1_999), Ct);
        Assert.True(newest.Replayed, newest.ToString());
        var revision = await engine.GetRevisionAsync(Ct);
        var oldest = await engine.PutAsync(Ns, "k/0", ValueOf(0), Keyed(0), Ct);
        Assert.False(oldest.Replayed);
        Assert.Equal(revision + 1, oldest.Revision);
    }

    [Fact]
    public async Task Sweep_AfterRetention_ReleasesEveryRecordAndItsBytes()
    {
        var time = new FakeTimeProvider(T0);
        await using var engine = ConcordEngine.CreateInMemory(new ConcordEngineOptions { TimeProvider = time, IdempotencyRetention = TimeSpan.FromMinutes(5) });
        await WriteAsync(engine, 0, 300);
        var before = engine.GetIdempotencyStats();
        Assert.Equal(300, before.Records);
        Assert.True(before.EstimatedBytes > 300 * 100, $"{before}");
        Assert.Equal(0, before.EvictedEarly);

        time.Advance(TimeSpan.FromMinutes(6));
        engine.Sweep();
        var after = engine.GetIdempotencyStats();
        Assert.Equal(new IdempotencyStats(0, 0, 0, null, null), after);
    }

    [Fact]
    public async Task Limit_HoldsAcrossSnapshotAndRestart()
    {
        using var dir = new TempDataDirectory();
        var time = new FakeTimeProvider(T0);
        var options = dir.Options(time);
        options.IdempotencyMemoryLimit = Limit;
        await using (var engine = await ConcordEngine.OpenAsync(options, Ct))
        {
            await WriteAsync(engine, 0, 600);
            await engine.SnapshotAsync(Ct);
            await WriteAsync(engine, 600, 600); // these come back from the log
        }
        await using (var engine = await ConcordEngine.OpenAsync(options, Ct))
        {
            var stats = engine.GetIdempotencyStats();
            Assert.True(stats.EstimatedBytes <= Limit, $"{stats}");
            Assert.True(stats.Records > 50, $"{stats}");
            Assert.True((await engine.PutAsync(Ns, $"k/{1_199 % 50}", ValueOf(1_199), Keyed(1_199), Ct)).Replayed);
        }
    }

    [Fact]
    public void Options_LimitBelow64KiB_IsRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => new ConcordEngineOptions { IdempotencyMemoryLimit = 1024 }.Validate());
        Assert.Contains("IdempotencyMemoryLimit", e.Message, StringComparison.Ordinal);
    }
}
