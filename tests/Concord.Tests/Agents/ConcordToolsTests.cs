using System.Text.Json;
using Concord.Agents;
using Concord.Agents.Chat;
using Concord.Agents.Tools;
using Concord.Engine;
using Concord.Lab.Time;
using Microsoft.Extensions.AI;

namespace Concord.Tests.Agents;

public sealed class ConcordToolsTests : IAsyncDisposable
{
    private const string Ns = "tools";
    private readonly ConcordEngine _store = ConcordEngine.CreateInMemory(new ConcordEngineOptions { StrictMode = true });
    private readonly Dictionary<string, AIFunction> _tools;

    public ConcordToolsTests()
    {
        _tools = ConcordTools.Create(new ConcordSession(_store, Ns, "fees")).ToDictionary(t => t.Name);
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask DisposeAsync() => await _store.DisposeAsync();

    private async Task<JsonElement> CallAsync(string tool, object? arguments)
    {
        var args = new AIFunctionArguments();
        if (arguments is not null)
        {
            // As a model sends them: JSON values.
            foreach (var p in JsonSerializer.SerializeToElement(arguments, JsonDefaults.Web).EnumerateObject()) args[p.Name] = p.Value.Clone();
        }
        var result = await _tools["concord_" + tool].InvokeAsync(args, Ct);
        return Assert.IsType<JsonElement>(result);
    }

    private async Task<ConcordRecord?> GetAsync(string key) => await _store.GetAsync(Ns, key, cancellationToken: Ct);

    [Fact]
    public void Create_AllKinds_EveryToolHasASchemaWithRequiredArguments()
    {
        Assert.Equal(
            ["concord_read", "concord_list", "concord_write", "concord_patch", "concord_increment", "concord_lock", "concord_unlock",
             "concord_enqueue", "concord_lease", "concord_ack", "concord_append_event", "concord_read_events"],
            _tools.Keys);
        var write = _tools["concord_write"].JsonSchema;
        Assert.Equal(["key", "value", "expectedVersion"], write.GetProperty("required").EnumerateArray().Select(e => e.GetString()));
        Assert.All(_tools.Values, t => Assert.False(string.IsNullOrWhiteSpace(t.Description)));
    }

    [Fact]
    public async Task ReadThenWrite_WithVersionRead_Applied()
    {
        var absent = await CallAsync("read", new { key = "accounts/a" });
        Assert.True(absent.GetProperty("ok").GetBoolean());
        Assert.False(absent.GetProperty("found").GetBoolean());
        Assert.Equal(0, absent.GetProperty("version").GetInt64());

        var created = await CallAsync("write", new { key = "accounts/a", value = new { status = "active" }, expectedVersion = 0 });
        Assert.True(created.GetProperty("ok").GetBoolean());
        Assert.Equal(1, created.GetProperty("version").GetInt64());

        var read = await CallAsync("read", new { key = "accounts/a" });
        Assert.Equal(1, read.GetProperty("version").GetInt64());
        Assert.Equal("active", read.GetProperty("value").GetProperty("status").GetString());
        Assert.Equal("fees", read.GetProperty("writer").GetString());

        var updated = await CallAsync("write", new { key = "accounts/a", value = new { status = "active", fees = "unpaid" }, expectedVersion = 1 });
        Assert.Equal(2, updated.GetProperty("version").GetInt64());
    }

    [Fact]
    public async Task Write_StaleVersion_ConflictResultWithCurrentValueAndHint_NothingWritten()
    {
        await CallAsync("write", new { key = "accounts/a", value = new { status = "active" }, expectedVersion = 0 });
        // Another agent changes the record after "our" read of v1.
        await _store.PutAsync(Ns, "accounts/a", JsonSerializer.SerializeToElement(new { status = "restricted" }), new WriteOptions { Expect = Expect.Version(1), Agent = "status" }, Ct);

        var result = await CallAsync("write", new { key = "accounts/a", value = new { status = "active", fees = "unpaid" }, expectedVersion = 1 });

        Assert.False(result.GetProperty("ok").GetBoolean());
        Assert.Equal("version_mismatch", result.GetProperty("conflict").GetString());
        Assert.Equal(2, result.GetProperty("currentVersion").GetInt64());
        Assert.Equal("restricted", result.GetProperty("currentValue").GetProperty("status").GetString());
        Assert.Equal("status", result.GetProperty("currentWriter").GetString());
        Assert.Contains("expectedVersion 2", result.GetProperty("hint").GetString());
        var record = await GetAsync("accounts/a");
        Assert.Equal(2, record!.Version);
        Assert.False(record.Value.TryGetProperty("fees", out _));
    }

    [Theory]
    [InlineData("""{"key":"accounts/a","value":{"x":1}}""", "'expectedVersion' is required")]
    [InlineData("""{"key":"accounts/a","value":{"x":1},"expectedVersion":"abc"}""", "'expectedVersion' must be a whole number")]
    [InlineData("""{"key":"accounts/a","value":{"x":1},"expectedVersion":-1}""", "'expectedVersion' must be between 0")]
    [InlineData("""{"key":"accounts/a","value":{"x":1},"expectedVersion":1.5}""", "'expectedVersion' must be a whole number")]
    [InlineData("""{"key":"accounts/a","value":{"x":1},"expectedVersion":{"v":1}}""", "'expectedVersion' must be a whole number")]
    [InlineData("""{"key":"accounts/a","value":{"x":1},"expectedVersion":true}""", "'expectedVersion' must be a whole number")]
    [InlineData("""{"value":{"x":1},"expectedVersion":1}""", "'key' is required")]
    [InlineData("""{"key":42,"value":{"x":1},"expectedVersion":1}""", "'key' must be a string")]
    [InlineData("""{"key":"accounts/a","expectedVersion":1}""", "'value' is required")]
    [InlineData("""{"key":"_sys/queues/x","value":{"x":1},"expectedVersion":1}""", "reserved")]
    [InlineData("""{"key":"accounts/a","value":{"x":1},"expectedVersion":1,"lock":"nope"}""", "you do not hold lock 'nope'")]
    public async Task Write_MissingOrMalformedArguments_ClearErrorAndStateIntact(string json, string expected)
    {
        await CallAsync("write", new { key = "accounts/a", value = new { status = "active" }, expectedVersion = 0 });
        var args = new AIFunctionArguments();
        foreach (var p in JsonDocument.Parse(json).RootElement.EnumerateObject()) args[p.Name] = p.Value.Clone();

        var result = Assert.IsType<JsonElement>(await _tools["concord_write"].InvokeAsync(args, Ct));

        Assert.False(result.GetProperty("ok").GetBoolean());
        Assert.Equal("invalid_arguments", result.GetProperty("error").GetString());
        Assert.Contains(expected, result.GetProperty("message").GetString());
        Assert.False(string.IsNullOrWhiteSpace(result.GetProperty("hint").GetString()));
        var record = await GetAsync("accounts/a");
        Assert.Equal(1, record!.Version);
        Assert.Equal("""{"status":"active"}""", record.Value.GetRawText());
    }

    [Fact]
    public async Task Write_NumericStringVersion_Accepted()
    {
        await CallAsync("write", new { key = "k", value = 1, expectedVersion = 0 });
        var result = await CallAsync("write", new { key = "k", value = 2, expectedVersion = "1" });
        Assert.True(result.GetProperty("ok").GetBoolean());
    }

    [Fact]
    public async Task Patch_Garbage_ClearErrorsNoChange()
    {
        await CallAsync("write", new { key = "memory", value = new { findings = Array.Empty<string>() }, expectedVersion = 0 });

        var notArray = await CallAsync("patch", new { key = "memory", operations = "append a finding please" });
        var badOp = await CallAsync("patch", new { key = "memory", operations = new[] { new { op = "explode", path = "/findings" } } });
        var empty = await CallAsync("patch", new { key = "memory", operations = Array.Empty<object>() });

        Assert.Equal("invalid_arguments", notArray.GetProperty("error").GetString());
        Assert.Equal("invalid-patch", badOp.GetProperty("error").GetString());
        Assert.Equal("invalid_arguments", empty.GetProperty("error").GetString());
        Assert.Equal(1, (await GetAsync("memory"))!.Version);
    }

    [Fact]
    public async Task PatchAndIncrement_Applied_AndStalePatchVersionIsAConflict()
    {
        await CallAsync("write", new { key = "memory", value = new { findings = Array.Empty<string>(), count = 0 }, expectedVersion = 0 });

        var appended = await CallAsync("patch", new { key = "memory", operations = new[] { new { op = "append", path = "/findings", value = "a" } } });
        var incremented = await CallAsync("increment", new { key = "memory", path = "/count", by = 2 });
        var stale = await CallAsync("patch", new { key = "memory", operations = new[] { new { op = "append", path = "/findings", value = "b" } }, expectedVersion = 1 });

        Assert.Equal(2, appended.GetProperty("version").GetInt64());
        Assert.Equal(3, incremented.GetProperty("version").GetInt64());
        Assert.Equal("version_mismatch", stale.GetProperty("conflict").GetString());
        var record = await GetAsync("memory");
        Assert.Equal("""{"findings":["a"],"count":2}""", record!.Value.GetRawText());
    }

    [Fact]
    public async Task LockThenFencedWrite_Applied_UnlockReleases_SecondAgentRefusedWhileHeld()
    {
        var other = ConcordTools.Create(new ConcordSession(_store, Ns, "status")).ToDictionary(t => t.Name);
        var locked = await CallAsync("lock", new { name = "accounts/a", ttlSeconds = 30 });
        Assert.True(locked.GetProperty("acquired").GetBoolean());

        var theirs = Assert.IsType<JsonElement>(await other["concord_lock"].InvokeAsync(new AIFunctionArguments { ["name"] = "accounts/a" }, Ct));
        Assert.Equal("lock_held", theirs.GetProperty("conflict").GetString());
        Assert.Contains("fees", theirs.GetProperty("holders").EnumerateArray().Select(h => h.GetString()));

        var write = await CallAsync("write", new { key = "accounts/a", value = new { x = 1 }, expectedVersion = 0, @lock = "accounts/a" });
        Assert.True(write.GetProperty("ok").GetBoolean());
        var unlocked = await CallAsync("unlock", new { name = "accounts/a" });
        Assert.True(unlocked.GetProperty("released").GetBoolean());
        var again = await CallAsync("unlock", new { name = "accounts/a" });
        Assert.Equal("not_held", again.GetProperty("error").GetString());
    }

    [Fact]
    public async Task EnqueueLeaseAck_RoundTrip_AndAckOfUnknownTaskIsAnError()
    {
        var enqueued = await CallAsync("enqueue", new { queue = "triage", payload = new { ticket = "T-1" }, dedupId = "T-1" });
        var duplicate = await CallAsync("enqueue", new { queue = "triage", payload = new { ticket = "T-1" }, dedupId = "T-1" });
        var leased = await CallAsync("lease", new { queue = "triage" });
        var empty = await CallAsync("lease", new { queue = "triage" });
        var bogus = await CallAsync("ack", new { queue = "triage", taskId = "nope" });
        var acked = await CallAsync("ack", new { queue = "triage", taskId = leased.GetProperty("taskId").GetString() });

        Assert.True(enqueued.GetProperty("enqueued").GetBoolean());
        Assert.False(duplicate.GetProperty("enqueued").GetBoolean());
        Assert.Equal("T-1", leased.GetProperty("payload").GetProperty("ticket").GetString());
        Assert.False(empty.GetProperty("leased").GetBoolean());
        Assert.Equal("not_leased", bogus.GetProperty("error").GetString());
        Assert.True(acked.GetProperty("acked").GetBoolean());
        Assert.Equal("invalid-request", (await CallAsync("enqueue", new { queue = "bad name!", payload = 1 })).GetProperty("error").GetString());
    }

    [Fact]
    public async Task AppendAndReadEvents_InOrder_StaleExpectedVersionIsAConflict()
    {
        await CallAsync("append_event", new { stream = "findings", type = "finding", data = new { text = "a" } });
        await CallAsync("append_event", new { stream = "findings", type = "finding", data = new { text = "b" }, expectedVersion = 1 });
        var stale = await CallAsync("append_event", new { stream = "findings", type = "finding", data = new { text = "c" }, expectedVersion = 1 });
        var read = await CallAsync("read_events", new { stream = "findings" });

        Assert.Equal("wrong_expected_version", stale.GetProperty("conflict").GetString());
        Assert.Equal(2, stale.GetProperty("currentVersion").GetInt64());
        Assert.Equal(["a", "b"], read.GetProperty("events").EnumerateArray().Select(e => e.GetProperty("data").GetProperty("text").GetString()));
        Assert.Equal("fees", read.GetProperty("events")[0].GetProperty("writer").GetString());
    }

    [Fact]
    public async Task KeyPrefixOption_KeysOutsideRefused()
    {
        var scoped = ConcordTools.Create(new ConcordSession(_store, Ns, "r"), new ConcordToolsOptions { KeyPrefix = "research/", Kinds = ConcordToolKinds.State })
            .ToDictionary(t => t.Name);
        Assert.Equal(5, scoped.Count);
        var result = Assert.IsType<JsonElement>(await scoped["concord_read"].InvokeAsync(new AIFunctionArguments { ["key"] = "accounts/a" }, Ct));
        Assert.Contains("must start with \"research/\"", result.GetProperty("message").GetString());
    }

    [Fact]
    public async Task ThroughFunctionInvokingClient_ModelSendsGarbage_GetsErrorThenRecovers()
    {
        // A "model" that first calls write with a malformed version, then reads and writes properly.
        var script = SimulatedScript.Sequence(
            _ => SimulatedStep.Call("concord_write", new { key = "accounts/a", value = new { s = 1 }, expectedVersion = "latest" }),
            _ => SimulatedStep.Call("concord_read", new { key = "accounts/a" }),
            t => SimulatedStep.Call("concord_write", new { key = "accounts/a", value = new { s = 1 }, expectedVersion = t.LastToolResult!.Value.GetProperty("version").GetInt64() }),
            t => SimulatedStep.Reply(t.LastToolResult!.Value.GetProperty("ok").GetBoolean() ? "written" : "failed"));
        var time = new VirtualTimeProvider();
        var client = new SimulatedChatClient(script, new SimulatedChatClientOptions { TimeProvider = time, Seed = 1 })
            .WithConcordTools(ConcordTools.Create(new ConcordSession(_store, Ns, "model")));
        ChatResponse? response = null;

        await time.RunAsync([async ct => response = await client.GetResponseAsync("set s=1 on accounts/a", cancellationToken: ct)], Ct);

        Assert.Equal("written", response!.Text);
        var results = response.Messages.SelectMany(m => m.Contents).OfType<FunctionResultContent>().Select(r => (JsonElement)r.Result!).ToList();
        Assert.Equal("invalid_arguments", results[0].GetProperty("error").GetString());
        Assert.Contains("'expectedVersion' must be a whole number", results[0].GetProperty("message").GetString());
        Assert.Equal(1, (await GetAsync("accounts/a"))!.Version);
    }
}
