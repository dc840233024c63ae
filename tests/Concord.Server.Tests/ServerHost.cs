using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Concord.Engine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Logging;

namespace Concord.Server.Tests;

/// <summary>An in-process Concord server on a TestServer, over a store the test owns.</summary>
internal sealed class ServerHost : IAsyncDisposable
{
    public const string AdminKey = "admin-key";
    public const string WriterA = "writer-a";
    public const string ReaderA = "reader-a";
    public const string WriterB = "writer-b";

    private ServerHost(WebApplication app, IConcordStore store)
    {
        App = app;
        Store = store;
        Client = app.GetTestClient();
    }

    public WebApplication App { get; }
    public IConcordStore Store { get; }
    public HttpClient Client { get; }

    public static async Task<ServerHost> StartAsync(Action<ConcordServerOptions>? configure = null, IConcordStore? store = null, ConcordEngineOptions? engine = null,
        Action<WebApplicationBuilder>? build = null)
    {
        store ??= ConcordEngine.CreateInMemory(engine ?? new ConcordEngineOptions { StrictMode = true });
        var app = await ConcordServer.CreateAsync([], o =>
        {
            o.Backend = "memory";
            configure?.Invoke(o);
        }, store, b =>
        {
            b.WebHost.UseTestServer();
            b.Logging.ClearProviders();
            build?.Invoke(b);
        }, TestContext.Current.CancellationToken);
        await app.StartAsync(TestContext.Current.CancellationToken);
        return new ServerHost(app, store);
    }

    /// <summary>A server with four keys: admin (everything), writer-a and reader-a (namespace "a"), writer-b (namespace "b").</summary>
    public static Task<ServerHost> StartWithAuthAsync(IConcordStore? store = null) => StartAsync(o => o.ApiKeys =
    [
        new ApiKeyOptions { Key = AdminKey, Name = "admin", Namespaces = ["*"], Rights = ApiRights.Admin },
        new ApiKeyOptions { Key = WriterA, Name = "agent-a", Namespaces = ["a"], Rights = ApiRights.Write },
        new ApiKeyOptions { Key = ReaderA, Name = "viewer-a", Namespaces = ["a"], Rights = ApiRights.Read },
        new ApiKeyOptions { Key = WriterB, Name = "agent-b", Namespaces = ["b"], Rights = ApiRights.Write },
    ], store);

    public HttpClient ClientWithKey(string? key)
    {
        var client = App.GetTestClient();
        if (key is not null) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync(CancellationToken.None);
        await App.DisposeAsync();
        await Store.DisposeAsync();
    }
}

internal static class TestHttp
{
    public static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    public static HttpRequestMessage Request(HttpMethod method, string url, string? body = null, params (string Name, string Value)[] headers)
    {
        var m = new HttpRequestMessage(method, url);
        if (body is not null) m.Content = Json(body);
        foreach (var (name, value) in headers) m.Headers.TryAddWithoutValidation(name, value);
        return m;
    }

    public static async Task<HttpResponseMessage> SendAsync(this HttpClient client, HttpMethod method, string url, string? body = null, params (string Name, string Value)[] headers) =>
        await client.SendAsync(Request(method, url, body, headers), Ct);

    public static async Task<JsonElement> JsonAsync(this HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>Asserts a problem+json response with the given status and type suffix; returns the body.</summary>
    public static async Task<JsonElement> AssertProblemAsync(this HttpResponseMessage response, int status, string code)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True((int)response.StatusCode == status, $"expected {status} {code}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var body = JsonDocument.Parse(text).RootElement.Clone();
        Assert.Equal("https://concord.dev/problems/" + code, body.GetProperty("type").GetString());
        Assert.Equal(status, body.GetProperty("status").GetInt32());
        return body;
    }

    public static string Header(this HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var v) ? string.Join(",", v) : response.Content.Headers.TryGetValues(name, out var c) ? string.Join(",", c) : "";

    public static long ETagVersion(this HttpResponseMessage response) => long.Parse(response.Headers.ETag!.Tag.Trim('"'), System.Globalization.CultureInfo.InvariantCulture);
}
