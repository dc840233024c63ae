using Concord.Lab.Scenarios;
using Concord.Lab.Scheduling;

namespace Concord.Lab.Tests.Scheduling;

public sealed class ShrinkTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static async Task<LabRun> FirstFailureAsync(LabScenario scenario, string strategy)
    {
        var first = await LabRunner.EstimateStepsAsync(scenario, ScheduleSeed.Parse($"{strategy}:seed=1"), cancellationToken: Token);
        for (var i = 0; i < 50; i++)
        {
            var run = await LabRunner.RunOnceAsync(scenario, first.Offset(i), cancellationToken: Token);
            if (run.Verdict.Failed) return run;
        }

        throw new InvalidOperationException($"{scenario} did not fail in 50 schedules");
    }

    [Theory]
    [InlineData("random")]
    [InlineData("pct:d=3")]
    public async Task Shrink_NaiveAccount_FewerAgentsAndSteps_AndTheShrunkSeedStillFails(string strategy)
    {
        var scenario = new AccountLabScenario(ConcurrencyMode.Naive);
        var failing = await FirstFailureAsync(scenario, strategy);

        var shrunk = await LabRunner.ShrinkAsync(scenario, failing, cancellationToken: Token);

        Assert.Equal(3, failing.AgentCount);
        Assert.Equal(2, shrunk.Shrunk.AgentCount); // a lost update takes two writers
        Assert.True(shrunk.Shrunk.StepCount < failing.StepCount, $"{shrunk.Shrunk.StepCount} vs {failing.StepCount} steps");
        Assert.Equal("lost-update", shrunk.Shrunk.Verdict.Kind);
        // The printed seed string replays the shrunk run exactly, and it still fails.
        var replay = await LabRunner.RunOnceAsync(scenario, ScheduleSeed.Parse(shrunk.Shrunk.Result.ReplaySeed.Format()), cancellationToken: Token);
        Assert.True(replay.Verdict.Failed);
        Assert.Equal(shrunk.Shrunk.Result.Format(), replay.Result.Format());
    }

    [Fact]
    public async Task Shrink_ChaosFailure_KeepsOnlyTheFaultThatMatters()
    {
        var scenario = new RetryCounterScenario(idempotent: false);
        var failing = await FirstFailureAsync(scenario, "random");
        Assert.Equal("double-apply", failing.Verdict.Kind);

        var shrunk = (await LabRunner.ShrinkAsync(scenario, failing, cancellationToken: Token)).Shrunk;

        Assert.Equal(1, shrunk.AgentCount);
        Assert.Equal(1, shrunk.Result.Faults); // one duplicate delivery, or one lost reply and its retry
        Assert.True(shrunk.Result.Faults <= failing.Result.Faults);
        Assert.Contains(shrunk.Result.Steps, s => s.Fault is not null);
        Assert.Equal("double-apply", shrunk.Verdict.Kind);
    }

    [Fact]
    public async Task Shrink_WriteSkew_StaysAWriteSkewBetweenTwoAgents()
    {
        var scenario = new BudgetLabScenario(serializable: false);
        var failing = await FirstFailureAsync(scenario, "random");

        var shrunk = (await LabRunner.ShrinkAsync(scenario, failing, cancellationToken: Token)).Shrunk;

        Assert.Equal("write-skew", shrunk.Verdict.Kind);
        Assert.Equal(2, shrunk.AgentCount);
        Assert.True(LabRunner.Compare(shrunk, failing) <= 0);
        // Zeroed decisions are the default (round-robin, shortest think), so little of the choice sequence is left.
        Assert.True(shrunk.Result.DecisionCount <= failing.Result.DecisionCount);
    }

    [Fact]
    public async Task Shrink_PassingRun_IsRefused()
    {
        var scenario = new AccountLabScenario(ConcurrencyMode.Optimistic);
        var run = await LabRunner.RunOnceAsync(scenario, ScheduleSeed.Parse("random:seed=1"), cancellationToken: Token);

        Assert.False(run.Verdict.Failed);
        await Assert.ThrowsAsync<ArgumentException>(() => LabRunner.ShrinkAsync(scenario, run, cancellationToken: Token));
    }

    [Fact]
    public async Task RunAsync_ShrinksTheFirstFailure_AndReportsItsSeed()
    {
        var scenario = new CounterLabScenario(ConcurrencyMode.Naive);

        var report = await LabRunner.RunAsync(scenario, 20, StrategyKind.Pct, 100, Token);

        var failure = Assert.IsType<ShrinkResult>(report.FirstFailure);
        Assert.StartsWith("pct:d=3:k=", failure.Original.Seed.Format(), StringComparison.Ordinal);
        Assert.True(failure.Replays > 0);
        Assert.True(LabRunner.Compare(failure.Shrunk, failure.Original) < 0);
        var again = await LabRunner.RunOnceAsync(scenario, failure.Original.Seed, cancellationToken: Token);
        Assert.Equal(failure.Original.Result.Format(), again.Result.Format());
    }
}
