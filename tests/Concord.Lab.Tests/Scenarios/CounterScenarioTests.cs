using Concord.Engine;
using Concord.Lab.Scenarios;

namespace Concord.Lab.Tests.Scenarios;

public sealed class CounterScenarioTests
{
    [Fact]
    public async Task AllModes_ManySeeds_OnlyNaiveLosesCounts()
    {
        var ct = TestContext.Current.CancellationToken;
        for (var seed = 0; seed < 10; seed++)
        {
            await using var store = ConcordEngine.CreateInMemory();
            var scenario = new CounterScenario(seed, agents: 4, increments: 50);

            var naive = await scenario.RunAsync(store, "naive", ConcurrencyMode.Naive, ct);
            var cas = await scenario.RunAsync(store, "cas", ConcurrencyMode.Optimistic, ct);
            var atomic = await scenario.RunAsync(store, "atomic", ConcurrencyMode.Patch, ct);

            Assert.Equal(200, naive.Expected);
            Assert.True(naive.Lost > 0, $"seed {seed}: naive lost nothing");
            Assert.Equal(naive.Expected, naive.Writes); // every lost count was an acknowledged write
            Assert.Equal(200, cas.Actual);
            Assert.Equal(0, cas.GaveUp);
            Assert.True(cas.Conflicts > 0, $"seed {seed}: compare-and-swap never conflicted, so the scenario does not race");
            Assert.Equal(200, atomic.Actual);
            Assert.Equal(0, atomic.Conflicts);
        }
    }

    [Fact]
    public async Task RunAsync_RerunOnSameStore_ResetsTheCounter()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = ConcordEngine.CreateInMemory(new ConcordEngineOptions { StrictMode = true });
        var scenario = new CounterScenario(1, agents: 2, increments: 10);

        await scenario.RunAsync(store, "c", ConcurrencyMode.Patch, ct);
        var second = await scenario.RunAsync(store, "c", ConcurrencyMode.Patch, ct);

        Assert.Equal(20, second.Actual);
    }
}
