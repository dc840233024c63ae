using Concord.Cli.Demos;
using Concord.Client;
using Concord.Engine;
using Concord.Lab.Scenarios;
using Concord.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Concord.Dashboard.Tests;

/// <summary>An in-process Concord server on a free loopback port (the demo's engine settings), plus an HTTP client store for agents.</summary>
internal sealed class DashboardServer : IAsyncDisposable
{
    private readonly ConcordEngine _engine;
    private readonly HttpClient _http;

    private DashboardServer(ConcordEngine engine, WebApplication app, Uri address)
    {
        _engine = engine;
        App = app;
        Address = address;
        _http = new HttpClient { BaseAddress = address };
        Client = new ConcordHttpStore(_http);
    }

    public WebApplication App { get; }

    public Uri Address { get; }

    /// <summary>Agents' store: the server over HTTP.</summary>
    public ConcordHttpStore Client { get; }

    /// <summary>The server's own store (the operations journal in front of the engine): fast, in-process, and still recorded.</summary>
    public IConcordStore Journaled => App.Services.GetRequiredService<IConcordStore>();

    public static async Task<DashboardServer> StartAsync(Action<ConcordServerOptions>? configure = null)
    {
        var engine = ConcordEngine.CreateInMemory(DemoRunner.EngineOptions());
        var (app, address) = await ServedDemo.StartServerAsync(engine, TestContext.Current.CancellationToken, configure);
        return new DashboardServer(engine, app, address);
    }

    /// <summary>Runs the demo's scenario in the given modes against the server over HTTP, as <c>concord demo --serve</c> does.</summary>
    public Task<object> RunDemoAsync(string scenario, string mode, double pace = 0, int seed = DemoSettings.DefaultSeed)
    {
        var settings = DemoSettings.TryCreate(scenario, mode, null, scenario == "counter" ? 10 : null, seed, json: true, null, memory: true, out var problem)
            ?? throw new InvalidOperationException(problem);
        return DemoRunner.RunScenarioAsync(Client, settings with { Pace = pace, ServedAt = Address.ToString() }, TestContext.Current.CancellationToken);
    }

    public static string Ns(string scenario, ConcurrencyMode mode) => DemoRunner.Namespace(scenario, mode);

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await App.StopAsync(CancellationToken.None);
        await App.DisposeAsync();
        await _engine.DisposeAsync();
    }
}
