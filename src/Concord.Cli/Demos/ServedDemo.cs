using System.Diagnostics;
using Concord.Client;
using Concord.Engine;
using Concord.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;

namespace Concord.Cli.Demos;

/// <summary>
/// <c>concord demo --serve [URL]</c>: the demo's agents call a Concord server over HTTP, so a person can watch the run on
/// the dashboard — naive agents losing updates, the safe modes not. Without a URL an in-process server (in-memory
/// engine, naive namespaces relaxed as in every demo) listens on a free loopback port and keeps serving until Ctrl+C.
/// </summary>
internal static class ServedDemo
{
    /// <summary>Starts an in-process server on a free loopback port over <paramref name="store"/>; returns it and its address.</summary>
    public static async Task<(WebApplication App, Uri Address)> StartServerAsync(IConcordStore store, CancellationToken cancellationToken,
        Action<ConcordServerOptions>? configure = null)
    {
        var app = await ConcordServer.CreateAsync([], o =>
        {
            o.Backend = "memory";
            configure?.Invoke(o);
        }, store, b =>
        {
            b.WebHost.UseUrls("http://127.0.0.1:0");
            b.Logging.SetMinimumLevel(LogLevel.Warning);
            // The demo prints where to look; the server's start-up chatter would only push that off screen.
            b.Logging.AddFilter("Concord.Server", LogLevel.Error);
            b.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.None);
        }, cancellationToken).ConfigureAwait(false);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var address = new Uri(app.Urls.First(u => u.StartsWith("http://", StringComparison.Ordinal)).TrimEnd('/') + "/");
        return (app, address);
    }

    public static async Task<int> RunAsync(DemoSettings settings, string? url, bool exitAtEnd, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        WebApplication? app = null;
        ConcordEngine? engine = null;
        try
        {
            Uri address;
            if (url is null)
            {
                engine = ConcordEngine.CreateInMemory(DemoRunner.EngineOptions());
                (app, address) = await StartServerAsync(engine, cancellationToken).ConfigureAwait(false);
            }
            else if (!Uri.TryCreate(url.EndsWith('/') ? url : url + "/", UriKind.Absolute, out address!) || address.Scheme is not ("http" or "https"))
            {
                await error.WriteLineAsync($"concord demo: --serve needs an http(s) URL, not '{url}'").ConfigureAwait(false);
                return 2;
            }

            var first = DemoRunner.Namespace(settings.Scenario, settings.Modes[0]);
            await output.WriteLineAsync($"Dashboard: {address}?ns={first}").ConfigureAwait(false);
            await output.WriteLineAsync($"  (all modes: {address}) — the agents start in a moment{(settings.Pace > 0 ? $", think times at {settings.Pace:0.##}× real time" : "")}.").ConfigureAwait(false);
            if (url is not null)
                await output.WriteLineAsync("  Naive mode needs blind writes: against a strict server (the default) they are refused (HTTP 428); start it with --no-strict to watch updates get lost.").ConfigureAwait(false);
            await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            if (settings.Pace > 0 && app is not null)
            {
                // Give a person (or a browser test) a moment to open the page before the first operation.
                await Task.Delay(TimeSpan.FromSeconds(Math.Min(3, 2 * settings.Pace)), TimeProvider.System, cancellationToken).ConfigureAwait(false);
            }

            var started = Stopwatch.GetTimestamp();
            using var http = new HttpClient { BaseAddress = address };
            var store = new ConcordHttpStore(http, new ConcordClientOptions { ApiKey = Environment.GetEnvironmentVariable("CONCORD_API_KEY") });
            var served = settings with { ServedAt = address.ToString() };
            var report = await DemoRunner.RunScenarioAsync(store, served, cancellationToken).ConfigureAwait(false);
            await DemoRunner.ReportAsync(report, served, output, Stopwatch.GetElapsedTime(started)).ConfigureAwait(false);

            if (app is not null && !exitAtEnd)
            {
                await output.WriteLineAsync($"The demo is over; the dashboard stays up at {address} — press Ctrl+C to stop.").ConfigureAwait(false);
                await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    await Task.Delay(Timeout.InfiniteTimeSpan, TimeProvider.System, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // Ctrl+C: stop serving below.
                }
            }
            return 0;
        }
        catch (Exception e) when (e is ConcordException or HttpRequestException or IOException && !cancellationToken.IsCancellationRequested)
        {
            await error.WriteLineAsync($"concord demo: {e.Message}").ConfigureAwait(false);
            return 1;
        }
        finally
        {
            if (app is not null)
            {
                await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
                await app.DisposeAsync().ConfigureAwait(false);
            }
            if (engine is not null) await engine.DisposeAsync().ConfigureAwait(false);
        }
    }
}
