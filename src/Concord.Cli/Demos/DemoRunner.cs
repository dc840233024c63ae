using System.Diagnostics;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Concord.Engine;
using Concord.Lab.Scenarios;

namespace Concord.Cli.Demos;

/// <summary>The account demo's machine-readable result (the <c>--json</c> document).</summary>
internal sealed record AccountDemoReport(string Scenario, int Seed, string Engine, string Key, JsonElement Expected,
    IReadOnlyList<AccountRun> Modes, AccountRun? NaiveInStrictMode);

/// <summary>The counter demo's machine-readable result (the <c>--json</c> document).</summary>
internal sealed record CounterDemoReport(string Scenario, int Seed, string Engine, string Key, int Agents, int Increments,
    IReadOnlyList<CounterRun> Modes);

/// <summary>An agent scenario demo's machine-readable result (the <c>--json</c> document).</summary>
internal sealed record AgentDemoReport(string Scenario, string Title, string Story, int Seed, string Engine, IReadOnlyList<ScenarioRun> Modes);

/// <summary>Opens the engine, runs the chosen scenario in each mode, and prints tables or JSON.</summary>
internal static class DemoRunner
{
    /// <summary>
    /// Every mode gets its own namespace. The engine is strict (the server default) except where naive
    /// blind writes must go through; the account's naive agents run once more in a strict namespace to show the refusal.
    /// </summary>
    internal static string Namespace(string scenario, ConcurrencyMode mode) => $"demo-{scenario}-{mode.ToString().ToLowerInvariant()}";

    internal const string StrictNaiveNamespace = "demo-account-naive-strict";

    internal static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        // Keys and values stay readable ("accounts/acct-42"); the output is still valid JSON.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static async Task<int> RunAsync(DemoSettings settings, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        string? tempDirectory = null;
        var options = EngineOptions();
        if (!settings.Memory)
        {
            options.DataDirectory = settings.DataDirectory
                ?? (tempDirectory = Path.Combine(Path.GetTempPath(), "concord-demo-" + Guid.NewGuid().ToString("N")));
        }
        try
        {
            object report;
            await using (var engine = await ConcordEngine.OpenAsync(options, cancellationToken).ConfigureAwait(false))
            {
                report = await RunScenarioAsync(engine, settings, cancellationToken).ConfigureAwait(false);
            }
            await ReportAsync(report, settings, output, Stopwatch.GetElapsedTime(started)).ConfigureAwait(false);
            return 0;
        }
        catch (Exception e) when (e is ConcordException or IOException or UnauthorizedAccessException)
        {
            await error.WriteLineAsync($"concord demo: {e.Message}").ConfigureAwait(false);
            return 1;
        }
        finally
        {
            if (tempDirectory is not null) TryDelete(tempDirectory);
        }
    }

    /// <summary>Engine options with the naive namespaces relaxed (strict mode elsewhere), as every demo run uses.</summary>
    internal static ConcordEngineOptions EngineOptions()
    {
        var options = new ConcordEngineOptions { StrictMode = true };
        options.StrictNamespaces[Namespace("account", ConcurrencyMode.Naive)] = false;
        options.StrictNamespaces[Namespace("counter", ConcurrencyMode.Naive)] = false;
        foreach (var name in AgentScenarios.Names) options.StrictNamespaces[Namespace(name, ConcurrencyMode.Naive)] = false;
        return options;
    }

    /// <summary>Runs the chosen scenario in each mode on <paramref name="store"/> (an engine, or a server over HTTP).</summary>
    internal static async Task<object> RunScenarioAsync(IConcordStore store, DemoSettings settings, CancellationToken cancellationToken) => settings.Scenario switch
    {
        "account" => await RunAccountAsync(store, settings, cancellationToken).ConfigureAwait(false),
        "counter" => await RunCounterAsync(store, settings, cancellationToken).ConfigureAwait(false),
        _ => await RunAgentScenarioAsync(store, settings, cancellationToken).ConfigureAwait(false),
    };

    internal static async Task ReportAsync(object report, DemoSettings settings, TextWriter output, TimeSpan wall)
    {
        if (settings.Json)
        {
            await output.WriteLineAsync(JsonSerializer.Serialize(report, report.GetType(), JsonOptions)).ConfigureAwait(false);
            return;
        }
        var console = DemoConsole.Create(output);
        if (report is AccountDemoReport account) DemoRenderer.RenderAccount(console, account, settings, wall);
        else if (report is AgentDemoReport agents) DemoRenderer.RenderAgentScenario(console, agents, settings, wall);
        else DemoRenderer.RenderCounter(console, (CounterDemoReport)report, settings, wall);
    }

    private static async Task<AccountDemoReport> RunAccountAsync(IConcordStore engine, DemoSettings settings, CancellationToken cancellationToken)
    {
        var scenario = new AccountScenario(settings.Seed) { Pace = settings.Pace };
        var runs = new List<AccountRun>();
        AccountRun? strict = null;
        foreach (var mode in settings.Modes)
        {
            runs.Add(await scenario.RunAsync(engine, Namespace("account", mode), mode, strict: mode != ConcurrencyMode.Naive, cancellationToken).ConfigureAwait(false));
            if (mode == ConcurrencyMode.Naive)
                strict = await scenario.RunAsync(engine, StrictNaiveNamespace, mode, strict: true, cancellationToken).ConfigureAwait(false);
        }
        return new AccountDemoReport("account", settings.Seed, settings.EngineName, AccountScenario.Key, AccountScenario.ExpectedValue, runs, strict);
    }

    private static async Task<CounterDemoReport> RunCounterAsync(IConcordStore engine, DemoSettings settings, CancellationToken cancellationToken)
    {
        var scenario = new CounterScenario(settings.Seed, settings.Agents, settings.Increments) { Pace = settings.Pace };
        var runs = new List<CounterRun>();
        foreach (var mode in settings.Modes)
            runs.Add(await scenario.RunAsync(engine, Namespace("counter", mode), mode, cancellationToken).ConfigureAwait(false));
        return new CounterDemoReport("counter", settings.Seed, settings.EngineName, CounterScenario.Key, settings.Agents, settings.Increments, runs);
    }

    private static async Task<AgentDemoReport> RunAgentScenarioAsync(IConcordStore engine, DemoSettings settings, CancellationToken cancellationToken)
    {
        var scenario = AgentScenarios.Create(settings.Scenario, settings.Seed);
        var runs = new List<ScenarioRun>();
        foreach (var mode in settings.Modes)
            runs.Add(await scenario.RunAsync(engine, Namespace(settings.Scenario, mode), mode, cancellationToken).ConfigureAwait(false));
        return new AgentDemoReport(scenario.Name, scenario.Title, scenario.Story, settings.Seed, settings.EngineName, runs);
    }

    private static void TryDelete(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp directory is harmless; failing the demo over it is not.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
