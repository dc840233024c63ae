using Concord.Client;
using Concord.Coordination.Queues;
using Concord.Coordination.Streams;
using Concord.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Concord.Tests.Coordination;

/// <summary>
/// An in-process Concord server (TestServer) over a store the test owns, for running the coordination suites over HTTP.
/// The server's queue and stream services are whatever the test sets (<see cref="Queues"/>, <see cref="Streams"/>), so
/// both sides share the suite's options and clock.
/// </summary>
internal sealed class HttpHost : IAsyncDisposable
{
    private HttpHost(WebApplication app, HttpClient client)
    {
        App = app;
        Client = client;
    }

    public WebApplication App { get; }

    public HttpClient Client { get; }

    public ConcordClientOptions ClientOptions { get; } = new() { RetryDelay = TimeSpan.FromMilliseconds(5) };

    public IQueueService? Queues { get; set; }

    public IStreamService? Streams { get; set; }

    public static async Task<HttpHost> StartAsync(IConcordStore store, TimeProvider clock)
    {
        HttpHost? host = null;
        var app = await ConcordServer.CreateAsync([], o =>
        {
            o.Backend = "memory";
            o.MaxWatchers = 10_000;
        }, store, b =>
        {
            b.WebHost.UseTestServer();
            b.Logging.ClearProviders();
            b.Services.AddSingleton(clock);
            // Transient: resolved per request, so a service the test sets later is the one the routes use.
            b.Services.AddTransient(_ => host!.Queues ?? throw new InvalidOperationException("the test set no queue service"));
            b.Services.AddTransient(_ => host!.Streams ?? throw new InvalidOperationException("the test set no stream service"));
        }, TestContext.Current.CancellationToken);
        await app.StartAsync(TestContext.Current.CancellationToken);
        var server = app.GetTestServer();
        host = new HttpHost(app, new HttpClient(server.CreateHandler()) { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(2) });
        return host;
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await App.StopAsync(CancellationToken.None);
        await App.DisposeAsync();
    }
}
