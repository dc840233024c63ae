using System.Text.Json;
using Concord.Engine;
using static Concord.Server.Tests.TestHttp;

namespace Concord.Server.Tests.Http;

public sealed class WatchApiTests
{
    private static JsonElement J(string json) => JsonDocument.Parse(json).RootElement.Clone();

    private static async Task TxnAsync(ServerHost host, params string[] keys)
    {
        var ops = string.Join(",", keys.Select(k => "{\"kind\":\"put\",\"key\":\"" + k + "\",\"value\":{\"k\":\"" + k + "\"}}"));
        using var r = await host.Client.SendAsync(HttpMethod.Post, "/v1/ns/t/txn", $$"""{"then":[{{ops}}]}""");
        Assert.True(r.IsSuccessStatusCode);
    }

    [Fact]
    public async Task Watch_ResumeWithLastEventIdInsideMultiKeyTransaction_NoLossNoDuplicate()
    {
        await using var host = await ServerHost.StartAsync();
        await TxnAsync(host, "x");                  // revision 1
        await TxnAsync(host, "a", "b", "c");        // revision 2: three changes, one revision
        await TxnAsync(host, "d");                  // revision 3

        List<SseEvent> first;
        await using (var watch = await SseReader.OpenAsync(host.Client, "/v1/ns/t/watch?fromRevision=1"))
            first = await watch.TakeAsync(3); // x, a, b — stop in the middle of revision 2
        Assert.Equal(["1.0", "2.0", "2.1"], first.Select(e => e.Id));
        Assert.Equal(["x", "a", "b"], first.Select(e => e.Key));

        await using var resumed = await SseReader.OpenAsync(host.Client, "/v1/ns/t/watch?fromRevision=1", lastEventId: first[^1].Id);
        var rest = await resumed.TakeAsync(2);
        Assert.Equal(["2.2", "3.0"], rest.Select(e => e.Id));
        Assert.Equal(["c", "d"], rest.Select(e => e.Key));
        await TxnAsync(host, "e", "f");
        var live = await resumed.TakeAsync(2);
        Assert.Equal(["4.0", "4.1"], live.Select(e => e.Id));
        Assert.Equal(["e", "f"], live.Select(e => e.Key));
        Assert.All(live, e => Assert.Equal("put", e.Event));
    }

    [Fact]
    public async Task Watch_EveryResumePoint_DeliversExactlyTheSuffix()
    {
        await using var host = await ServerHost.StartAsync();
        await TxnAsync(host, "p/1", "p/2");
        await TxnAsync(host, "p/3");
        await TxnAsync(host, "p/4", "p/5", "p/6");
        List<SseEvent> all;
        await using (var watch = await SseReader.OpenAsync(host.Client, "/v1/ns/t/watch?prefix=p/&fromRevision=1"))
            all = await watch.TakeAsync(6);
        for (var cut = 0; cut < all.Count - 1; cut++)
        {
            await using var resumed = await SseReader.OpenAsync(host.Client, "/v1/ns/t/watch?prefix=p/&fromRevision=1", lastEventId: all[cut].Id);
            var suffix = await resumed.TakeAsync(all.Count - cut - 1);
            Assert.Equal(all.Skip(cut + 1).Select(e => e.Id), suffix.Select(e => e.Id));
        }
    }

    [Fact]
    public async Task Watch_KeyFilterAndDeletes_DeliversOnlyThatKeyWithKinds()
    {
        await using var host = await ServerHost.StartAsync();
        await using var watch = await SseReader.OpenAsync(host.Client, "/v1/ns/t/watch?key=k1");
        Assert.NotEqual("", watch.Response.Header("Concord-Revision"));
        (await host.Client.SendAsync(HttpMethod.Put, "/v1/ns/t/state/k2", "{}")).Dispose();
        (await host.Client.SendAsync(HttpMethod.Put, "/v1/ns/t/state/k1", "{}")).Dispose();
        (await host.Client.SendAsync(HttpMethod.Delete, "/v1/ns/t/state/k1", null, ("If-Match", "\"1\""))).Dispose();
        var events = await watch.TakeAsync(2);
        Assert.Equal(["put", "delete"], events.Select(e => e.Event));
        Assert.All(events, e => Assert.Equal("k1", e.Key));
        Assert.True(events[1].Json.GetProperty("record").GetProperty("deleted").GetBoolean());
    }

    [Fact]
    public async Task Watch_FromCompactedRevision_Returns410()
    {
        var engine = ConcordEngine.CreateInMemory(new ConcordEngineOptions { StrictMode = false, RetainedRevisions = 2 });
        for (var i = 0; i < 1100; i++) await engine.PutAsync("t", "k", J($"{i}"), null, Ct);
        await using var host = await ServerHost.StartAsync(store: engine);
        using var r = await host.Client.SendAsync(HttpMethod.Get, "/v1/ns/t/watch?fromRevision=1");
        await r.AssertProblemAsync(410, "revision-compacted");
        using var r2 = await host.Client.SendAsync(HttpMethod.Get, "/v1/ns/t/watch", null, ("Last-Event-ID", "3.0"));
        await r2.AssertProblemAsync(410, "revision-compacted");
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("3")]
    [InlineData("3.x")]
    [InlineData("0.0")]
    public async Task Watch_MalformedLastEventId_Returns400(string id)
    {
        await using var host = await ServerHost.StartAsync();
        using var r = await host.Client.SendAsync(HttpMethod.Get, "/v1/ns/t/watch", null, ("Last-Event-ID", id));
        await r.AssertProblemAsync(400, "invalid-last-event-id");
    }

    [Fact]
    public async Task Watch_OverWatcherLimit_Returns429()
    {
        await using var host = await ServerHost.StartAsync(o => o.MaxWatchers = 1);
        await using var first = await SseReader.OpenAsync(host.Client, "/v1/ns/t/watch");
        using var second = await host.Client.SendAsync(HttpMethod.Get, "/v1/ns/t/watch");
        await second.AssertProblemAsync(429, "too-many-watchers");
    }

    [Fact]
    public async Task Watch_ServerStopping_EndsStream()
    {
        var host = await ServerHost.StartAsync();
        await using var watch = await SseReader.OpenAsync(host.Client, "/v1/ns/t/watch");
        var stopping = host.App.StopAsync(Ct);
        // The stream ends (null) instead of holding the shutdown for its whole timeout.
        Assert.Null(await watch.NextAsync());
        await stopping;
        await host.App.DisposeAsync();
        await host.Store.DisposeAsync();
    }
}
