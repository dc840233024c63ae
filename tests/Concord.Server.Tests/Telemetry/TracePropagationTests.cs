using System.Diagnostics;
using System.Text.Json;
using Concord.Client;
using Concord.Diagnostics;
using Concord.Engine;
using Concord.OpenTelemetry;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Trace;
using static Concord.Server.Tests.TestHttp;

namespace Concord.Server.Tests.Telemetry;

/// <summary>Client → server trace propagation over a real loopback socket (W3C traceparent through HttpClient).</summary>
public sealed class TracePropagationTests
{
    private static JsonElement J(string json) => JsonDocument.Parse(json).RootElement.Clone();

    [Fact]
    public async Task HttpClientPut_ServerStoreSpanDescendsFromClientSpan()
    {
        var clientSpans = new List<Activity>();
        var serverSpans = new List<Activity>();
        var ns = "otel-" + Guid.NewGuid().ToString("N")[..8];
        // The test process plays the agent: its provider sees the client-side Concord spans.
        using var tracer = Sdk.CreateTracerProviderBuilder().AddConcordInstrumentation().AddInMemoryExporter(clientSpans).Build();
        await using var engine = ConcordEngine.CreateInMemory();
        var app = await ConcordServer.CreateAsync([], o => o.Backend = "memory", engine, b =>
        {
            b.WebHost.UseUrls("http://127.0.0.1:0");
            b.Logging.ClearProviders();
            b.Services.ConfigureOpenTelemetryTracerProvider(t => t.AddInMemoryExporter(serverSpans));
        }, Ct);
        await app.StartAsync(Ct);
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };
            var store = new InstrumentedStore(new ConcordHttpStore(http));
            var agent = new ConcordSession(store, ns, "agent-a");
            Assert.True((await agent.PutAsync("k", J("""{"n":1}"""), Expect.Absent, cancellationToken: Ct)).IsApplied);
        }
        finally
        {
            await app.StopAsync(CancellationToken.None); // drains the request: every server span has ended
            await app.DisposeAsync();                   // flushes the server's provider
        }
        tracer.ForceFlush();

        var all = clientSpans.Concat(serverSpans).GroupBy(s => s.SpanId).Select(g => g.First()).ToDictionary(s => s.SpanId);
        var puts = all.Values.Where(s => s.DisplayName == "concord.put" && (string?)s.GetTagItem(ConcordTelemetry.Tags.Namespace) == ns).ToList();
        Assert.Equal(2, puts.Count); // one in the client (around the HTTP call), one in the server (around the engine)
        var client = Assert.Single(puts, s => s.ParentSpanId == default);
        var server = Assert.Single(puts, s => s.ParentSpanId != default);
        Assert.Equal(client.TraceId, server.TraceId);
        Assert.Equal("agent-a", server.GetTagItem(ConcordTelemetry.Tags.AgentId));
        Assert.Equal(1L, server.GetTagItem(ConcordTelemetry.Tags.Version));

        // Walk up from the server's store span: ASP.NET Core's request span, then (through the traceparent) the client.
        var chain = new List<Activity>();
        for (var s = server; s.ParentSpanId != default && all.TryGetValue(s.ParentSpanId, out var parent); s = parent) chain.Add(parent);
        Assert.Contains(chain, s => s.Kind == ActivityKind.Server && s.Source.Name == "Microsoft.AspNetCore");
        Assert.Equal(client.SpanId, chain[^1].SpanId);
    }
}
