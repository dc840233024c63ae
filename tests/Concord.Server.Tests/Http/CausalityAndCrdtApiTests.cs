using System.Net;
using System.Text.Json;
using Concord.Client;
using Concord.Crdt;
using Concord.Engine;
using Microsoft.AspNetCore.TestHost;
using static Concord.Server.Tests.TestHttp;

namespace Concord.Server.Tests.Http;

/// <summary>Causal stamps, contexts, siblings and CRDT merges over the HTTP API and the .NET client.</summary>
public sealed class CausalityAndCrdtApiTests
{
    private static JsonElement J(string json) => JsonDocument.Parse(json).RootElement.Clone();

    private static JsonElement S(string text) => JsonSerializer.SerializeToElement(text);

    private static ConcordHttpStore ClientFor(ServerHost host, string? apiKey = null)
    {
        var server = host.App.GetTestServer();
        var http = new HttpClient(server.CreateHandler()) { BaseAddress = server.BaseAddress };
        return new ConcordHttpStore(http, new ConcordClientOptions { RetryDelay = TimeSpan.FromMilliseconds(1), ApiKey = apiKey });
    }

    /// <summary>A server over a non-strict engine: sibling writes are blind by design.</summary>
    private static Task<ServerHost> StartLenientAsync() => ServerHost.StartAsync(engine: new ConcordEngineOptions { StrictMode = false });

    [Fact]
    public async Task Put_ResponseCarriesCausalStamp_InBodyAndContextHeader()
    {
        await using var host = await ServerHost.StartAsync();
        var created = await host.Client.SendAsync(HttpMethod.Put, "v1/ns/t/state/doc", """{"a":1}""", ("If-None-Match", "*"), ("Accept", "application/vnd.concord.record+json"));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var body = await created.JsonAsync();
        var causal = body.GetProperty("causal");
        var context = VersionVector.FromJson(causal.GetProperty("ctx"));
        Assert.False(context.IsEmpty);
        Assert.Equal(context, VersionVector.Parse(created.Header("Concord-Context")));

        var get = await host.Client.SendAsync(HttpMethod.Get, "v1/ns/t/state/doc");
        Assert.Equal(context, VersionVector.Parse(get.Header("Concord-Context")));
    }

    [Fact]
    public async Task Put_WithContextHeader_DescendsAndIsNotConcurrent_WithoutItIsConcurrent()
    {
        await using var host = await ServerHost.StartAsync();
        var first = await host.Client.SendAsync(HttpMethod.Put, "v1/ns/t/state/doc", "1", ("If-None-Match", "*"));
        var context = first.Header("Concord-Context");

        var informed = await host.Client.SendAsync(HttpMethod.Put, "v1/ns/t/state/doc", "2", ("If-Match", "*"), ("Concord-Context", context));
        Assert.Equal(HttpStatusCode.OK, informed.StatusCode);
        Assert.False((await informed.JsonAsync()).GetProperty("causal").TryGetProperty("concurrent", out _));

        var uninformed = await host.Client.SendAsync(HttpMethod.Put, "v1/ns/t/state/doc", "3", ("If-Match", "*"), ("Concord-Context", context));
        Assert.True((await uninformed.JsonAsync()).GetProperty("causal").GetProperty("concurrent").GetBoolean());

        var bad = await host.Client.SendAsync(HttpMethod.Put, "v1/ns/t/state/doc", "4", ("If-Match", "*"), ("Concord-Context", "no-counter"));
        await bad.AssertProblemAsync(400, "invalid-context");
    }

    [Fact]
    public async Task Sessions_OverHttp_ConcurrentWritesBecomeSiblings_AndAReadThenWriteResolves()
    {
        await using var host = await StartLenientAsync();
        var store = ClientFor(host);
        var owner = new ConcordSession(store, "t", "owner");
        await owner.PutAsync("plan", S("v0"), new WriteOptions { AllowSiblings = true }, Ct);
        var a = new ConcordSession(store, "t", "planner");
        var b = new ConcordSession(store, "t", "critic");
        await a.GetAsync("plan", Ct);
        await b.GetAsync("plan", Ct);
        Assert.NotNull(a.GetContext("plan")); // the client carried the stamp back

        Assert.False((await a.PutAsync("plan", S("from planner"), cancellationToken: Ct)).Record!.HasSiblings);
        var wb = await b.PutAsync("plan", S("from critic"), cancellationToken: Ct);
        Assert.True(wb.Record!.HasSiblings);
        Assert.True(wb.Record!.Causal!.Concurrent);

        var editor = new ConcordSession(store, "t", "editor");
        var read = await editor.GetAsync("plan", Ct);
        Assert.Equal(["from critic", "from planner"], read!.Siblings.Select(s => s.Value.GetString()!).Order(StringComparer.Ordinal));
        var resolved = await editor.PutAsync("plan", S("merged"), cancellationToken: Ct);
        Assert.False(resolved.Record!.HasSiblings);
        Assert.False(resolved.Record!.Causal!.Concurrent);
    }

    [Fact]
    public async Task Transaction_OpContextAndAllowSiblings_TravelOverTheWire()
    {
        await using var host = await StartLenientAsync();
        var store = ClientFor(host);
        var first = await store.TransactAsync("t", new TxnRequest { Then = [TxnOp.Put("k", S("a")) with { AllowSiblings = true }] }, null, Ct);
        var stamp = first.Results[0].Record!.Causal!;
        Assert.True(stamp.SiblingMode);

        var concurrent = await store.TransactAsync("t", new TxnRequest { Then = [TxnOp.Put("k", S("b"))] }, null, Ct);
        Assert.True(concurrent.Results[0].Record!.HasSiblings);

        var merged = concurrent.Results[0].Record!.Causal!.Context;
        var resolved = await store.TransactAsync("t", new TxnRequest { Then = [TxnOp.Put("k", S("c")) with { Context = merged }] }, null, Ct);
        Assert.False(resolved.Results[0].Record!.HasSiblings);
    }

    [Fact]
    public async Task MergeRoute_ConcurrentIncrements_ExactTotal_AndTypeMismatchIs409()
    {
        await using var host = await ServerHost.StartAsync();
        const int writers = 6, each = 10;
        await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            var local = PNCounter.Empty;
            for (var i = 0; i < each; i++)
            {
                var delta = local.Increment("w" + w);
                local = local.Merge(delta);
                var response = await host.Client.SendAsync(HttpMethod.Post, "v1/ns/t/crdt/hits", delta.ToJson().GetRawText());
                Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync(Ct));
            }
        }, Ct)));
        var session = new ConcordSession(ClientFor(host), "t", "reader");
        Assert.Equal(writers * each, (await session.GetCrdtAsync<PNCounter>("hits", Ct)).Value);

        var wrongType = ORSet.Empty.Add("x", "item");
        var mismatch = await host.Client.SendAsync(HttpMethod.Post, "v1/ns/t/crdt/hits", wrongType.ToJson().GetRawText());
        var problem = await mismatch.AssertProblemAsync(409, "crdt-type-mismatch");
        Assert.Equal("hits", problem.GetProperty("key").GetString());
    }

    [Fact]
    public async Task SessionMerge_OverClient_TypeMismatch_RaisesCrdtTypeMismatchException()
    {
        await using var host = await ServerHost.StartAsync();
        var session = new ConcordSession(ClientFor(host), "t", "agent");
        await session.PutAsync("plain", J("""{"n":1}"""), Expect.Absent, cancellationToken: Ct);
        var e = await Assert.ThrowsAsync<CrdtTypeMismatchException>(async () => await session.MergeAsync("plain", PNCounter.Empty.Increment("a"), cancellationToken: Ct));
        Assert.Equal("plain", e.Key);
        Assert.Equal("json", e.Actual);

        var merged = await session.MergeAsync("set", ORSet.Empty.Add("a", "x"), cancellationToken: Ct);
        Assert.True(merged.IsApplied);
        Assert.Contains("x", (await session.GetCrdtAsync<ORSet>("set", Ct)).ElementsAs<string>());
    }

    [Fact]
    public async Task MergeRoute_ReaderKey_Forbidden()
    {
        await using var host = await ServerHost.StartWithAuthAsync();
        var reader = host.ClientWithKey(ServerHost.ReaderA);
        var response = await reader.SendAsync(HttpMethod.Post, "v1/ns/a/crdt/hits", PNCounter.Empty.Increment("r").ToJson().GetRawText());
        await response.AssertProblemAsync(403, "forbidden");
        var writer = host.ClientWithKey(ServerHost.WriterA);
        Assert.Equal(HttpStatusCode.Created, (await writer.SendAsync(HttpMethod.Post, "v1/ns/a/crdt/hits", PNCounter.Empty.Increment("w").ToJson().GetRawText())).StatusCode);
    }
}
