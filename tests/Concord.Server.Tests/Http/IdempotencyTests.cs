using System.Net;
using Concord.Engine;
using static Concord.Server.Tests.TestHttp;

namespace Concord.Server.Tests.Http;

public sealed class IdempotencyTests
{
    private const string Url = "/v1/ns/t/state/orders/1";

    [Fact]
    public async Task Put_Replay_ReturnsOriginalStatusAndBodyMarkedReplayed()
    {
        await using var host = await ServerHost.StartAsync();
        using var first = await host.Client.SendAsync(HttpMethod.Put, Url, """{"qty":1}""", ("Idempotency-Key", "op-1"));
        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        Assert.Equal("", first.Header("Idempotent-Replayed"));
        var firstBody = await first.Content.ReadAsStringAsync(Ct);

        using var again = await host.Client.SendAsync(HttpMethod.Put, Url, """{"qty":1}""", ("Idempotency-Key", "op-1"));
        Assert.Equal(HttpStatusCode.Created, again.StatusCode);
        Assert.Equal("true", again.Header("Idempotent-Replayed"));
        Assert.Equal(firstBody, await again.Content.ReadAsStringAsync(Ct));
        Assert.Equal(first.Headers.ETag, again.Headers.ETag);
        Assert.Equal(1, (await host.Store.GetAsync("t", "orders/1", null, Ct))!.Version);
    }

    [Fact]
    public async Task Patch_Replay_IsAppliedOnce()
    {
        await using var host = await ServerHost.StartAsync();
        for (var i = 0; i < 3; i++)
        {
            using var r = await host.Client.SendAsync(HttpMethod.Patch, Url, """[{"op":"increment","path":"/n","value":5}]""", ("Idempotency-Key", "inc-1"));
            Assert.True(r.IsSuccessStatusCode);
            Assert.Equal(i > 0 ? "true" : "", r.Header("Idempotent-Replayed"));
        }
        Assert.Equal(5, (await host.Store.GetAsync("t", "orders/1", null, Ct))!.Value.GetProperty("n").GetDouble());
    }

    [Fact]
    public async Task Put_SameKeyDifferentPayload_Returns422()
    {
        await using var host = await ServerHost.StartAsync();
        (await host.Client.SendAsync(HttpMethod.Put, Url, """{"qty":1}""", ("Idempotency-Key", "op-1"))).Dispose();
        using var r = await host.Client.SendAsync(HttpMethod.Put, Url, """{"qty":2}""", ("Idempotency-Key", "op-1"));
        var problem = await r.AssertProblemAsync(422, "idempotency-key-reused");
        Assert.Equal("op-1", problem.GetProperty("idempotencyKey").GetString());
        Assert.Equal(1, (await host.Store.GetAsync("t", "orders/1", null, Ct))!.Value.GetProperty("qty").GetInt32());
    }

    [Fact]
    public async Task Put_SameKeyDifferentPrecondition_Returns422()
    {
        await using var host = await ServerHost.StartAsync();
        (await host.Client.SendAsync(HttpMethod.Put, Url, """{"qty":1}""", ("Idempotency-Key", "op-1"))).Dispose();
        using var r = await host.Client.SendAsync(HttpMethod.Put, Url, """{"qty":1}""", ("Idempotency-Key", "op-1"), ("If-Match", "\"1\""));
        await r.AssertProblemAsync(422, "idempotency-key-reused");
    }

    [Fact]
    public async Task Txn_Replay_ReturnsSameRevisionMarkedReplayed()
    {
        await using var host = await ServerHost.StartAsync();
        const string txn = """{"then":[{"kind":"put","key":"a","value":1},{"kind":"put","key":"b","value":2}]}""";
        using var first = await host.Client.SendAsync(HttpMethod.Post, "/v1/ns/t/txn", txn, ("Idempotency-Key", "tx-1"));
        var firstBody = await first.JsonAsync();
        using var again = await host.Client.SendAsync(HttpMethod.Post, "/v1/ns/t/txn", txn, ("Idempotency-Key", "tx-1"));
        var againBody = await again.JsonAsync();
        Assert.Equal("true", again.Header("Idempotent-Replayed"));
        Assert.True(againBody.GetProperty("replayed").GetBoolean());
        Assert.Equal(firstBody.GetProperty("revision").GetInt64(), againBody.GetProperty("revision").GetInt64());
        Assert.Equal(1, await host.Store.GetRevisionAsync(Ct));
    }

    [Fact]
    public async Task Put_ConflictIsNotRemembered_RetryAfterFixingStateApplies()
    {
        await using var host = await ServerHost.StartAsync();
        using var conflict = await host.Client.SendAsync(HttpMethod.Put, Url, """{"qty":1}""", ("Idempotency-Key", "op-1"), ("If-Match", "\"1\""));
        Assert.Equal(HttpStatusCode.PreconditionFailed, conflict.StatusCode);
        (await host.Client.SendAsync(HttpMethod.Put, Url, """{"qty":0}""")).Dispose();
        using var retry = await host.Client.SendAsync(HttpMethod.Put, Url, """{"qty":1}""", ("Idempotency-Key", "op-1"), ("If-Match", "\"1\""));
        Assert.Equal(HttpStatusCode.OK, retry.StatusCode);
        Assert.Equal("", retry.Header("Idempotent-Replayed"));
    }

    /// <summary>
    /// The in-flight rule: the engine applies writes one at a time, so of N identical requests racing with one key,
    /// exactly one is applied and every other waits for it and gets its replay — never a 409, never a second effect.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Put_ConcurrentDuplicates_ExactlyOneAppliedOthersReplay(bool durable)
    {
        var dir = durable ? Directory.CreateTempSubdirectory("concord-idem-").FullName : null;
        try
        {
            var engine = await ConcordEngine.OpenAsync(new ConcordEngineOptions { StrictMode = true, DataDirectory = dir }, Ct);
            await using var host = await ServerHost.StartAsync(store: engine);
            for (var round = 0; round < 10; round++)
            {
                var url = $"/v1/ns/t/state/race/{round}";
                var requests = Enumerable.Range(0, 16).Select(_ => host.Client.SendAsync(HttpMethod.Patch, url,
                    """[{"op":"increment","path":"/n","value":1}]""", ("Idempotency-Key", $"race-{round}"))).ToList();
                var responses = await Task.WhenAll(requests);
                Assert.All(responses, r => Assert.True(r.StatusCode is HttpStatusCode.Created, r.StatusCode.ToString()));
                Assert.Equal(1, responses.Count(r => r.Header("Idempotent-Replayed") != "true"));
                Assert.All(responses, r => Assert.Equal(1, r.ETagVersion()));
                foreach (var r in responses) r.Dispose();
                Assert.Equal(1, (await host.Store.GetAsync("t", $"race/{round}", null, Ct))!.Value.GetProperty("n").GetDouble());
            }
        }
        finally
        {
            if (dir is not null) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Put_IdempotencyKeyTooLong_Returns400()
    {
        await using var host = await ServerHost.StartAsync();
        using var r = await host.Client.SendAsync(HttpMethod.Put, Url, "{}", ("Idempotency-Key", new string('k', 300)));
        await r.AssertProblemAsync(400, "invalid-idempotency-key");
    }
}
