using System.CommandLine;
using System.Text.Json;
using System.Text.RegularExpressions;
using Concord.Cli.Commands;
using Concord.Lab.History;

namespace Concord.Tests.Cli;

public sealed partial class LabCommandTests
{
    private sealed record Invocation(int ExitCode, string Output, string Error)
    {
        public JsonElement Json => JsonDocument.Parse(Output).RootElement.Clone();
    }

    private static async Task<Invocation> RunAsync(params string[] args)
    {
        var root = new RootCommand { LabCommand.Create() };
        using var output = new StringWriter();
        using var error = new StringWriter();
        var parseResult = root.Parse(["lab", "run", .. args]);
        var exitCode = await parseResult.InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, TestContext.Current.CancellationToken);
        // As Program.cs does: parse errors exit with 2.
        return new Invocation(parseResult.Errors.Count > 0 ? 2 : exitCode, output.ToString(), error.ToString());
    }

    [GeneratedRegex(@"^(\d+)/200 schedules lost an update \((\d+\.\d)%\)$", RegexOptions.Multiline)]
    private static partial Regex Headline();

    [Fact]
    public async Task Run_NaiveAccountWithPct_PrintsTheShareTheShrunkInterleavingAndTheSeeds_Exit1()
    {
        var run = await RunAsync("account", "--mode", "naive", "--schedules", "200", "--strategy", "pct");

        Assert.Equal(1, run.ExitCode);
        var headline = Headline().Match(run.Output);
        Assert.True(headline.Success, run.Output);
        var failed = int.Parse(headline.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(failed, 1, 200);
        Assert.Equal((failed / 2.0).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture), headline.Groups[2].Value);
        Assert.Contains("step  ", run.Output, StringComparison.Ordinal);
        Assert.Contains("put accounts/acct-42 blind", run.Output, StringComparison.Ordinal);
        Assert.Contains("[lost-update]", run.Output, StringComparison.Ordinal);
        Assert.Matches(@"Replay the failure:\s+concord lab run account --mode naive --seed pct:d=3:k=\d+:seed=\d+", run.Output);
        Assert.Matches(@"Replay the shrunk run:\s+concord lab run account --mode naive --seed replay:", run.Output);
    }

    [Fact]
    public async Task Run_TheShrunkSeedPrinted_ReplaysTheSameInterleaving()
    {
        var first = await RunAsync("counter", "--schedules", "30", "--json");
        var shrunk = first.Json.GetProperty("firstFailure").GetProperty("shrunk");
        var seed = shrunk.GetProperty("replaySeed").GetString()!;

        var replay = await RunAsync("counter", "--seed", seed, "--json");

        Assert.Equal(1, replay.ExitCode);
        Assert.Equal(1, replay.Json.GetProperty("schedules").GetInt32());
        var replayed = replay.Json.GetProperty("firstFailure").GetProperty("shrunk");
        Assert.Equal(shrunk.GetProperty("interleaving").GetRawText(), replayed.GetProperty("interleaving").GetRawText());
    }

    [Theory]
    [InlineData("account", "optimistic")]
    [InlineData("budget", "serializable")]
    [InlineData("retry", "idempotent")]
    public async Task Run_SafeMode_NoScheduleFails_Exit0(string scenario, string mode)
    {
        var run = await RunAsync(scenario, "--mode", mode, "--schedules", "50", "--strategy", "delay-bounded");

        Assert.Equal(0, run.ExitCode);
        Assert.Contains("0/50 schedules failed (0.0%)", run.Output, StringComparison.Ordinal);
        Assert.Contains("Every schedule passed, as this mode should.", run.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_Json_HasTheReportFields()
    {
        var run = await RunAsync("budget", "--schedules", "20", "--strategy", "random", "--seed", "7", "--json");

        Assert.Equal(1, run.ExitCode);
        var json = run.Json;
        Assert.Equal("budget", json.GetProperty("scenario").GetString());
        Assert.Equal("naive", json.GetProperty("mode").GetString());
        Assert.False(json.GetProperty("expectedToPass").GetBoolean());
        Assert.Equal("random:seed=7", json.GetProperty("firstSeed").GetString());
        Assert.Equal(20, json.GetProperty("schedules").GetInt32());
        var failed = json.GetProperty("failed").GetInt32();
        Assert.Equal(failed, json.GetProperty("failuresByKind").GetProperty("write-skew").GetInt32());
        Assert.Equal(Math.Round(failed / 20.0, 4), json.GetProperty("failedShare").GetDouble());
        var shrunk = json.GetProperty("firstFailure").GetProperty("shrunk");
        Assert.Equal("write-skew", shrunk.GetProperty("kind").GetString());
        Assert.Contains("G2-item", shrunk.GetProperty("details").GetString(), StringComparison.Ordinal);
        var steps = shrunk.GetProperty("interleaving").EnumerateArray().ToList();
        Assert.Equal(shrunk.GetProperty("steps").GetInt32(), steps.Count);
        Assert.All(steps, s => Assert.True(s.TryGetProperty("agent", out _) && s.TryGetProperty("operation", out _) && s.TryGetProperty("timeMs", out _)));
    }

    [Fact]
    public async Task Run_HistoryOption_WritesACheckableHistory()
    {
        var path = Path.Combine(Path.GetTempPath(), $"concord-lab-{Guid.NewGuid():N}.jsonl");
        try
        {
            var run = await RunAsync("account", "--schedules", "10", "--history", path);

            Assert.Equal(1, run.ExitCode);
            var history = HistoryReader.ReadFile(path);
            Assert.Equal("txn", history.Meta.Model);
            Assert.StartsWith("replay:", history.Meta.Seed, StringComparison.Ordinal);
            Assert.Contains($"concord check {path}", run.Error, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("missing the scenario")]
    [InlineData("unknown scenario \"bank\"", "bank")]
    [InlineData("has no mode \"patch\"", "budget", "--mode", "patch")]
    [InlineData("--schedules must be an integer", "account", "--schedules", "0")]
    [InlineData("--strategy must be random, pct or delay-bounded", "account", "--strategy", "fair")]
    [InlineData("--seed must be a non-negative integer", "account", "--seed", "abc")]
    [InlineData("--seed: unknown strategy", "account", "--seed", "fair:seed=1")]
    [InlineData("contradicts --seed", "account", "--strategy", "random", "--seed", "pct:d=3:seed=1")]
    [InlineData("--depth applies to pct and delay-bounded only", "account", "--depth", "2")]
    [InlineData("--depth must be an integer from 1", "account", "--strategy", "pct", "--depth", "0")]
    [InlineData("names agent 5", "account", "--seed", "replay:agents=5:c=")]
    public async Task Run_BadArguments_Exit2WithAReason(string reason, params string[] args)
    {
        var run = await RunAsync(args);

        Assert.Equal(2, run.ExitCode);
        Assert.Contains(reason, run.Error, StringComparison.Ordinal);
        Assert.Empty(run.Output);
    }

    [Fact]
    public async Task Run_UnknownOption_Exit2()
    {
        var run = await RunAsync("account", "--shedules", "3");

        Assert.Equal(2, run.ExitCode);
    }

    [Fact]
    public async Task Help_ListsScenariosModesAndStrategies()
    {
        var run = await RunAsync("--help");

        Assert.Equal(0, run.ExitCode);
        foreach (var word in new[] { "account", "counter", "budget", "retry", "naive|optimistic|patch", "naive|serializable", "naive|idempotent", "pct", "delay-bounded", "--schedules", "--seed", "Exit codes" })
        {
            Assert.Contains(word, run.Output, StringComparison.Ordinal);
        }
    }
}
