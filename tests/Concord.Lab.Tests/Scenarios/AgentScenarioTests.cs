using System.Text.Json;
using Concord.Engine;
using Concord.Lab.Scenarios;

namespace Concord.Lab.Tests.Scenarios;

public sealed class AgentScenarioTests
{
    private static readonly int[] Seeds = [1, 2, 3, 4, 5];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> Names => [.. AgentScenarios.Names];

    private static async Task<ScenarioRun> RunAsync(string name, int seed, ConcurrencyMode mode)
    {
        // Naive modes write blindly, so their namespace is not strict; everything else runs strict (the server default).
        await using var store = ConcordEngine.CreateInMemory(new ConcordEngineOptions { StrictMode = mode != ConcurrencyMode.Naive });
        return await AgentScenarios.Create(name, seed).RunAsync(store, "lab", mode, Ct);
    }

    [Theory]
    [MemberData(nameof(Names))]
    public async Task NaiveMode_SeveralSeeds_LosesWorkAndMisleadsTheDownstreamAgent(string name)
    {
        foreach (var seed in Seeds)
        {
            var run = await RunAsync(name, seed, ConcurrencyMode.Naive);

            Assert.True(run.Harmed, $"{name} seed {seed}: naive run was not harmed");
            Assert.NotEmpty(run.Lost);
            Assert.False(run.Downstream.Correct, $"{name} seed {seed}: downstream agent was right: {run.Downstream.Output}");
            Assert.All(run.Lost, l => Assert.False(string.IsNullOrWhiteSpace(l)));
        }
    }

    [Theory]
    [MemberData(nameof(Names))]
    public async Task SafeModes_SeveralSeeds_NothingLostAndDownstreamCorrect(string name)
    {
        var scenario = AgentScenarios.Create(name, 0);
        foreach (var mode in scenario.Modes.Where(scenario.IsSafe))
        {
            foreach (var seed in Seeds)
            {
                var run = await RunAsync(name, seed, mode);

                Assert.False(run.Harmed, $"{name} {mode} seed {seed}: {string.Join("; ", run.Lost)} / {run.Downstream.Output}");
                Assert.True(run.Downstream.Correct);
                Assert.Empty(run.Lost);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Names))]
    public async Task EveryMode_SameSeedTwice_SameRun(string name)
    {
        foreach (var mode in AgentScenarios.Create(name, 0).Modes)
        {
            var first = JsonSerializer.Serialize(await RunAsync(name, 11, mode));
            var second = JsonSerializer.Serialize(await RunAsync(name, 11, mode));
            Assert.Equal(first, second);
        }
    }

    [Fact]
    public async Task Budget_OptimisticPerKeyVersions_StillOverspends()
    {
        // Write skew is invisible to per-key compare-and-swap: the lesson of the optimistic mode here.
        foreach (var seed in Seeds)
        {
            var run = await RunAsync("budget", seed, ConcurrencyMode.Optimistic);
            Assert.True(run.Harmed);
            Assert.Contains("over budget by $350", run.Downstream.Output);
        }
    }

    [Fact]
    public async Task Budget_Serializable_LaterCommitRefusedAndRetriedDecisionDeclines()
    {
        var run = await RunAsync("budget", 3, ConcurrencyMode.Serializable);

        Assert.True(run.Conflicts >= 1);
        Assert.Single(run.Agents, a => a.Did.Contains("declined", StringComparison.Ordinal));
        Assert.Contains("within budget: spent $900", run.Downstream.Output);
    }

    [Fact]
    public async Task Cache_Optimistic_SomeSeedsHitConflictsThatTheModelRedoes()
    {
        var conflicts = 0;
        foreach (var seed in Seeds)
        {
            var run = await RunAsync("cache", seed, ConcurrencyMode.Optimistic);
            Assert.False(run.Harmed);
            conflicts += run.Conflicts;
        }
        // Otherwise the safe mode would be safe only because the agents never overlapped.
        Assert.True(conflicts > 0);
    }

    [Fact]
    public async Task Triage_Queue_EachTicketHandledByExactlyOneAgent()
    {
        foreach (var seed in Seeds)
        {
            var run = await RunAsync("triage", seed, ConcurrencyMode.Queue);
            var tickets = run.Final.EnumerateObject().Select(p => p.Value).ToList();
            Assert.Equal(3, tickets.Count);
            Assert.All(tickets, t => Assert.Equal("claimed", t.GetProperty("status").GetString()));
            Assert.Equal("3 tickets, one answer each", run.Downstream.Output);
        }
    }

    [Fact]
    public async Task Research_Naive_LossesNameTheOverwriterAndItsStaleRead()
    {
        var run = await RunAsync("research", 2, ConcurrencyMode.Naive);

        Assert.All(run.Lost, l => Assert.Matches(@"appended "".+"" at v\d+ .*; \S+ then wrote v\d+ from the copy it had read at v\d+", l));
        var kept = run.Final.GetProperty("findings").GetArrayLength();
        Assert.Equal(8 - run.Lost.Count, kept);
    }
}
