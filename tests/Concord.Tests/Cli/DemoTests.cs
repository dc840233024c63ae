using System.CommandLine;
using System.Text.Json;
using System.Text.RegularExpressions;
using Concord.Cli.Commands;

namespace Concord.Tests.Cli;

public sealed class DemoTests
{
    private sealed record Invocation(int ExitCode, string Output, string Error)
    {
        public JsonElement Json => JsonDocument.Parse(Output).RootElement.Clone();
    }

    private static async Task<Invocation> RunAsync(params string[] args)
    {
        var root = new RootCommand { DemoCommand.Create() };
        using var output = new StringWriter();
        using var error = new StringWriter();
        var parseResult = root.Parse(["demo", .. args]);
        var exitCode = await parseResult.InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, TestContext.Current.CancellationToken);
        return new Invocation(exitCode, output.ToString(), error.ToString());
    }

    private static JsonElement Mode(JsonElement report, string mode) =>
        report.GetProperty("modes").EnumerateArray().Single(m => m.GetProperty("mode").GetString() == mode);

    private static string? Field(JsonElement value, string name) =>
        value.TryGetProperty(name, out var f) ? f.GetString() : null;

    [Fact]
    public async Task Account_NaiveWithFixedSeed_LosesUpdatesAndSaysWhich()
    {
        var run = await RunAsync("account", "--mode", "naive", "--json");

        Assert.Equal(0, run.ExitCode);
        var naive = Mode(run.Json, "naive");
        var lost = naive.GetProperty("lost").EnumerateArray().ToList();
        Assert.NotEmpty(lost);
        var final = naive.GetProperty("final");
        var agents = naive.GetProperty("agents").EnumerateArray().ToDictionary(a => a.GetProperty("agent").GetString()!);
        foreach (var l in lost)
        {
            var agent = l.GetProperty("agent").GetString()!;
            var by = l.GetProperty("overwrittenBy").GetString()!;
            Assert.NotEqual(agent, by);
            // The loss is real: the agent's write was applied, and the final record does not hold its value.
            Assert.True(agents[agent].GetProperty("applied").GetBoolean());
            Assert.False(agents[agent].GetProperty("kept").GetBoolean());
            Assert.NotEqual(l.GetProperty("value").GetString(), Field(final, l.GetProperty("field").GetString()!));
            // The overwriter wrote later from a read that predates the lost write.
            Assert.Equal(agents[by].GetProperty("wroteVersion").GetInt64(), l.GetProperty("overwrittenAtVersion").GetInt64());
            Assert.True(l.GetProperty("overwrittenAtVersion").GetInt64() > l.GetProperty("version").GetInt64());
            Assert.True(l.GetProperty("overwriterReadVersion").GetInt64() < l.GetProperty("version").GetInt64());
        }
        Assert.Equal(3 - lost.Count, naive.GetProperty("kept").GetInt32());
        Assert.False(naive.GetProperty("risk").GetProperty("correct").GetBoolean());
    }

    [Fact]
    public async Task Account_NaiveInStrictMode_EveryBlindWriteRefused()
    {
        var run = await RunAsync("--mode", "naive", "--json", "--memory");

        Assert.Equal(0, run.ExitCode);
        var strict = run.Json.GetProperty("naiveInStrictMode");
        Assert.True(strict.GetProperty("strict").GetBoolean());
        Assert.Empty(strict.GetProperty("lost").EnumerateArray());
        Assert.All(strict.GetProperty("agents").EnumerateArray(), a =>
        {
            Assert.False(a.GetProperty("applied").GetBoolean());
            Assert.Equal("blindWriteRefused", a.GetProperty("conflict").GetString());
        });
        Assert.Equal(1, strict.GetProperty("finalVersion").GetInt64());
    }

    [Theory]
    [InlineData("optimistic")]
    [InlineData("patch")]
    public async Task Account_SafeModes_KeepAllThreeFields(string mode)
    {
        var run = await RunAsync("account", "--mode", mode, "--json");

        Assert.Equal(0, run.ExitCode);
        var result = Mode(run.Json, mode);
        Assert.Empty(result.GetProperty("lost").EnumerateArray());
        var final = result.GetProperty("final");
        Assert.Equal("restricted", Field(final, "status"));
        Assert.Equal("unpaid", Field(final, "fees"));
        Assert.Equal("review", Field(final, "compliance"));
        Assert.Equal(3, result.GetProperty("kept").GetInt32());
        Assert.Equal("high", result.GetProperty("risk").GetProperty("verdict").GetString());
        Assert.True(result.GetProperty("risk").GetProperty("correct").GetBoolean());
    }

    [Fact]
    public async Task Account_Optimistic_ConflictsAreDetectedNotLost()
    {
        // With the fixed seed the agents overlap, so compare-and-swap must have caught at least one stale write;
        // a run without conflicts would mean the scenario no longer races and the demo proves nothing.
        var run = await RunAsync("--mode", "optimistic", "--json", "--memory");

        var result = Mode(run.Json, "optimistic");
        Assert.True(result.GetProperty("conflicts").GetInt32() > 0);
        Assert.Equal(3, result.GetProperty("kept").GetInt32());
    }

    [Fact]
    public async Task Counter_AllModes_NaiveLosesCountsAtomicAndCasDoNot()
    {
        var run = await RunAsync("counter", "--json");

        Assert.Equal(0, run.ExitCode);
        var report = run.Json;
        Assert.Equal(8, report.GetProperty("agents").GetInt32());
        Assert.Equal(100, report.GetProperty("increments").GetInt32());
        var naive = Mode(report, "naive");
        var patch = Mode(report, "patch");
        var cas = Mode(report, "optimistic");
        Assert.Equal(800, naive.GetProperty("expected").GetInt64());
        Assert.True(naive.GetProperty("actual").GetInt64() < 800);
        Assert.Equal(800, naive.GetProperty("writes").GetInt64()); // every lost increment was a "successful" write
        Assert.Equal(800, patch.GetProperty("actual").GetInt64());
        Assert.Equal(800, cas.GetProperty("actual").GetInt64());
        Assert.Equal(0, cas.GetProperty("gaveUp").GetInt64());
        Assert.True(cas.GetProperty("conflicts").GetInt64() > 0);
    }

    [Fact]
    public async Task Account_SameSeed_IdenticalJson()
    {
        var first = await RunAsync("--json", "--seed", "1234");
        var second = await RunAsync("--json", "--seed", "1234");

        Assert.Equal(0, first.ExitCode);
        Assert.Equal(first.Output, second.Output);
    }

    [Fact]
    public async Task Counter_SameSeed_IdenticalJson_OtherSeedDiffers()
    {
        var first = await RunAsync("counter", "--agents", "4", "--increments", "40", "--seed", "9", "--json", "--memory");
        var second = await RunAsync("counter", "--agents", "4", "--increments", "40", "--seed", "9", "--json", "--memory");
        var other = await RunAsync("counter", "--agents", "4", "--increments", "40", "--seed", "10", "--json", "--memory");

        Assert.Equal(first.Output, second.Output);
        Assert.NotEqual(first.Output, other.Output);
    }

    [Fact]
    public async Task Account_DataDirectory_IsKeptAndReusable()
    {
        var dir = Path.Combine(Path.GetTempPath(), "concord-demo-test-" + Guid.NewGuid().ToString("N"));
        try
        {
            var first = await RunAsync("--mode", "patch", "--json", "--data", dir);
            var second = await RunAsync("--mode", "patch", "--json", "--data", dir);

            Assert.Equal(0, first.ExitCode);
            Assert.Equal(0, second.ExitCode);
            Assert.NotEmpty(Directory.EnumerateFiles(dir));
            // The second run continues the same durable history: the account was reset at a higher version.
            Assert.True(Mode(second.Json, "patch").GetProperty("finalVersion").GetInt64() > Mode(first.Json, "patch").GetProperty("finalVersion").GetInt64());
            Assert.Equal(3, Mode(second.Json, "patch").GetProperty("kept").GetInt32());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Default_HumanOutput_TellsTheStoryWithoutAnsiCodes()
    {
        var run = await RunAsync("--memory");

        Assert.Equal(0, run.ExitCode);
        Assert.DoesNotContain('\u001b', run.Output); // not a terminal: plain text for CI logs and pipes
        var text = Regex.Replace(run.Output, @"\s+", " "); // lines wrap at the console width
        Assert.Contains("2 of 3 updates lost silently", text, StringComparison.Ordinal);
        Assert.Contains("fees set fees=\"unpaid\" at v2; status overwrote the whole record at v3 with a copy it had read at v1", text, StringComparison.Ordinal);
        Assert.Contains("In strict mode (the server default) these blind writes are refused", text, StringComparison.Ordinal);
        Assert.Contains("BlindWriteRefused", text, StringComparison.Ordinal);
        Assert.Contains("Risk agent saw status=active, fees=paid, compliance=review → medium risk", text, StringComparison.Ordinal);
        Assert.Contains("wrong verdict", text, StringComparison.Ordinal);
        Assert.Contains("summary", text, StringComparison.Ordinal);
        Assert.Contains("concord demo account --seed 42 --memory", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { "bogus" }, "unknown scenario 'bogus'", "account, counter")]
    [InlineData(new[] { "--mode", "yolo" }, "unknown mode 'yolo'", "naive, optimistic, patch, all")]
    [InlineData(new[] { "counter", "--mode", "lock" }, "mode 'lock' is not available", "naive, optimistic, patch, all")]
    [InlineData(new[] { "account", "--agents", "5" }, "exactly 3 agents", "--agents applies to the counter")]
    [InlineData(new[] { "counter", "--agents", "0" }, "--agents must be between", "64")]
    [InlineData(new[] { "--memory", "--data", "x" }, "--memory and --data", "exclude each other")]
    public async Task BadArguments_ExitTwoWithClearMessage(string[] args, string message, string detail)
    {
        var run = await RunAsync(args);

        Assert.Equal(2, run.ExitCode);
        Assert.Contains(message, run.Error, StringComparison.Ordinal);
        Assert.Contains(detail, run.Error, StringComparison.Ordinal);
        Assert.Equal("", run.Output);
    }

    [Fact]
    public async Task Help_ExplainsScenariosAndModes()
    {
        var run = await RunAsync("--help");

        Assert.Equal(0, run.ExitCode);
        foreach (var word in new[] { "account", "counter", "naive", "optimistic", "patch", "all", "--seed", "--json", "--data", "--memory", "virtual time" })
            Assert.Contains(word, run.Output, StringComparison.Ordinal);
    }
}

public sealed class AgentDemoTests
{
    private static async Task<(int ExitCode, string Output, string Error)> RunAsync(params string[] args)
    {
        var root = new RootCommand { DemoCommand.Create() };
        using var output = new StringWriter();
        using var error = new StringWriter();
        var parseResult = root.Parse(["demo", .. args]);
        var exitCode = await parseResult.InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, TestContext.Current.CancellationToken);
        return (exitCode, output.ToString(), error.ToString());
    }

    [Theory]
    [InlineData("research", "naive", "patch,crdt")]
    [InlineData("cache", "naive", "optimistic,patch")]
    [InlineData("triage", "naive", "optimistic,queue")]
    [InlineData("budget", "naive,optimistic", "serializable")]
    public async Task AgentScenario_AllModesJson_UnsafeModesHarmedSafeModesNot(string scenario, string unsafeModes, string safeModes)
    {
        var (exitCode, output, _) = await RunAsync(scenario, "--json", "--memory");

        Assert.Equal(0, exitCode);
        var modes = JsonDocument.Parse(output).RootElement.GetProperty("modes").EnumerateArray()
            .ToDictionary(m => m.GetProperty("mode").GetString()!, m => m.Clone());
        Assert.Equal(unsafeModes.Split(',').Length + safeModes.Split(',').Length, modes.Count);
        foreach (var mode in unsafeModes.Split(','))
        {
            Assert.True(modes[mode].GetProperty("harmed").GetBoolean(), $"{scenario} {mode}");
            Assert.NotEmpty(modes[mode].GetProperty("lost").EnumerateArray());
            Assert.False(modes[mode].GetProperty("downstream").GetProperty("correct").GetBoolean());
        }
        foreach (var mode in safeModes.Split(','))
        {
            Assert.False(modes[mode].GetProperty("harmed").GetBoolean(), $"{scenario} {mode}");
            Assert.True(modes[mode].GetProperty("downstream").GetProperty("correct").GetBoolean());
        }
    }

    [Fact]
    public async Task AgentScenario_Text_SaysWhatWasLostWhyAndWhatPreventedIt()
    {
        var (exitCode, output, _) = await RunAsync("triage", "--memory");

        Assert.Equal(0, exitCode);
        Assert.Contains("Lost or broken", output);
        Assert.Contains("Why:", output);
        Assert.Contains("What prevented it:", output);
        Assert.Contains("was claimed twice", output);
        Assert.Contains("Replay exactly: concord demo triage --seed 42 --memory", output);
    }

    [Theory]
    [InlineData("research", "optimistic")]
    [InlineData("budget", "patch")]
    [InlineData("triage", "bogus")]
    public async Task AgentScenario_UnsupportedMode_ExitCode2WithValidModes(string scenario, string mode)
    {
        var (exitCode, _, error) = await RunAsync(scenario, "--mode", mode);

        Assert.Equal(2, exitCode);
        Assert.Contains("Valid modes:", error);
    }

    [Fact]
    public async Task AgentScenario_AgentsOption_Refused()
    {
        var (exitCode, _, error) = await RunAsync("budget", "--agents", "4");

        Assert.Equal(2, exitCode);
        Assert.Contains("counter scenario only", error);
    }
}
