using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using static Concord.Server.Tests.TestHttp;

namespace Concord.Server.Tests.Http;

/// <summary>
/// <see cref="ConcordServerOptions.MaxConnections"/> on a real Kestrel socket: a connection over the limit gets 503
/// <c>too-many-connections</c> as problem+json instead of a silent drop, and a freed slot is usable again.
/// </summary>
public sealed class ConnectionLimitTests
{
    [Fact]
    public async Task Connect_OverTheLimit_Gets503TooManyConnections_AndAFreedSlotServesAgain()
    {
        var app = await ConcordServer.CreateAsync(["--urls", "http://127.0.0.1:0"], o =>
        {
            o.Backend = "memory";
            o.MaxConnections = 2;
        }, configureBuilder: b => b.Logging.ClearProviders(), cancellationToken: Ct);
        await using (app)
        {
            await app.StartAsync(Ct);
            var address = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());

            // Two idle connections hold both slots (each proven accepted by a served request).
            using var first = await OpenServedConnectionAsync(address);
            using var second = await OpenServedConnectionAsync(address);

            using (var third = new HttpClient { BaseAddress = address })
            {
                using var rejected = await third.GetAsync("/v1/ns/t/state/k", Ct);
                Assert.Equal(HttpStatusCode.ServiceUnavailable, rejected.StatusCode);
                Assert.Equal("application/problem+json", rejected.Content.Headers.ContentType?.MediaType);
                Assert.NotNull(rejected.Headers.RetryAfter);
                using var problem = JsonDocument.Parse(await rejected.Content.ReadAsStringAsync(Ct));
                Assert.Equal("https://concord.dev/problems/too-many-connections", problem.RootElement.GetProperty("type").GetString());
                Assert.Contains("2 open connections", problem.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
            }

            // Free one slot: a new connection is served (bounded wait for the server to see the close).
            first.Dispose();
            HttpStatusCode status = default;
            for (var attempt = 0; attempt < 100 && status != HttpStatusCode.NotFound; attempt++)
            {
                using var client = new HttpClient { BaseAddress = address };
                using var response = await client.GetAsync("/v1/ns/t/state/k", Ct);
                status = response.StatusCode;
                if (status != HttpStatusCode.NotFound) await Task.Delay(50, Ct);
            }
            Assert.Equal(HttpStatusCode.NotFound, status); // the key does not exist: served, not rejected
        }
    }

    /// <summary>A raw keep-alive connection that has had one request served, so the server has accepted and counted it.</summary>
    private static async Task<TcpClient> OpenServedConnectionAsync(Uri address)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync(address.Host, address.Port, Ct);
        var stream = tcp.GetStream();
        await stream.WriteAsync("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray(), Ct);
        var buffer = new byte[4096];
        var read = await stream.ReadAsync(buffer, Ct);
        Assert.StartsWith("HTTP/1.1 200", System.Text.Encoding.ASCII.GetString(buffer, 0, read), StringComparison.Ordinal);
        return tcp;
    }
}
