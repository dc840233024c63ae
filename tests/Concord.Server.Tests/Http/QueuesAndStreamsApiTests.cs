using System.Net;
using System.Text.Json;
using static Concord.Server.Tests.TestHttp;

namespace Concord.Server.Tests.Http;

/// <summary>The queue and stream routes as a non-.NET client sees them: status codes, problem types, SSE resume.</summary>
public sealed class QueuesAndStreamsApiTests
{
    [Fact]
    public async Task Queue_EnqueueLeaseAck_ThenStaleReceiptIs409()
    {
        await using var host = await ServerHost.StartAsync();
        var c = host.Client;
        var enqueued = await c.SendAsync(HttpMethod.Post, "v1/ns/t/queues/jobs/tasks", """{"payload":{"n":1},"dedupId":"d1"}""");
        Assert.Equal(HttpStatusCode.Created, enqueued.StatusCode);
        var taskId = (await enqueued.JsonAsync()).GetProperty("taskId").GetString();
        var duplicate = await c.SendAsync(HttpMethod.Post, "v1/ns/t/queues/jobs/tasks", """{"payload":{"n":2},"dedupId":"d1"}""");
        Assert.Equal(HttpStatusCode.OK, duplicate.StatusCode);
        Assert.Equal("duplicate", (await duplicate.JsonAsync()).GetProperty("status").GetString());

        var leased = await (await c.SendAsync(HttpMethod.Post, "v1/ns/t/queues/jobs/lease", """{"consumer":"w1","visibilityMs":60000}""")).JsonAsync();
        var lease = leased.GetProperty("lease");
        Assert.Equal(taskId, lease.GetProperty("taskId").GetString());
        Assert.Equal(1, lease.GetProperty("payload").GetProperty("n").GetInt32());
        var receipt = lease.GetProperty("receipt").GetString();

        var empty = await (await c.SendAsync(HttpMethod.Post, "v1/ns/t/queues/jobs/lease", """{"consumer":"w2"}""")).JsonAsync();
        Assert.Equal(JsonValueKind.Null, empty.TryGetProperty("lease", out var l) ? l.ValueKind : JsonValueKind.Null);

        var ackBody = $$$"""{"taskId":"{{{taskId}}}","receipt":"{{{receipt}}}","effects":[{"kind":"put","key":"done/1","value":true,"expect":{"kind":"absent"}}]}""";
        var ack = await c.SendAsync(HttpMethod.Post, "v1/ns/t/queues/jobs/ack", ackBody);
        Assert.Equal(HttpStatusCode.OK, ack.StatusCode);
        Assert.NotNull(await host.Store.GetAsync("t", "done/1", null, Ct));
        var again = await c.SendAsync(HttpMethod.Post, "v1/ns/t/queues/jobs/nack", $$"""{"taskId":"{{taskId}}","receipt":"{{receipt}}"}""");
        await again.AssertProblemAsync(409, "stale-receipt");
        await (await c.SendAsync(HttpMethod.Get, $"v1/ns/t/queues/jobs/tasks/{taskId}")).AssertProblemAsync(404, "task-not-found");
    }

    [Fact]
    public async Task Queue_AckWithRefusedEffect_Is409EffectConflict_AndTaskStaysLeased()
    {
        await using var host = await ServerHost.StartAsync();
        var c = host.Client;
        await c.SendAsync(HttpMethod.Post, "v1/ns/t/queues/jobs/tasks", """{"payload":1}""");
        var lease = (await (await c.SendAsync(HttpMethod.Post, "v1/ns/t/queues/jobs/lease", """{"consumer":"w1"}""")).JsonAsync()).GetProperty("lease");
        var body = $$$"""{"taskId":"{{{lease.GetProperty("taskId").GetString()}}}","receipt":"{{{lease.GetProperty("receipt").GetString()}}}","effects":[{"kind":"put","key":"x","value":1,"expect":{"kind":"version","version":4}}]}""";
        var problem = await (await c.SendAsync(HttpMethod.Post, "v1/ns/t/queues/jobs/ack", body)).AssertProblemAsync(409, "effect-conflict");
        Assert.Equal(0, problem.GetProperty("effectIndex").GetInt32());
        var stats = await (await c.SendAsync(HttpMethod.Get, "v1/ns/t/queues/jobs")).JsonAsync();
        Assert.Equal(1, stats.GetProperty("leased").GetInt32());
    }

    [Fact]
    public async Task Queue_ReaderKey_MayReadStatsButNotEnqueue()
    {
        await using var host = await ServerHost.StartWithAuthAsync();
        var reader = host.ClientWithKey(ServerHost.ReaderA);
        await (await reader.SendAsync(HttpMethod.Post, "v1/ns/a/queues/jobs/tasks", """{"payload":1}""")).AssertProblemAsync(403, "forbidden");
        Assert.Equal(HttpStatusCode.OK, (await reader.SendAsync(HttpMethod.Get, "v1/ns/a/queues/jobs")).StatusCode);
        var other = host.ClientWithKey(ServerHost.WriterB);
        await (await other.SendAsync(HttpMethod.Post, "v1/ns/a/queues/jobs/lease", "{}")).AssertProblemAsync(403, "forbidden");
    }

    [Fact]
    public async Task Stream_AppendWithWrongExpectedVersion_Is409WithCurrentVersion()
    {
        await using var host = await ServerHost.StartAsync();
        var c = host.Client;
        var first = await c.SendAsync(HttpMethod.Post, "v1/ns/t/streams/orders/7", """{"events":[{"type":"Placed","data":{"n":1}},{"type":"Paid"}],"expectedVersion":"noStream"}""");
        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        Assert.Equal(2, (await first.JsonAsync()).GetProperty("version").GetInt64());

        var stale = await c.SendAsync(HttpMethod.Post, "v1/ns/t/streams/orders/7", """{"events":[{"type":"Shipped"}],"expectedVersion":1}""");
        var problem = await stale.AssertProblemAsync(409, "wrong-expected-version");
        Assert.Equal(2, problem.GetProperty("currentVersion").GetInt64());

        Assert.Equal(HttpStatusCode.Created, (await c.SendAsync(HttpMethod.Post, "v1/ns/t/streams/orders/7", """{"events":[{"type":"Shipped"}],"expectedVersion":2}""")).StatusCode);
        var backward = await (await c.SendAsync(HttpMethod.Get, "v1/ns/t/streams/orders/7?direction=backward&count=2")).JsonAsync();
        Assert.Equal(3, backward.GetProperty("version").GetInt64());
        Assert.Equal(["Shipped", "Paid"], backward.GetProperty("events").EnumerateArray().Select(e => e.GetProperty("type").GetString()));
        await (await c.SendAsync(HttpMethod.Get, "v1/ns/t/streams/orders/8")).AssertProblemAsync(404, "stream-not-found");
        await (await c.SendAsync(HttpMethod.Post, "v1/ns/t/streams/orders/7", """{"events":[{"type":"X"}],"expectedVersion":"soon"}""")).AssertProblemAsync(400, "invalid-request");
    }

    [Fact]
    public async Task Stream_Subscribe_ResumesAfterLastEventId_WithoutLossOrRepeat()
    {
        await using var host = await ServerHost.StartAsync();
        var c = host.Client;
        for (var i = 0; i < 3; i++)
            await c.SendAsync(HttpMethod.Post, "v1/ns/t/streams/log", $$"""{"events":[{"type":"E","data":{{i}}},{"type":"E","data":{{i + 100}}}]}""");

        string? lastId;
        await using (var first = await SseReader.OpenAsync(c, "v1/ns/t/events?stream=log"))
        {
            var seen = new List<int>();
            SseEvent? e = null;
            for (var i = 0; i < 3; i++)
            {
                e = await first.NextAsync();
                seen.Add(e!.Json.GetProperty("data").GetInt32());
            }
            Assert.Equal([0, 100, 1], seen);
            lastId = e!.Id; // the first event of a two-event commit: resume must split the commit exactly
        }
        Assert.Matches(@"^\d+:0$", lastId!);

        await using var resumed = await SseReader.OpenAsync(c, "v1/ns/t/events?stream=log", lastId);
        await c.SendAsync(HttpMethod.Post, "v1/ns/t/streams/log", """{"events":[{"type":"E","data":7}]}""");
        var rest = new List<int>();
        for (var i = 0; i < 4; i++) rest.Add((await resumed.NextAsync())!.Json.GetProperty("data").GetInt32());
        Assert.Equal([101, 2, 102, 7], rest);
    }
}
