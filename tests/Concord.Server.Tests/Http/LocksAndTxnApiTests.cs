using System.Net;
using static Concord.Server.Tests.TestHttp;

namespace Concord.Server.Tests.Http;

public sealed class LocksAndTxnApiTests
{
    [Fact]
    public async Task Lock_AcquireBusyRenewRelease_Lifecycle()
    {
        await using var host = await ServerHost.StartAsync();
        using var a = await host.Client.SendAsync(HttpMethod.Post, "/v1/ns/t/locks/acquire", """{"name":"acct/1","owner":"alice","ttlMs":30000}""");
        Assert.Equal(HttpStatusCode.OK, a.StatusCode);
        var lease = await a.JsonAsync();
        Assert.Equal(1, lease.GetProperty("token").GetInt64());
        var leaseId = lease.GetProperty("leaseId").GetString();

        using var busy = await host.Client.SendAsync(HttpMethod.Post, "/v1/ns/t/locks/acquire", """{"name":"acct/1","owner":"bob"}""");
        var problem = await busy.AssertProblemAsync(409, "lock-busy");
        Assert.Equal(["alice"], problem.GetProperty("holders").EnumerateArray().Select(h => h.GetString()));

        using var renew = await host.Client.SendAsync(HttpMethod.Post, "/v1/ns/t/locks/renew", $$"""{"name":"acct/1","leaseId":"{{leaseId}}","ttlMs":60000}""");
        Assert.Equal(HttpStatusCode.OK, renew.StatusCode);
        using var list = await host.Client.SendAsync(HttpMethod.Get, "/v1/ns/t/locks");
        Assert.Equal("acct/1", (await list.JsonAsync())[0].GetProperty("name").GetString());

        using var release = await host.Client.SendAsync(HttpMethod.Post, "/v1/ns/t/locks/release", $$"""{"name":"acct/1","leaseId":"{{leaseId}}"}""");
        Assert.True((await release.JsonAsync()).GetProperty("released").GetBoolean());
        using var lost = await host.Client.SendAsync(HttpMethod.Post, "/v1/ns/t/locks/renew", $$"""{"name":"acct/1","leaseId":"{{leaseId}}"}""");
        await lost.AssertProblemAsync(409, "lease-lost");
    }

    [Fact]
    public async Task Put_WithFence_StaleTokenAfterTakeover_Returns409()
    {
        await using var host = await ServerHost.StartAsync();
        using var a = await host.Client.SendAsync(HttpMethod.Post, "/v1/ns/t/locks/acquire", """{"name":"l","owner":"alice"}""");
        var first = await a.JsonAsync();
        using var ok = await host.Client.SendAsync(HttpMethod.Put, "/v1/ns/t/state/doc", "{\"by\":\"alice\"}", ("Concord-Fence", "l:1"));
        Assert.Equal(HttpStatusCode.Created, ok.StatusCode);
        (await host.Client.SendAsync(HttpMethod.Post, "/v1/ns/t/locks/release", $$"""{"name":"l","leaseId":"{{first.GetProperty("leaseId").GetString()}}"}"""))
            .Dispose();
        using var b = await host.Client.SendAsync(HttpMethod.Post, "/v1/ns/t/locks/acquire", """{"name":"l","owner":"bob"}""");
        Assert.Equal(2, (await b.JsonAsync()).GetProperty("token").GetInt64());
        using var stale = await host.Client.SendAsync(HttpMethod.Put, "/v1/ns/t/state/doc", "{\"by\":\"alice-late\"}", ("Concord-Fence", "l:1"));
        await stale.AssertProblemAsync(409, "stale-fence");
    }

    [Theory]
    [InlineData("""{"owner":"x"}""", "invalid-request")]
    [InlineData("""{"name":"l","ttlMs":-1}""", "invalid-request")]
    [InlineData("""{"name":"l","mode":"sideways"}""", "invalid-request")]
    [InlineData("""{"name":"l","ttlMs":"soon"}""", "invalid-request")]
    [InlineData("""[1,2]""", "invalid-request")]
    public async Task Lock_BadBody_Returns400(string body, string code)
    {
        await using var host = await ServerHost.StartAsync();
        using var r = await host.Client.SendAsync(HttpMethod.Post, "/v1/ns/t/locks/acquire", body);
        await r.AssertProblemAsync(400, code);
    }

    [Fact]
    public async Task Txn_CompareFails_RunsElseAtOneRevision()
    {
        await using var host = await ServerHost.StartAsync();
        const string txn = """
            {"compares":[{"key":"flag","target":"version","op":"equal","number":0}],
             "then":[{"kind":"put","key":"flag","value":true},{"kind":"put","key":"log/1","value":"set"}],
             "else":[{"kind":"get","key":"flag"}]}
            """;
        using var first = await host.Client.SendAsync(HttpMethod.Post, "/v1/ns/t/txn", txn);
        var r1 = await first.JsonAsync();
        Assert.True(r1.GetProperty("succeeded").GetBoolean());
        Assert.Equal(1, r1.GetProperty("revision").GetInt64());
        Assert.All(r1.GetProperty("results").EnumerateArray(), x => Assert.Equal(1, x.GetProperty("record").GetProperty("revision").GetInt64()));

        using var second = await host.Client.SendAsync(HttpMethod.Post, "/v1/ns/t/txn", txn);
        var r2 = await second.JsonAsync();
        Assert.False(r2.GetProperty("succeeded").GetBoolean());
        Assert.True(r2.GetProperty("results")[0].GetProperty("record").GetProperty("value").GetBoolean());
    }

    [Fact]
    public async Task Txn_OpConflict_ReturnsConflictAndAppliesNothing()
    {
        await using var host = await ServerHost.StartAsync();
        const string txn = """{"then":[{"kind":"put","key":"a","value":1},{"kind":"put","key":"b","value":2,"expect":{"kind":"version","version":7}}]}""";
        using var r = await host.Client.SendAsync(HttpMethod.Post, "/v1/ns/t/txn", txn);
        var body = await r.JsonAsync();
        Assert.False(body.GetProperty("applied").GetBoolean());
        Assert.Equal(1, body.GetProperty("failedOpIndex").GetInt32());
        Assert.Equal("versionMismatch", body.GetProperty("conflict").GetProperty("conflict").GetString());
        Assert.Null(await host.Store.GetAsync("t", "a", null, Ct));
    }

    [Theory]
    [InlineData("""{"then":[{"kind":"put","value":1}]}""")]
    [InlineData("""{"then":[{"kind":"put","key":"a"}]}""")]
    [InlineData("""{"then":[{"kind":"teleport","key":"a"}]}""")]
    [InlineData("""{"then":"nope"}""")]
    [InlineData("""null""")]
    public async Task Txn_MalformedBody_Returns400(string body)
    {
        await using var host = await ServerHost.StartAsync();
        using var r = await host.Client.SendAsync(HttpMethod.Post, "/v1/ns/t/txn", body);
        await r.AssertProblemAsync(400, "invalid-request");
    }
}
