using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.TestHost;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using static Concord.Server.Tests.TestHttp;

namespace Concord.Server.Tests.Mcp;

public sealed class McpToolsTests
{
    private static JsonElement J(string json) => JsonDocument.Parse(json).RootElement.Clone();

    private static async Task<McpClient> ConnectAsync(ServerHost host, string? apiKey = null, string? agent = null)
    {
        var server = host.App.GetTestServer();
        var http = new HttpClient(server.CreateHandler()) { BaseAddress = server.BaseAddress };
        var headers = new Dictionary<string, string>();
        if (apiKey is not null) headers["Authorization"] = "Bearer " + apiKey;
        if (agent is not null) headers["Concord-Agent"] = agent;
        var transport = new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = new Uri(server.BaseAddress, "/mcp"),
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = headers,
        }, http, null, ownsHttpClient: true);
        return await McpClient.CreateAsync(transport, cancellationToken: Ct);
    }

    private static async Task<JsonElement> CallAsync(McpClient client, string tool, Dictionary<string, object?> args)
    {
        var result = await client.CallToolAsync(tool, args, cancellationToken: Ct);
        var text = Assert.IsType<TextContentBlock>(Assert.Single(result.Content)).Text;
        Assert.True(result.IsError is not true, $"{tool} failed: {text}");
        var structured = JsonSerializer.SerializeToElement(result.StructuredContent);
        Assert.True(JsonElement.DeepEquals(JsonDocument.Parse(text).RootElement, structured), $"text and structured content differ: {text}");
        return structured;
    }

    private static async Task<string> CallExpectingErrorAsync(McpClient client, string tool, Dictionary<string, object?> args)
    {
        var result = await client.CallToolAsync(tool, args, cancellationToken: Ct);
        Assert.True(result.IsError, $"{tool} should have failed");
        return string.Join("\n", result.Content.OfType<TextContentBlock>().Select(t => t.Text));
    }

    [Fact]
    public async Task ListTools_ExposesSafeToolsWithDisciplineInDescriptions()
    {
        await using var host = await ServerHost.StartAsync();
        await using var client = await ConnectAsync(host);
        var tools = await client.ListToolsAsync(cancellationToken: Ct);
        Assert.Equal(["ack", "append", "enqueue", "increment", "lease", "list", "lock", "patch", "read", "read_events", "unlock", "write"],
            tools.Select(t => t.Name).Order(StringComparer.Ordinal));
        var write = tools.Single(t => t.Name == "write");
        Assert.Contains("expectedVersion", write.Description, StringComparison.Ordinal);
        Assert.Contains("expectedVersion", write.ProtocolTool.InputSchema.GetRawText(), StringComparison.Ordinal);
        Assert.True(tools.Single(t => t.Name == "read").ProtocolTool.Annotations?.ReadOnlyHint);
        Assert.Contains("version", client.ServerInstructions ?? "", StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadWrite_VersionDiscipline_CreateUpdateAndConflictWithCurrentValue()
    {
        await using var host = await ServerHost.StartAsync();
        await using var client = await ConnectAsync(host, agent: "planner");

        var absent = await CallAsync(client, "read", new() { ["ns"] = "t", ["key"] = "plan" });
        Assert.False(absent.GetProperty("found").GetBoolean());
        Assert.Equal(0, absent.GetProperty("version").GetInt64());

        var created = await CallAsync(client, "write", new() { ["ns"] = "t", ["key"] = "plan", ["value"] = J("""{"step":1}"""), ["expectedVersion"] = 0 });
        Assert.True(created.GetProperty("ok").GetBoolean());
        Assert.Equal(1, created.GetProperty("version").GetInt64());

        var read = await CallAsync(client, "read", new() { ["ns"] = "t", ["key"] = "plan" });
        Assert.Equal(1, read.GetProperty("version").GetInt64());
        Assert.Equal(1, read.GetProperty("value").GetProperty("step").GetInt32());
        Assert.Equal("planner", read.GetProperty("writer").GetString());

        // Another agent writes in between.
        await host.Store.PutAsync("t", "plan", J("""{"step":2,"by":"other"}"""), new WriteOptions { Expect = Expect.Version(1) }, Ct);

        var conflict = await CallAsync(client, "write", new() { ["ns"] = "t", ["key"] = "plan", ["value"] = J("""{"step":99}"""), ["expectedVersion"] = 1 });
        Assert.False(conflict.GetProperty("ok").GetBoolean());
        Assert.Equal("versionMismatch", conflict.GetProperty("conflict").GetString());
        Assert.Equal(2, conflict.GetProperty("currentVersion").GetInt64());
        Assert.Equal("other", conflict.GetProperty("currentValue").GetProperty("by").GetString());
        Assert.Contains("expectedVersion=2", conflict.GetProperty("hint").GetString(), StringComparison.Ordinal);

        var retried = await CallAsync(client, "write", new() { ["ns"] = "t", ["key"] = "plan", ["value"] = J("""{"step":3}"""), ["expectedVersion"] = 2 });
        Assert.Equal(3, retried.GetProperty("version").GetInt64());
    }

    [Fact]
    public async Task Write_CreateOverExisting_ReturnsConflictNotOverwrite()
    {
        await using var host = await ServerHost.StartAsync();
        await host.Store.PutAsync("t", "k", J("1"), null, Ct);
        await using var client = await ConnectAsync(host);
        var r = await CallAsync(client, "write", new() { ["ns"] = "t", ["key"] = "k", ["value"] = 2, ["expectedVersion"] = 0 });
        Assert.Equal("versionMismatch", r.GetProperty("conflict").GetString());
        Assert.Equal(1, r.GetProperty("currentVersion").GetInt64());
        Assert.Equal(1, (await host.Store.GetAsync("t", "k", null, Ct))!.Value.GetInt32());
    }

    [Theory]
    [InlineData("missing")]
    [InlineData("negative")]
    [InlineData("string")]
    [InlineData("badFence")]
    public async Task Write_BadArguments_AreToolErrorsAndStateIsIntact(string variant)
    {
        await using var host = await ServerHost.StartAsync();
        await host.Store.PutAsync("t", "k", J("1"), null, Ct);
        await using var client = await ConnectAsync(host);
        var args = new Dictionary<string, object?> { ["ns"] = "t", ["key"] = "k", ["value"] = 2 };
        switch (variant)
        {
            case "negative": args["expectedVersion"] = -4; break;
            case "string": args["expectedVersion"] = "the latest one"; break;
            case "badFence": args["expectedVersion"] = 1; args["fence"] = "no-token"; break;
        }
        var message = await CallExpectingErrorAsync(client, "write", args);
        Assert.NotEqual("", message);
        if (variant == "missing") Assert.Contains("expectedVersion is required", message, StringComparison.Ordinal);
        if (variant == "badFence") Assert.Contains("LOCK:TOKEN", message, StringComparison.Ordinal);
        if (variant == "string") Assert.Contains("'expectedVersion' must be integer, got the string", message, StringComparison.Ordinal);
        var record = await host.Store.GetAsync("t", "k", null, Ct);
        Assert.Equal(1, record!.Version);
        Assert.Equal(1, record.Value.GetInt32());
    }

    [Fact]
    public async Task Patch_AndIncrement_ApplyAtomically_FailedTestIsConflict_GarbageIsError()
    {
        await using var host = await ServerHost.StartAsync();
        await using var client = await ConnectAsync(host);
        var patched = await CallAsync(client, "patch", new() { ["ns"] = "t", ["key"] = "doc", ["operations"] = J("""[{"op":"add","path":"/status","value":"open"}]""") });
        Assert.True(patched.GetProperty("ok").GetBoolean());
        Assert.Equal("open", patched.GetProperty("value").GetProperty("status").GetString());

        var failedTest = await CallAsync(client, "patch", new() { ["ns"] = "t", ["key"] = "doc", ["operations"] = J("""[{"op":"test","path":"/status","value":"closed"}]""") });
        Assert.Equal("testFailed", failedTest.GetProperty("conflict").GetString());
        Assert.Equal("open", failedTest.GetProperty("currentValue").GetProperty("status").GetString());

        Assert.Contains("JSON array", await CallExpectingErrorAsync(client, "patch", new() { ["ns"] = "t", ["key"] = "doc", ["operations"] = "{not json" }), StringComparison.Ordinal);
        Assert.Contains("not a valid patch", await CallExpectingErrorAsync(client, "patch", new() { ["ns"] = "t", ["key"] = "doc", ["operations"] = J("""[{"op":"explode"}]""") }), StringComparison.Ordinal);

        for (var i = 0; i < 3; i++) await CallAsync(client, "increment", new() { ["ns"] = "t", ["key"] = "doc", ["path"] = "/count", ["by"] = 2 });
        // A retried increment with the same operationId counts once.
        for (var i = 0; i < 2; i++) await CallAsync(client, "increment", new() { ["ns"] = "t", ["key"] = "doc", ["path"] = "/count", ["by"] = 10, ["operationId"] = "op-1" });
        var doc = await host.Store.GetAsync("t", "doc", null, Ct);
        Assert.Equal(16, doc!.Value.GetProperty("count").GetDouble());
        Assert.Equal("open", doc.Value.GetProperty("status").GetString());
    }

    [Fact]
    public async Task LockUnlock_FenceFromLockGuardsWrites()
    {
        await using var host = await ServerHost.StartAsync();
        await using var alice = await ConnectAsync(host, agent: "alice");
        await using var bob = await ConnectAsync(host, agent: "bob");
        var lease = await CallAsync(alice, "lock", new() { ["ns"] = "t", ["name"] = "doc" });
        Assert.True(lease.GetProperty("acquired").GetBoolean());
        var fence = lease.GetProperty("fence").GetString();
        Assert.Equal("doc:1", fence);

        var busy = await CallAsync(bob, "lock", new() { ["ns"] = "t", ["name"] = "doc" });
        Assert.False(busy.GetProperty("acquired").GetBoolean());
        Assert.Equal(["alice"], busy.GetProperty("holders").EnumerateArray().Select(h => h.GetString()));

        var write = await CallAsync(alice, "write", new() { ["ns"] = "t", ["key"] = "doc", ["value"] = 1, ["expectedVersion"] = 0, ["fence"] = fence });
        Assert.True(write.GetProperty("ok").GetBoolean());
        var released = await CallAsync(alice, "unlock", new() { ["ns"] = "t", ["name"] = "doc", ["leaseId"] = lease.GetProperty("leaseId").GetString() });
        Assert.True(released.GetProperty("released").GetBoolean());

        var bobLease = await CallAsync(bob, "lock", new() { ["ns"] = "t", ["name"] = "doc" });
        Assert.Equal(2, bobLease.GetProperty("token").GetInt64());
        var late = await CallAsync(alice, "write", new() { ["ns"] = "t", ["key"] = "doc", ["value"] = 2, ["expectedVersion"] = 1, ["fence"] = fence });
        Assert.Equal("staleFence", late.GetProperty("conflict").GetString());
    }

    [Fact]
    public async Task Auth_NoKeyIs401_OtherNamespaceIsToolErrorAndTouchesNothing()
    {
        await using var host = await ServerHost.StartWithAuthAsync();
        await host.Store.PutAsync("a", "secret", J("""{"pin":1234}"""), null, Ct);
        using (var anonymous = host.ClientWithKey(null))
        {
            using var r = await anonymous.PostAsync("/mcp", Json("""{"jsonrpc":"2.0","id":1,"method":"tools/list"}"""), Ct);
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        }
        await using var b = await ConnectAsync(host, ServerHost.WriterB);
        var readError = await CallExpectingErrorAsync(b, "read", new() { ["ns"] = "a", ["key"] = "secret" });
        Assert.Contains("Forbidden", readError, StringComparison.Ordinal);
        Assert.DoesNotContain("1234", readError, StringComparison.Ordinal);
        var missingError = await CallExpectingErrorAsync(b, "read", new() { ["ns"] = "a", ["key"] = "missing" });
        Assert.Equal(readError, missingError);
        await CallExpectingErrorAsync(b, "write", new() { ["ns"] = "a", ["key"] = "secret", ["value"] = 0, ["expectedVersion"] = 1 });
        await CallExpectingErrorAsync(b, "lock", new() { ["ns"] = "a", ["name"] = "x" });

        await using var reader = await ConnectAsync(host, ServerHost.ReaderA);
        Assert.Equal(1234, (await CallAsync(reader, "read", new() { ["ns"] = "a", ["key"] = "secret" })).GetProperty("value").GetProperty("pin").GetInt32());
        await CallExpectingErrorAsync(reader, "increment", new() { ["ns"] = "a", ["key"] = "secret", ["path"] = "/pin" });
        await using var writer = await ConnectAsync(host, ServerHost.WriterA);
        await CallExpectingErrorAsync(writer, "write", new() { ["ns"] = "a", ["key"] = "_sys/locks/x", ["value"] = 0, ["expectedVersion"] = 0 });

        var secret = await host.Store.GetAsync("a", "secret", null, Ct);
        Assert.Equal(1, secret!.Version);
        Assert.Null(await host.Store.GetAsync("a", "_sys/locks/x", null, Ct));
    }

    [Fact]
    public async Task StoreFault_IsToolErrorWithCode()
    {
        await using var host = await ServerHost.StartAsync();
        await using var client = await ConnectAsync(host);
        var message = await CallExpectingErrorAsync(client, "read", new() { ["ns"] = "bad ns!", ["key"] = "k" });
        Assert.Contains("invalid-key", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Queue_EnqueueLeaseAck_DedupAndStaleReceipt()
    {
        await using var host = await ServerHost.StartAsync();
        await using var producer = await ConnectAsync(host, agent: "producer");
        await using var worker = await ConnectAsync(host, agent: "worker");
        var first = await CallAsync(producer, "enqueue", new() { ["ns"] = "t", ["queue"] = "reviews", ["payload"] = J("""{"doc":7}"""), ["dedupId"] = "doc-7" });
        Assert.True(first.GetProperty("enqueued").GetBoolean());
        var again = await CallAsync(producer, "enqueue", new() { ["ns"] = "t", ["queue"] = "reviews", ["payload"] = J("""{"doc":7}"""), ["dedupId"] = "doc-7" });
        Assert.False(again.GetProperty("enqueued").GetBoolean());
        Assert.Equal(first.GetProperty("taskId").GetString(), again.GetProperty("taskId").GetString());

        var lease = await CallAsync(worker, "lease", new() { ["ns"] = "t", ["queue"] = "reviews", ["visibilitySeconds"] = 30 });
        Assert.True(lease.GetProperty("leased").GetBoolean());
        Assert.Equal(7, lease.GetProperty("payload").GetProperty("doc").GetInt32());
        var empty = await CallAsync(worker, "lease", new() { ["ns"] = "t", ["queue"] = "reviews" });
        Assert.False(empty.GetProperty("leased").GetBoolean());

        var stale = await CallAsync(worker, "ack", new() { ["ns"] = "t", ["queue"] = "reviews", ["taskId"] = lease.GetProperty("taskId").GetString(), ["receipt"] = "forged" });
        Assert.False(stale.GetProperty("acked").GetBoolean());
        Assert.Equal("staleReceipt", stale.GetProperty("status").GetString());
        var acked = await CallAsync(worker, "ack", new() { ["ns"] = "t", ["queue"] = "reviews", ["taskId"] = lease.GetProperty("taskId").GetString(), ["receipt"] = lease.GetProperty("receipt").GetString() });
        Assert.True(acked.GetProperty("acked").GetBoolean());
        Assert.Contains("'payload' is required", await CallExpectingErrorAsync(worker, "enqueue", new() { ["ns"] = "t", ["queue"] = "reviews" }), StringComparison.Ordinal);
        Assert.Contains("unknown argument 'queueName'", await CallExpectingErrorAsync(worker, "lease", new() { ["ns"] = "t", ["queue"] = "reviews", ["queueName"] = "reviews" }), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stream_AppendWithExpectedVersion_ReadEventsInOrder()
    {
        await using var host = await ServerHost.StartAsync();
        await using var client = await ConnectAsync(host, agent: "orders");
        var created = await CallAsync(client, "append", new() { ["ns"] = "t", ["stream"] = "order-42", ["expectedVersion"] = 0,
            ["events"] = J("""[{"type":"Placed","data":{"total":10}},{"type":"Paid","data":{"amount":10}}]""") });
        Assert.True(created.GetProperty("appended").GetBoolean());
        Assert.Equal(2, created.GetProperty("version").GetInt64());

        var stale = await CallAsync(client, "append", new() { ["ns"] = "t", ["stream"] = "order-42", ["expectedVersion"] = 1, ["events"] = J("""[{"type":"Cancelled"}]""") });
        Assert.False(stale.GetProperty("appended").GetBoolean());
        Assert.Equal(2, stale.GetProperty("currentVersion").GetInt64());

        await CallAsync(client, "append", new() { ["ns"] = "t", ["stream"] = "order-42", ["expectedVersion"] = 2, ["events"] = J("""[{"type":"Shipped","data":{}}]""") });
        var read = await CallAsync(client, "read_events", new() { ["ns"] = "t", ["stream"] = "order-42", ["fromVersion"] = 2 });
        Assert.Equal(["Paid", "Shipped"], read.GetProperty("events").EnumerateArray().Select(e => e.GetProperty("type").GetString()));
        Assert.Equal(3, read.GetProperty("streamVersion").GetInt64());
        Assert.Equal("orders", read.GetProperty("events")[0].GetProperty("writer").GetString());
        Assert.Contains("type", await CallExpectingErrorAsync(client, "append", new() { ["ns"] = "t", ["stream"] = "s", ["events"] = J("""[{"data":1}]""") }), StringComparison.Ordinal);
    }
}
