using System.Net;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using static Concord.Server.Tests.TestHttp;

namespace Concord.Server.Tests.Http;

/// <summary>
/// Every route the server maps — enumerated from its <see cref="EndpointDataSource"/>, so a new route is covered the
/// moment it exists — refuses a missing or unknown key with the same 401, and a key scoped to another namespace or
/// lacking the right with 403. Only the routes listed in <see cref="Public"/> may answer without a key.
/// </summary>
public sealed class RouteSecurityTests
{
    /// <summary>
    /// Routes that are public on purpose: probes for orchestrators, the API description, and the dashboard's static page
    /// and assets (no data: the page asks for a key and sends it to the /dashboard API, which checks it like every route).
    /// </summary>
    private static readonly string[] Public = ["/healthz", "/readyz", "/openapi/{documentName}.json", "/", "/dashboard/assets/{name}"];

    private sealed record Route(string Method, string Pattern, string? Name);

    private static List<Route> Routes(ServerHost host) =>
        [.. host.App.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? ["GET"])
                .Select(m => new Route(m, "/" + e.RoutePattern.RawText!.TrimStart('/'), e.Metadata.GetMetadata<IEndpointNameMetadata>()?.EndpointName)))
            .DistinctBy(r => (r.Method, r.Pattern))];

    private static string Url(string pattern, string ns) =>
        pattern.Replace("{ns}", ns, StringComparison.Ordinal).Replace("{*key}", "k", StringComparison.Ordinal).Replace("{documentName}", "v1", StringComparison.Ordinal);

    /// <summary>A well-formed body for the route (so a 403 is about the right, not a 400 about the body).</summary>
    private static string? Body(Route r) => r.Name switch
    {
        "Transact" => """{"then":[{"kind":"put","key":"k","value":1}]}""",
        "AcquireLock" => """{"name":"l"}""",
        "RenewLock" or "ReleaseLock" => """{"name":"l","leaseId":"x"}""",
        "PatchKey" => """[{"op":"increment","path":"/n","value":1}]""",
        _ when r.Method is "PUT" or "POST" => """{"n":1}""",
        _ => null,
    };

    [Fact]
    public async Task EveryRoute_WithoutKeyOrWithUnknownKey_Returns401AndTheSameBody()
    {
        await using var host = await ServerHost.StartWithAuthAsync();
        var routes = Routes(host);
        Assert.Contains(routes, r => r.Pattern.Contains("{ns}", StringComparison.Ordinal)); // the enumeration found the API
        var checkedRoutes = 0;
        foreach (var route in routes.Where(r => !Public.Contains(r.Pattern)))
        {
            using var none = await host.ClientWithKey(null).SendAsync(new HttpMethod(route.Method), Url(route.Pattern, "a"), Body(route));
            using var unknown = await host.ClientWithKey("not-a-key").SendAsync(new HttpMethod(route.Method), Url(route.Pattern, "a"), Body(route));
            Assert.True(none.StatusCode == HttpStatusCode.Unauthorized, $"{route.Method} {route.Pattern} without a key → {(int)none.StatusCode}");
            Assert.True(unknown.StatusCode == HttpStatusCode.Unauthorized, $"{route.Method} {route.Pattern} with an unknown key → {(int)unknown.StatusCode}");
            // Whether a key exists is not revealed: an unknown key looks exactly like no key.
            Assert.Equal(await WithoutTraceIdAsync(none), await WithoutTraceIdAsync(unknown));
            checkedRoutes++;
        }
        Assert.True(checkedRoutes >= 10, $"only {checkedRoutes} routes found");
        Assert.Empty((await host.Store.ListAsync("a", new ListRequest(), Ct)).Records);
    }

    private static async Task<string> WithoutTraceIdAsync(HttpResponseMessage response)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!.AsObject();
        node.Remove("traceId");
        return $"{response.Headers.WwwAuthenticate} {node.ToJsonString()}";
    }

    [Fact]
    public async Task EveryNamespacedRoute_KeyForAnotherNamespace_Returns403AndTouchesNothing()
    {
        await using var host = await ServerHost.StartWithAuthAsync();
        var other = host.ClientWithKey(ServerHost.WriterB);
        foreach (var route in Routes(host).Where(r => r.Pattern.Contains("{ns}", StringComparison.Ordinal)))
        {
            using var response = await other.SendAsync(new HttpMethod(route.Method), Url(route.Pattern, "a"), Body(route));
            var body = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.StatusCode == HttpStatusCode.Forbidden, $"{route.Method} {route.Pattern} with a key for namespace b → {(int)response.StatusCode} {body}");
            Assert.DoesNotContain(ServerHost.WriterB, body, StringComparison.Ordinal);
        }
        Assert.Empty((await host.Store.ListAsync("a", new ListRequest(), Ct)).Records);
    }

    [Fact]
    public async Task EveryMutatingRoute_ReadOnlyKey_Returns403AndTouchesNothing()
    {
        await using var host = await ServerHost.StartWithAuthAsync();
        var reader = host.ClientWithKey(ServerHost.ReaderA);
        var mutating = Routes(host).Where(r => r.Pattern.Contains("{ns}", StringComparison.Ordinal) && r.Method != "GET").ToList();
        Assert.True(mutating.Count >= 6, $"only {mutating.Count} mutating routes found");
        foreach (var route in mutating)
        {
            using var response = await reader.SendAsync(new HttpMethod(route.Method), Url(route.Pattern, "a"), Body(route));
            Assert.True(response.StatusCode == HttpStatusCode.Forbidden, $"{route.Method} {route.Pattern} with a read-only key → {(int)response.StatusCode}");
        }
        Assert.Empty((await host.Store.ListAsync("a", new ListRequest(), Ct)).Records);
    }
}
