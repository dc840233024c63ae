using Concord.Lab.Checkers;
using Concord.Lab.Checkers.Isolation;
using Concord.Lab.History;
using Concord.Lab.Scenarios;
using Concord.Lab.Scheduling;

namespace Concord.Lab.Tests.Scheduling;

public sealed class LabScenarioTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static LabScenario Create(string name, string mode)
    {
        Assert.True(LabScenarios.TryCreate(name, mode, out var scenario, out var error), error);
        return scenario;
    }

    [Theory]
    [InlineData("account", "optimistic")]
    [InlineData("account", "patch")]
    [InlineData("counter", "optimistic")]
    [InlineData("counter", "patch")]
    [InlineData("budget", "serializable")]
    [InlineData("retry", "idempotent")]
    public async Task SafeMode_PassesEverySchedule_UnderEveryStrategy(string name, string mode)
    {
        var scenario = Create(name, mode);
        Assert.True(scenario.ExpectedToPass);
        foreach (var strategy in new[] { StrategyKind.Random, StrategyKind.Pct, StrategyKind.DelayBounded })
        {
            var report = await LabRunner.RunAsync(scenario, new LabRunOptions { Schedules = 40, Seed = ScheduleSeed.For(strategy, 1000) }, Token);

            Assert.True(report.Failed == 0,
                $"{scenario} under {strategy}: {report.Headline}\n{report.FirstFailure?.Shrunk.Verdict.Summary}\n{report.FirstFailure?.Shrunk.Result.Format()}");
            Assert.Equal(40, report.Schedules);
            Assert.True(report.DistinctSchedules > 1);
        }
    }

    [Theory]
    [InlineData("account", "lost-update")]
    [InlineData("counter", "lost-update")]
    [InlineData("budget", "write-skew")]
    [InlineData("retry", "double-apply")]
    public async Task NaiveMode_FailsOnSomeSchedules_WithTheExpectedKind(string name, string kind)
    {
        var scenario = Create(name, "naive");
        Assert.False(scenario.ExpectedToPass);

        var report = await LabRunner.RunAsync(scenario, new LabRunOptions { Schedules = 40, Seed = ScheduleSeed.For(StrategyKind.Pct, 1), Shrink = false }, Token);

        Assert.InRange(report.Failed, 1, 40);
        Assert.Equal([kind], report.FailuresByKind.Keys);
        Assert.Equal(report.FailuresByKind[kind], report.Failed);
        Assert.StartsWith($"{report.Failed}/40 schedules {scenario.FailurePhrase} (", report.Headline, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NaiveAccount_History_TheIsolationCheckerNamesTheLostUpdate()
    {
        var scenario = Create("account", "naive");
        var run = await LabRunner.RunOnceAsync(scenario, ScheduleSeed.Parse("replay:c="), cancellationToken: Token); // round-robin: all read, then all write

        Assert.Equal("lost-update", run.Verdict.Kind);
        // Written and read back as JSONL, as `concord check` would.
        var history = HistoryReader.Parse(HistoryWriter.Format(run.Result.History));
        Assert.Equal("txn", history.Meta.Model);
        Assert.Equal("replay:c=", history.Meta.Seed);
        var report = IsolationChecker.Check(history, cancellationToken: Token);
        Assert.Equal(Verdict.Invalid, report.Verdict);
        Assert.Contains(report.Anomalies, a => a.Name == "lost-update");
        Assert.Contains("lost-update", run.Verdict.Details, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NaiveBudget_History_TheIsolationCheckerFindsWriteSkew()
    {
        var run = await LabRunner.RunOnceAsync(Create("budget", "naive"), ScheduleSeed.Parse("replay:c="), cancellationToken: Token);

        Assert.Equal("write-skew", run.Verdict.Kind);
        var report = IsolationChecker.Check(run.Result.History, cancellationToken: Token);
        Assert.Contains(report.Anomalies, a => a.Name == "G2-item");
    }

    [Fact]
    public async Task SerializableBudget_History_IsSerializable_AndOneAgentDeclines()
    {
        var run = await LabRunner.RunOnceAsync(Create("budget", "serializable"), ScheduleSeed.Parse("replay:c="), cancellationToken: Token);

        Assert.False(run.Verdict.Failed, run.Verdict.Summary);
        Assert.Contains("60 of 100 spent", run.Verdict.Summary, StringComparison.Ordinal);
        Assert.Equal(Verdict.Valid, IsolationChecker.Check(run.Result.History, cancellationToken: Token).Verdict);
        Assert.Contains(run.Result.Steps, s => s.Result?.Contains("else (compare failed)", StringComparison.Ordinal) == true); // the loser's commit
    }

    [Fact]
    public async Task NaiveCounter_History_IsNotLinearizable()
    {
        var run = await LabRunner.RunOnceAsync(Create("counter", "naive"), ScheduleSeed.Parse("replay:c="), cancellationToken: Token);

        Assert.Equal("lost-update", run.Verdict.Kind);
        Assert.Contains("NOT linearizable (counter model)", run.Verdict.Details, StringComparison.Ordinal);
    }

    [Fact]
    public void TryCreate_UnknownScenarioOrMode_ExplainsTheChoices()
    {
        Assert.False(LabScenarios.TryCreate("acount", null, out _, out var error));
        Assert.Contains("account, counter, budget, retry", error, StringComparison.Ordinal);
        Assert.False(LabScenarios.TryCreate("budget", "optimistic", out _, out error));
        Assert.Contains("naive, serializable", error, StringComparison.Ordinal);
        Assert.True(LabScenarios.TryCreate("ACCOUNT", null, out var scenario, out _));
        Assert.Equal("naive", scenario.Mode);
    }
}
