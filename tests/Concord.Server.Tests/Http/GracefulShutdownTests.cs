using System.Net;
using System.Text;
using Concord.Engine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using static Concord.Server.Tests.TestHttp;

namespace Concord.Server.Tests.Http;

/// <summary>Graceful shutdown on a real Kestrel socket with the embedded (durable) engine owned by the server.</summary>
public sealed class GracefulShutdownTests
{
    [Fact]
    public async Task Stop_WithRequestInFlight_DrainsItThenClosesTheStoreDurably()
    {
        var dir = Directory.CreateTempSubdirectory("concord-shutdown-").FullName;
        try
        {
            var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var app = await ConcordServer.CreateAsync(["--urls", "http://127.0.0.1:0"], o =>
            {
                o.Backend = "embedded";
                o.DataDirectory = dir;
            }, configureBuilder: b =>
            {
                b.Logging.ClearProviders();
                b.Services.AddSingleton<IStartupFilter>(new SignalFilter(arrived));
            }, cancellationToken: Ct);
            await app.StartAsync(Ct);
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
            using var http = new HttpClient { BaseAddress = new Uri(address) };

            (await http.PutAsync("/v1/ns/t/state/before", Json("""{"n":1}"""), Ct)).EnsureSuccessStatusCode();

            // A PUT whose body is only half sent when shutdown begins.
            var body = new GatedContent("""{"n":""", "2}");
            var inFlight = http.PutAsync("/v1/ns/t/state/during", body, Ct);
            await arrived.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct);
            var stopping = app.StopAsync(CancellationToken.None);
            await WaitAsync(app.Lifetime.ApplicationStopping);
            Assert.False(stopping.IsCompleted);
            body.Release();

            using var response = await inFlight;
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            await stopping;
            await app.DisposeAsync();

            // The store was closed by the server (the directory lock is free) and both writes are durable.
            await using var reopened = await ConcordEngine.OpenAsync(new ConcordEngineOptions { DataDirectory = dir }, Ct);
            Assert.Equal(1, (await reopened.GetAsync("t", "before", null, Ct))!.Value.GetProperty("n").GetInt32());
            Assert.Equal(2, (await reopened.GetAsync("t", "during", null, Ct))!.Value.GetProperty("n").GetInt32());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static Task WaitAsync(CancellationToken token)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        token.Register(() => tcs.TrySetResult());
        return tcs.Task.WaitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>Signals when a request for key "during" reaches the pipeline.</summary>
    private sealed class SignalFilter(TaskCompletionSource arrived) : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use(async (HttpContext http, RequestDelegate inner) =>
            {
                if (http.Request.Path.Value?.EndsWith("/during", StringComparison.Ordinal) == true) arrived.TrySetResult();
                await inner(http);
            });
            next(app);
        };
    }

    /// <summary>Sends the first part of a body, then waits for <see cref="Release"/> before sending the rest.</summary>
    private sealed class GatedContent(string first, string rest) : HttpContent
    {
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Release() => _gate.TrySetResult();

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            await stream.WriteAsync(Encoding.UTF8.GetBytes(first));
            await stream.FlushAsync();
            await _gate.Task;
            await stream.WriteAsync(Encoding.UTF8.GetBytes(rest));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = Encoding.UTF8.GetByteCount(first) + Encoding.UTF8.GetByteCount(rest);
            return true;
        }
    }
}
