using System.Net;
using System.Text.Json;
using static Concord.Server.Tests.TestHttp;

namespace Concord.Server.Tests.Http;

public sealed class AuthTests
{
    private static JsonElement J(string json) => JsonDocument.Parse(json).RootElement.Clone();

    /// <summary>Every route, as (method, url relative to namespace "a", body, right needed).</summary>
    public static TheoryData<string, string, string?, string> Routes() => new()
    {
        { "GET", "state/secret", null, "read" },
        { "GET", "state/missing", null, "read" },
        { "GET", "state?prefix=", null, "read" },
        { "PUT", "state/secret", """{"x":1}""", "write" },
        { "PUT", "state/missing", """{"x":1}""", "write" },
        { "PATCH", "state/secret", """[{"op":"increment","path":"/n","value":1}]""", "write" },
        { "DELETE", "state/secret", null, "write" },
        { "DELETE", "state/missing", null, "write" },
        { "POST", "txn", """{"then":[{"kind":"get","key":"secret"}]}""", "read" },
        { "POST", "txn", """{"then":[{"kind":"put","key":"secret","value":2}]}""", "write" },
        { "GET", "watch?fromRevision=1", null, "read" },
        { "GET", "locks", null, "read" },
        { "POST", "locks/acquire", """{"name":"l"}""", "write" },
        { "POST", "locks/renew", """{"name":"l","leaseId":"x"}""", "write" },
        { "POST", "locks/release", """{"name":"l","leaseId":"x"}""", "write" },
    };

    private static async Task<ServerHost> HostWithSecretAsync()
    {
        var host = await ServerHost.StartWithAuthAsync();
        await host.Store.PutAsync("a", "secret", J("""{"pin":1234}"""), null, Ct);
        return host;
    }

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task AnyRoute_NoKeyOrUnknownKey_Returns401(string method, string path, string? body, string right)
    {
        _ = right;
        await using var host = await HostWithSecretAsync();
        foreach (var key in new[] { null, "not-a-key" })
        {
            using var r = await host.ClientWithKey(key).SendAsync(new HttpMethod(method), "/v1/ns/a/" + path, body);
            await r.AssertProblemAsync(401, "unauthorized");
            Assert.Equal("Bearer", r.Headers.WwwAuthenticate.ToString());
        }
        await AssertUntouchedAsync(host);
    }

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task AnyRoute_KeyScopedToOtherNamespace_Returns403IndistinguishablyAndTouchesNothing(string method, string path, string? body, string right)
    {
        _ = right;
        await using var host = await HostWithSecretAsync();
        var client = host.ClientWithKey(ServerHost.WriterB);
        using var r = await client.SendAsync(new HttpMethod(method), "/v1/ns/a/" + path, body);
        var problem = await r.AssertProblemAsync(403, "forbidden");
        // The answer must not depend on what namespace "a" holds: compare with the same request for a key that does not exist.
        var twinPath = path.Replace("secret", "missing", StringComparison.Ordinal);
        using var twin = await client.SendAsync(new HttpMethod(method), "/v1/ns/a/" + twinPath, body?.Replace("secret", "missing", StringComparison.Ordinal));
        var twinProblem = await twin.AssertProblemAsync(403, "forbidden");
        Assert.Equal(problem.GetProperty("detail").GetString(), twinProblem.GetProperty("detail").GetString());
        Assert.DoesNotContain("secret", problem.GetRawText(), StringComparison.Ordinal);
        Assert.DoesNotContain("1234", problem.GetRawText(), StringComparison.Ordinal);
        Assert.Equal("", r.Header("ETag"));
        Assert.Equal("", r.Header("Concord-Revision"));
        await AssertUntouchedAsync(host);
    }

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task AnyRoute_ReadOnlyKey_AllowsReadsOnlyAndWritesNothing(string method, string path, string? body, string right)
    {
        await using var host = await HostWithSecretAsync();
        if (path.StartsWith("watch", StringComparison.Ordinal))
        {
            await using var watch = await SseReader.OpenAsync(host.ClientWithKey(ServerHost.ReaderA), "/v1/ns/a/" + path);
            Assert.Equal("secret", (await watch.NextAsync())!.Key);
            return;
        }
        using var r = await host.ClientWithKey(ServerHost.ReaderA).SendAsync(new HttpMethod(method), "/v1/ns/a/" + path, body);
        if (right == "read") Assert.NotEqual(HttpStatusCode.Forbidden, r.StatusCode);
        else
        {
            await r.AssertProblemAsync(403, "forbidden");
            await AssertUntouchedAsync(host);
        }
    }

    [Theory]
    [InlineData("PUT", "state/_sys/config", """{"x":1}""")]
    [InlineData("PATCH", "state/_sys/config", """[{"op":"add","path":"/x","value":1}]""")]
    [InlineData("DELETE", "state/_sys/config", null)]
    [InlineData("PUT", "state/_sys/locks/l", """{"issued":999999,"floor":0,"holders":[],"waiters":[]}""")]
    [InlineData("POST", "txn", """{"then":[{"kind":"put","key":"_sys/config","value":1}]}""")]
    [InlineData("POST", "txn", """{"then":[{"kind":"get","key":"x"}],"else":[{"kind":"delete","key":"_sys/config"}]}""")]
    public async Task ReservedKeys_WriteKey_Returns403_AdminKey_Allowed(string method, string path, string? body)
    {
        await using var host = await ServerHost.StartWithAuthAsync();
        await host.Store.PutAsync("a", "_sys/config", J("""{"v":1}"""), null, Ct);
        using var denied = await host.ClientWithKey(ServerHost.WriterA).SendAsync(new HttpMethod(method), "/v1/ns/a/" + path, body);
        await denied.AssertProblemAsync(403, "forbidden");
        Assert.Equal(1, (await host.Store.GetAsync("a", "_sys/config", null, Ct))!.Version);

        using var allowed = await host.ClientWithKey(ServerHost.AdminKey).SendAsync(new HttpMethod(method), "/v1/ns/a/" + path, body,
            method is "PUT" or "DELETE" && path.EndsWith("config", StringComparison.Ordinal) ? [("If-Match", "\"1\"")] : []);
        Assert.NotEqual(HttpStatusCode.Forbidden, allowed.StatusCode);
        Assert.NotEqual(HttpStatusCode.Unauthorized, allowed.StatusCode);
    }

    [Fact]
    public async Task ReservedKeys_WriteKeyCanStillReadThem()
    {
        await using var host = await ServerHost.StartWithAuthAsync();
        await host.Store.PutAsync("a", "_sys/config", J("""{"v":1}"""), null, Ct);
        using var r = await host.ClientWithKey(ServerHost.WriterA).SendAsync(HttpMethod.Get, "/v1/ns/a/state/_sys/config");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
    }

    [Fact]
    public async Task WriterKey_InItsNamespace_WritesWithItsNameAsDefaultAgent()
    {
        await using var host = await ServerHost.StartWithAuthAsync();
        using var r = await host.ClientWithKey(ServerHost.WriterA).SendAsync(HttpMethod.Put, "/v1/ns/a/state/k", "{}");
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        Assert.Equal("agent-a", (await r.JsonAsync()).GetProperty("writer").GetString());
    }

    [Fact]
    public async Task XApiKeyHeader_IsAccepted()
    {
        await using var host = await ServerHost.StartWithAuthAsync();
        using var r = await host.ClientWithKey(null).SendAsync(HttpMethod.Get, "/v1/ns/a/state", null, ("X-Api-Key", ServerHost.ReaderA));
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
    }

    [Fact]
    public async Task List_OtherNamespace_NeverShowsItsKeys()
    {
        await using var host = await HostWithSecretAsync();
        await host.Store.PutAsync("b", "mine", J("1"), null, Ct);
        using var r = await host.ClientWithKey(ServerHost.WriterB).SendAsync(HttpMethod.Get, "/v1/ns/b/state");
        var keys = (await r.JsonAsync()).GetProperty("records").EnumerateArray().Select(x => x.GetProperty("key").GetString()).ToList();
        Assert.Equal(["mine"], keys);
    }

    [Fact]
    public async Task HealthEndpoints_NeedNoKey()
    {
        await using var host = await ServerHost.StartWithAuthAsync();
        using var r = await host.ClientWithKey(null).SendAsync(HttpMethod.Get, "/healthz");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
    }

    private static async Task AssertUntouchedAsync(ServerHost host)
    {
        var secret = await host.Store.GetAsync("a", "secret", null, Ct);
        Assert.Equal(1, secret!.Version);
        Assert.Null(await host.Store.GetAsync("a", "missing", null, Ct));
        Assert.Null(await host.Store.GetAsync("a", "_sys/locks/l", null, Ct));
        Assert.Equal(1, await host.Store.GetRevisionAsync(Ct));
    }
}
