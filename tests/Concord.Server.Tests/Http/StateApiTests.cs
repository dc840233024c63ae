using System.Net;
using Concord.Engine;
using static Concord.Server.Tests.TestHttp;

namespace Concord.Server.Tests.Http;

public sealed class StateApiTests
{
    private const string Url = "/v1/ns/t/state/acct/1";

    [Fact]
    public async Task Put_NewKey_Returns201WithETagAndRecord()
    {
        await using var host = await ServerHost.StartAsync();
        using var r = await host.Client.SendAsync(HttpMethod.Put, Url, """{"fees":1}""", ("Concord-Agent", "fees-agent"));
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        Assert.Equal("\"1\"", r.Headers.ETag!.Tag);
        Assert.Equal("1", r.Header("Concord-Revision"));
        var body = await r.JsonAsync();
        Assert.Equal("acct/1", body.GetProperty("key").GetString());
        Assert.Equal(1, body.GetProperty("version").GetInt64());
        Assert.Equal("fees-agent", body.GetProperty("writer").GetString());
        Assert.Equal(1, body.GetProperty("value").GetProperty("fees").GetInt32());
    }

    [Fact]
    public async Task Get_Existing_ReturnsRawValueWithVersionHeaders()
    {
        await using var host = await ServerHost.StartAsync();
        (await host.Client.SendAsync(HttpMethod.Put, Url, """{"fees":1}""")).Dispose();
        using var r = await host.Client.SendAsync(HttpMethod.Get, Url);
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal("\"1\"", r.Headers.ETag!.Tag);
        Assert.Equal("1", r.Header("Concord-Revision"));
        Assert.Equal("1", r.Header("Concord-Mod-Revision"));
        Assert.Equal("""{"fees":1}""", await r.Content.ReadAsStringAsync(Ct));
    }

    [Fact]
    public async Task Get_WithEnvelopeAccept_ReturnsRecord()
    {
        await using var host = await ServerHost.StartAsync();
        (await host.Client.SendAsync(HttpMethod.Put, Url, """{"fees":1}""")).Dispose();
        using var r = await host.Client.SendAsync(HttpMethod.Get, Url, null, ("Accept", "application/vnd.concord.record+json"));
        var body = await r.JsonAsync();
        Assert.Equal(1, body.GetProperty("version").GetInt64());
        Assert.Equal(1, body.GetProperty("createRevision").GetInt64());
    }

    [Fact]
    public async Task Get_Absent_Returns404Problem()
    {
        await using var host = await ServerHost.StartAsync();
        using var r = await host.Client.SendAsync(HttpMethod.Get, Url);
        await r.AssertProblemAsync(404, "key-not-found");
    }

    [Fact]
    public async Task Get_IfNoneMatchCurrentVersion_Returns304()
    {
        await using var host = await ServerHost.StartAsync();
        (await host.Client.SendAsync(HttpMethod.Put, Url, """{"fees":1}""")).Dispose();
        using var same = await host.Client.SendAsync(HttpMethod.Get, Url, null, ("If-None-Match", "\"1\""));
        Assert.Equal(HttpStatusCode.NotModified, same.StatusCode);
        using var older = await host.Client.SendAsync(HttpMethod.Get, Url, null, ("If-None-Match", "\"0\""));
        Assert.Equal(HttpStatusCode.OK, older.StatusCode);
    }

    [Fact]
    public async Task Get_AtPastRevision_ReturnsThatVersion()
    {
        await using var host = await ServerHost.StartAsync();
        (await host.Client.SendAsync(HttpMethod.Put, Url, """{"fees":1}""")).Dispose();
        (await host.Client.SendAsync(HttpMethod.Put, Url, """{"fees":2}""", ("If-Match", "\"1\""))).Dispose();
        using var r = await host.Client.SendAsync(HttpMethod.Get, Url + "?revision=1");
        Assert.Equal("""{"fees":1}""", await r.Content.ReadAsStringAsync(Ct));
        Assert.Equal("1", r.Header("Concord-Revision"));
    }

    [Fact]
    public async Task Get_FutureRevision_Returns400UnknownRevision()
    {
        await using var host = await ServerHost.StartAsync();
        using var r = await host.Client.SendAsync(HttpMethod.Get, Url + "?revision=99");
        await r.AssertProblemAsync(400, "unknown-revision");
    }

    [Fact]
    public async Task Get_CompactedRevision_Returns410()
    {
        await using var host = await ServerHost.StartAsync(engine: new ConcordEngineOptions { StrictMode = true, RetainedRevisions = 2 });
        (await host.Client.SendAsync(HttpMethod.Put, Url, """{"n":0}""")).Dispose();
        for (var v = 1; v <= 5; v++) (await host.Client.SendAsync(HttpMethod.Put, Url, $$"""{"n":{{v}}}""", ("If-Match", $"\"{v}\""))).Dispose();
        using var r = await host.Client.SendAsync(HttpMethod.Get, Url + "?revision=1");
        var problem = await r.AssertProblemAsync(410, "revision-compacted");
        Assert.Equal(1, problem.GetProperty("requested").GetInt64());
    }

    [Fact]
    public async Task Put_IfMatchCurrent_Returns200AndBumpsVersion()
    {
        await using var host = await ServerHost.StartAsync();
        (await host.Client.SendAsync(HttpMethod.Put, Url, """{"fees":1}""")).Dispose();
        using var r = await host.Client.SendAsync(HttpMethod.Put, Url, """{"fees":2}""", ("If-Match", "\"1\""));
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal(2, r.ETagVersion());
    }

    [Fact]
    public async Task Put_IfMatchStale_Returns412WithCurrentRecord()
    {
        await using var host = await ServerHost.StartAsync();
        (await host.Client.SendAsync(HttpMethod.Put, Url, """{"fees":1}""", ("Concord-Agent", "first"))).Dispose();
        (await host.Client.SendAsync(HttpMethod.Put, Url, """{"fees":2}""", ("If-Match", "\"1\""), ("Concord-Agent", "second"))).Dispose();
        using var r = await host.Client.SendAsync(HttpMethod.Put, Url, """{"fees":99}""", ("If-Match", "\"1\""));
        var problem = await r.AssertProblemAsync(412, "version-mismatch");
        Assert.Equal("versionMismatch", problem.GetProperty("conflict").GetString());
        var current = problem.GetProperty("current");
        Assert.Equal(2, current.GetProperty("version").GetInt64());
        Assert.Equal(2, current.GetProperty("value").GetProperty("fees").GetInt32());
        Assert.Equal("second", current.GetProperty("writer").GetString());
        using var get = await host.Client.SendAsync(HttpMethod.Get, Url);
        Assert.Equal("""{"fees":2}""", await get.Content.ReadAsStringAsync(Ct));
    }

    [Fact]
    public async Task Put_IfNoneMatchStarOnExisting_Returns412AlreadyExists()
    {
        await using var host = await ServerHost.StartAsync();
        using var first = await host.Client.SendAsync(HttpMethod.Put, Url, """{"fees":1}""", ("If-None-Match", "*"));
        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        using var second = await host.Client.SendAsync(HttpMethod.Put, Url, """{"fees":2}""", ("If-None-Match", "*"));
        var problem = await second.AssertProblemAsync(412, "already-exists");
        Assert.Equal(1, problem.GetProperty("current").GetProperty("version").GetInt64());
    }

    [Fact]
    public async Task Put_IfMatchStarOnAbsent_Returns412NotFound()
    {
        await using var host = await ServerHost.StartAsync();
        using var r = await host.Client.SendAsync(HttpMethod.Put, Url, """{"fees":1}""", ("If-Match", "*"));
        await r.AssertProblemAsync(412, "not-found");
    }

    [Fact]
    public async Task Put_BlindOverwriteInStrictMode_Returns428AndKeepsValue()
    {
        await using var host = await ServerHost.StartAsync();
        (await host.Client.SendAsync(HttpMethod.Put, Url, """{"fees":1}""")).Dispose();
        using var r = await host.Client.SendAsync(HttpMethod.Put, Url, """{"fees":2}""");
        var problem = await r.AssertProblemAsync(428, "strict-blind-write");
        Assert.Equal(1, problem.GetProperty("current").GetProperty("version").GetInt64());
        using var get = await host.Client.SendAsync(HttpMethod.Get, Url);
        Assert.Equal("""{"fees":1}""", await get.Content.ReadAsStringAsync(Ct));
    }

    [Fact]
    public async Task Put_BlindOverwriteWithStrictOff_Returns200()
    {
        await using var host = await ServerHost.StartAsync(engine: new ConcordEngineOptions { StrictMode = false });
        (await host.Client.SendAsync(HttpMethod.Put, Url, """{"fees":1}""")).Dispose();
        using var r = await host.Client.SendAsync(HttpMethod.Put, Url, """{"fees":2}""");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal(2, r.ETagVersion());
    }

    [Theory]
    [InlineData("{\"fees\":")]
    [InlineData("not json")]
    [InlineData("{\"a\":1} trailing")]
    public async Task Put_MalformedJson_Returns400(string body)
    {
        await using var host = await ServerHost.StartAsync();
        using var r = await host.Client.SendAsync(HttpMethod.Put, Url, body);
        await r.AssertProblemAsync(400, "malformed-json");
        using var get = await host.Client.SendAsync(HttpMethod.Get, Url);
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
    }

    [Fact]
    public async Task Put_EmptyBody_Returns400()
    {
        await using var host = await ServerHost.StartAsync();
        using var r = await host.Client.SendAsync(HttpMethod.Put, Url, "");
        await r.AssertProblemAsync(400, "malformed-json");
    }

    [Theory]
    [InlineData("If-Match", "3")]
    [InlineData("If-Match", "\"abc\"")]
    [InlineData("If-Match", "\"1\", \"2\"")]
    [InlineData("If-None-Match", "\"1\"")]
    public async Task Put_MalformedPrecondition_Returns400(string header, string value)
    {
        await using var host = await ServerHost.StartAsync();
        using var r = await host.Client.SendAsync(HttpMethod.Put, Url, "{}", (header, value));
        // A bare number is accepted as a lenient form of "3"; everything else here is malformed.
        if (value == "3")
        {
            await r.AssertProblemAsync(412, "version-mismatch");
            return;
        }
        await r.AssertProblemAsync(400, "invalid-precondition");
    }

    [Fact]
    public async Task Put_BothIfMatchAndIfNoneMatch_Returns400()
    {
        await using var host = await ServerHost.StartAsync();
        using var r = await host.Client.SendAsync(HttpMethod.Put, Url, "{}", ("If-Match", "\"1\""), ("If-None-Match", "*"));
        await r.AssertProblemAsync(400, "invalid-precondition");
    }

    [Theory]
    [InlineData("Concord-Fence", "nolock", "invalid-fence")]
    [InlineData("Concord-Fence", "l:-1", "invalid-fence")]
    [InlineData("Concord-Ttl", "soon", "invalid-ttl")]
    [InlineData("Concord-Ttl", "-5", "invalid-ttl")]
    public async Task Put_MalformedConcordHeader_Returns400(string header, string value, string code)
    {
        await using var host = await ServerHost.StartAsync();
        using var r = await host.Client.SendAsync(HttpMethod.Put, Url, "{}", (header, value));
        await r.AssertProblemAsync(400, code);
    }

    [Fact]
    public async Task Put_BodyOverLimit_Returns413AndWritesNothing()
    {
        await using var host = await ServerHost.StartAsync(o => o.MaxRequestBodyBytes = 4096);
        var big = "{\"s\":\"" + new string('x', 5000) + "\"}";
        using var r = await host.Client.SendAsync(HttpMethod.Put, Url, big);
        await r.AssertProblemAsync(413, "body-too-large");
        using var get = await host.Client.SendAsync(HttpMethod.Get, Url);
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
    }

    [Fact]
    public async Task Put_ChunkedBodyOverLimit_Returns413()
    {
        await using var host = await ServerHost.StartAsync(o => o.MaxRequestBodyBytes = 4096);
        var big = "{\"s\":\"" + new string('x', 50_000) + "\"}";
        using var m = new HttpRequestMessage(HttpMethod.Put, Url) { Content = new StreamContent(new NoLengthStream(System.Text.Encoding.UTF8.GetBytes(big))) };
        using var r = await host.Client.SendAsync(m, Ct);
        await r.AssertProblemAsync(413, "body-too-large");
    }

    [Fact]
    public async Task Put_ValueOverValueLimit_Returns413ValueTooLarge()
    {
        await using var host = await ServerHost.StartAsync(engine: new ConcordEngineOptions { StrictMode = true, MaxValueBytes = 100 });
        using var r = await host.Client.SendAsync(HttpMethod.Put, Url, "{\"s\":\"" + new string('x', 200) + "\"}");
        var problem = await r.AssertProblemAsync(413, "value-too-large");
        Assert.Equal(100, problem.GetProperty("limit").GetInt64());
    }

    [Theory]
    [InlineData("/v1/ns/bad%20ns/state/k")]
    [InlineData("/v1/ns/t/state/a%01b")]
    public async Task Put_InvalidNamespaceOrKey_Returns400InvalidKey(string url)
    {
        await using var host = await ServerHost.StartAsync();
        using var r = await host.Client.SendAsync(HttpMethod.Put, url, "{}");
        await r.AssertProblemAsync(400, "invalid-key");
    }

    [Fact]
    public async Task Delete_Absent_Returns404()
    {
        await using var host = await ServerHost.StartAsync();
        using var r = await host.Client.SendAsync(HttpMethod.Delete, Url);
        await r.AssertProblemAsync(404, "key-not-found");
    }

    [Fact]
    public async Task Delete_BlindInStrictMode_Returns428_WithIfMatch_DeletesLeavingTombstoneVersion()
    {
        await using var host = await ServerHost.StartAsync();
        (await host.Client.SendAsync(HttpMethod.Put, Url, """{"fees":1}""")).Dispose();
        using (var blind = await host.Client.SendAsync(HttpMethod.Delete, Url)) await blind.AssertProblemAsync(428, "strict-blind-write");
        using var r = await host.Client.SendAsync(HttpMethod.Delete, Url, null, ("If-Match", "\"1\""));
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var body = await r.JsonAsync();
        Assert.True(body.GetProperty("deleted").GetBoolean());
        Assert.Equal(2, body.GetProperty("version").GetInt64());
        using var get = await host.Client.SendAsync(HttpMethod.Get, Url);
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
        // Re-creating after a delete continues the version sequence.
        using var again = await host.Client.SendAsync(HttpMethod.Put, Url, """{"fees":3}""", ("If-None-Match", "*"));
        Assert.Equal(3, again.ETagVersion());
    }

    [Fact]
    public async Task Patch_Increment_AppliesAtomicallyWithoutPrecondition()
    {
        await using var host = await ServerHost.StartAsync();
        var tasks = Enumerable.Range(0, 20).Select(_ => host.Client.SendAsync(HttpMethod.Patch, Url, """[{"op":"increment","path":"/n","value":1}]""")).ToList();
        foreach (var t in tasks)
        {
            using var r = await t;
            Assert.True(r.IsSuccessStatusCode, r.StatusCode.ToString());
        }
        using var get = await host.Client.SendAsync(HttpMethod.Get, Url);
        Assert.Equal("""{"n":20}""", await get.Content.ReadAsStringAsync(Ct));
        Assert.Equal(20, get.ETagVersion());
    }

    [Fact]
    public async Task Patch_FailedTest_Returns409WithCurrent()
    {
        await using var host = await ServerHost.StartAsync();
        (await host.Client.SendAsync(HttpMethod.Put, Url, """{"status":"open"}""")).Dispose();
        using var r = await host.Client.SendAsync(HttpMethod.Patch, Url, """[{"op":"test","path":"/status","value":"closed"},{"op":"replace","path":"/status","value":"x"}]""");
        var problem = await r.AssertProblemAsync(409, "test-failed");
        Assert.Equal("open", problem.GetProperty("current").GetProperty("value").GetProperty("status").GetString());
    }

    [Fact]
    public async Task Patch_UnknownOperation_Returns422InvalidPatch()
    {
        await using var host = await ServerHost.StartAsync();
        using var r = await host.Client.SendAsync(HttpMethod.Patch, Url, """[{"op":"frobnicate","path":"/a"}]""");
        await r.AssertProblemAsync(422, "invalid-patch");
    }

    [Fact]
    public async Task Patch_NotAnArray_Returns400()
    {
        await using var host = await ServerHost.StartAsync();
        using var r = await host.Client.SendAsync(HttpMethod.Patch, Url, """{"op":"add"}""");
        await r.AssertProblemAsync(400, "invalid-request");
    }

    [Fact]
    public async Task List_PagesInKeyOrderAtOneRevision()
    {
        await using var host = await ServerHost.StartAsync();
        for (var i = 0; i < 5; i++) (await host.Client.SendAsync(HttpMethod.Put, $"/v1/ns/t/state/items/{i}", $$"""{"i":{{i}}}""")).Dispose();
        (await host.Client.SendAsync(HttpMethod.Put, "/v1/ns/t/state/other", "{}")).Dispose();
        using var p1 = await host.Client.SendAsync(HttpMethod.Get, "/v1/ns/t/state?prefix=items/&limit=3");
        var page1 = await p1.JsonAsync();
        Assert.Equal(["items/0", "items/1", "items/2"], page1.GetProperty("records").EnumerateArray().Select(r => r.GetProperty("key").GetString()));
        var next = page1.GetProperty("nextAfter").GetString();
        var revision = page1.GetProperty("revision").GetInt64();
        (await host.Client.SendAsync(HttpMethod.Put, "/v1/ns/t/state/items/9", "{}")).Dispose();
        using var p2 = await host.Client.SendAsync(HttpMethod.Get, $"/v1/ns/t/state?prefix=items/&limit=3&after={next}&revision={revision}");
        var page2 = await p2.JsonAsync();
        Assert.Equal(["items/3", "items/4"], page2.GetProperty("records").EnumerateArray().Select(r => r.GetProperty("key").GetString()));
        Assert.False(page2.TryGetProperty("nextAfter", out _));
    }

    [Fact]
    public async Task List_BadLimit_Returns400()
    {
        await using var host = await ServerHost.StartAsync();
        using var r = await host.Client.SendAsync(HttpMethod.Get, "/v1/ns/t/state?limit=abc");
        await r.AssertProblemAsync(400, "invalid-request");
        using var r2 = await host.Client.SendAsync(HttpMethod.Get, "/v1/ns/t/state?limit=0");
        await r2.AssertProblemAsync(400, "invalid-request");
    }

    [Theory]
    [InlineData("spaces in key")]
    [InlineData("ünïcødé/ключ/鍵")]
    [InlineData("percent%2Fliteral")]
    [InlineData("q?and#hash+plus")]
    public async Task PutGet_UnusualKeys_RoundTripThroughEscaping(string key)
    {
        await using var host = await ServerHost.StartAsync();
        var url = "/v1/ns/t/state/" + string.Join('/', key.Split('/').Select(Uri.EscapeDataString));
        using var put = await host.Client.SendAsync(HttpMethod.Put, url, "{\"ok\":true}");
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        Assert.Equal(key, (await put.JsonAsync()).GetProperty("key").GetString());
        var stored = await host.Store.GetAsync("t", key, null, Ct);
        Assert.NotNull(stored);
    }

    [Fact]
    public async Task Put_NonAsciiAgent_IsDecodedAndEchoedEncoded()
    {
        await using var host = await ServerHost.StartAsync();
        using var put = await host.Client.SendAsync(HttpMethod.Put, Url, "{}", ("Concord-Agent", "utf-8''" + Uri.EscapeDataString("agent-ü")));
        Assert.Equal("agent-ü", (await put.JsonAsync()).GetProperty("writer").GetString());
        using var get = await host.Client.SendAsync(HttpMethod.Get, Url);
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Equal("utf-8''agent-%C3%BC", get.Header("Concord-Writer"));
    }

    [Fact]
    public async Task UnknownRoute_Returns404ProblemJson()
    {
        await using var host = await ServerHost.StartAsync();
        using var r = await host.Client.SendAsync(HttpMethod.Get, "/v1/nope");
        Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task HealthReadyAndOpenApi_Respond()
    {
        await using var host = await ServerHost.StartAsync();
        using var health = await host.Client.SendAsync(HttpMethod.Get, "/healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        using var ready = await host.Client.SendAsync(HttpMethod.Get, "/readyz");
        Assert.Equal("ready", (await ready.JsonAsync()).GetProperty("status").GetString());
        using var openapi = await host.Client.SendAsync(HttpMethod.Get, "/openapi/v1.json");
        Assert.Equal(HttpStatusCode.OK, openapi.StatusCode);
        var doc = await openapi.JsonAsync();
        var paths = doc.GetProperty("paths");
        Assert.True(paths.TryGetProperty("/v1/ns/{ns}/state/{key}", out _), paths.GetRawText()[..Math.Min(400, paths.GetRawText().Length)]);
        Assert.True(paths.TryGetProperty("/v1/ns/{ns}/txn", out _));
        Assert.True(paths.TryGetProperty("/v1/ns/{ns}/watch", out _));
    }

    [Fact]
    public async Task Put_StoreClosed_Returns503()
    {
        await using var host = await ServerHost.StartAsync();
        await host.Store.DisposeAsync();
        using var put = await host.Client.SendAsync(HttpMethod.Put, Url, "{}");
        await put.AssertProblemAsync(503, "store-unavailable");
    }

    /// <summary>A body stream with no known length, so the request is sent chunked.</summary>
    private sealed class NoLengthStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
