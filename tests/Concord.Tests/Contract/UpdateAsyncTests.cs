using System.Text.Json;
using Concord.Engine;
using Concord.Lab.Time;

namespace Concord.Tests.Contract;

public sealed class UpdateAsyncTests
{
    private static JsonElement J(string json) => JsonDocument.Parse(json).RootElement.Clone();

    private sealed class FixedRandomizer(double value) : IRandomizer
    {
        public double NextDouble() => value;
    }

    [Fact]
    public async Task UpdateAsync_KeyChangesDuringBackoff_RecomputesOnFreshValue()
    {
        // Timeline (virtual ms): 0 a reads v1, thinks 5 ms · 1 b writes v2 · 5 a's CAS on v1 conflicts (carrying v2),
        // a backs off ~9 ms · 8 b writes v3 · ~14 a retries. Recomputing on the v2 the conflict carried is doomed
        // (the key is at v3 by then): the retry must re-read after its backoff.
        var ct = TestContext.Current.CancellationToken;
        await using var store = ConcordEngine.CreateInMemory();
        var time = new VirtualTimeProvider();
        var other = new ConcordSession(store, "t", "b");
        Assert.True((await other.PutAsync("k", J("0"), Expect.Absent, cancellationToken: ct)).IsApplied);
        var session = new ConcordSession(store, "t", "a", new SessionOptions
        {
            TimeProvider = time,
            Randomizer = new FixedRandomizer(0.95),
            Retry = new RetryOptions { MaxAttempts = 2, BaseDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(10) },
        });
        UpdateResult? result = null;
        var computes = 0;

        await time.RunAsync(
        [
            async c => result = await session.UpdateAsync("k", async (record, ct2) =>
            {
                if (++computes == 1) await Task.Delay(TimeSpan.FromMilliseconds(5), time, ct2);
                return J((record!.Value.GetInt32() + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
            }, cancellationToken: c),
            async c =>
            {
                await Task.Delay(TimeSpan.FromMilliseconds(1), time, c);
                await other.PutAsync("k", J("100"), cancellationToken: c);
                await Task.Delay(TimeSpan.FromMilliseconds(7), time, c);
                await other.PutAsync("k", J("200"), cancellationToken: c);
            },
        ], ct);

        Assert.NotNull(result);
        Assert.True(result.IsApplied, $"second attempt conflicted: {result.Write}");
        Assert.Equal(2, result.Attempts);
        Assert.Equal(201, result.Record!.Value.GetInt32());
        Assert.Equal(4, result.Record.Version);
    }
}
