using System.CommandLine;
using System.Text.Json;
using System.Text.RegularExpressions;
using Concord.Cli.Commands;

namespace Concord.Tests.Cli;

/// <summary><c>concord demo --serve</c>: the agents run against a server over HTTP; the dashboard records them.</summary>
public sealed partial class DemoServeTests
{
    private static async Task<(int ExitCode, string Output, string Error)> RunAsync(params string[] args)
    {
        var root = new RootCommand { DemoCommand.Create() };
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exitCode = await root.Parse(["demo", .. args]).InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, TestContext.Current.CancellationToken);
        return (exitCode, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task Serve_NaiveAccount_RunsOverHttpAndPrintsTheDashboardAddress()
    {
        var (exitCode, output, error) = await RunAsync("account", "--mode", "naive", "--serve", "--pace", "0", "--exit", "--json");
        Assert.True(exitCode == 0, error);
        var address = DashboardLine().Match(output);
        Assert.True(address.Success, output);
        Assert.Equal("demo-account-naive", address.Groups["ns"].Value);

        var json = JsonDocument.Parse(output[output.IndexOf('{', StringComparison.Ordinal)..]).RootElement;
        Assert.Equal("server", json.GetProperty("engine").GetString());
        var naive = json.GetProperty("modes")[0];
        Assert.Equal(2, naive.GetProperty("lost").GetArrayLength());
        // The same seed loses the same updates over HTTP as on the embedded engine.
        Assert.Equal("fees", naive.GetProperty("lost")[0].GetProperty("agent").GetString());
        Assert.Equal("status", naive.GetProperty("lost")[0].GetProperty("overwrittenBy").GetString());
    }

    [Fact]
    public async Task Serve_UnreachableServer_FailsWithExitCode1()
    {
        var (exitCode, _, error) = await RunAsync("account", "--mode", "patch", "--serve", "http://127.0.0.1:9/", "--pace", "0");
        Assert.Equal(1, exitCode);
        Assert.StartsWith("concord demo:", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--pace", "1")]
    [InlineData("--exit")]
    public async Task PaceOrExit_WithoutServe_AreBadArguments(params string[] args)
    {
        var (exitCode, _, error) = await RunAsync(["account", .. args]);
        Assert.Equal(2, exitCode);
        Assert.Contains("--serve", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("1000")]
    public async Task Serve_PaceOutOfRange_IsABadArgument(string pace)
    {
        var (exitCode, _, error) = await RunAsync("account", "--serve", "--pace", pace, "--exit");
        Assert.Equal(2, exitCode);
        Assert.Contains("--pace", error, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"Dashboard: http://127\.0\.0\.1:\d+/\?ns=(?<ns>[\w-]+)")]
    private static partial Regex DashboardLine();
}
