using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Logging;
using static Concord.Server.Tests.TestHttp;

namespace Concord.Server.Tests.Http;

/// <summary>Resource limits answer with clear errors; API keys never reach the logs.</summary>
public sealed class LimitsAndSecretsTests
{
    [Fact]
    public async Task Enqueue_QueueAtMaxQueueTasks_Returns429QueueFullWithRetryAfter()
    {
        await using var host = await ServerHost.StartAsync(o => o.MaxQueueTasks = 1);
        using (var first = await host.Client.SendAsync(HttpMethod.Post, "v1/ns/a/queues/jobs/tasks", """{"payload":{"n":1}}"""))
            Assert.Equal(System.Net.HttpStatusCode.Created, first.StatusCode);
        using var second = await host.Client.SendAsync(HttpMethod.Post, "v1/ns/a/queues/jobs/tasks", """{"payload":{"n":2}}""");
        var problem = await second.AssertProblemAsync(429, "queue-full");
        Assert.Contains("jobs", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.NotNull(second.Headers.RetryAfter);
    }

    [Fact]
    public async Task Enqueue_PayloadOverMaxQueuePayloadBytes_Returns400NamingTheLimitAndCreatesNothing()
    {
        await using var host = await ServerHost.StartAsync(o => o.MaxQueuePayloadBytes = 100);
        using (var small = await host.Client.SendAsync(HttpMethod.Post, "v1/ns/a/queues/jobs/tasks", """{"payload":{"n":1}}"""))
            Assert.Equal(HttpStatusCode.Created, small.StatusCode);
        using var large = await host.Client.SendAsync(HttpMethod.Post, "v1/ns/a/queues/jobs/tasks", $$$"""{"payload":{"s":"{{{new string('x', 200)}}}"}}""");
        var problem = await large.AssertProblemAsync(400, "invalid-request");
        Assert.Contains("limit is 100 bytes", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        using var stats = await host.Client.SendAsync(HttpMethod.Get, "v1/ns/a/queues/jobs");
        Assert.Equal(HttpStatusCode.OK, stats.StatusCode);
        Assert.Contains("\"ready\":1", await stats.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Put_BodyOverTheLimit_Returns413BodyTooLarge()
    {
        await using var host = await ServerHost.StartAsync(o => o.MaxRequestBodyBytes = 4096);
        using var response = await host.Client.SendAsync(HttpMethod.Put, "v1/ns/a/state/k", $$"""{"s":"{{new string('x', 5000)}}"}""");
        var problem = await response.AssertProblemAsync(413, "body-too-large");
        Assert.Contains("4096", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Null(await host.Store.GetAsync("a", "k", null, Ct));
    }

    [Fact]
    public async Task Watch_MoreStreamsThanAllowed_Returns429TooManyWatchers()
    {
        await using var host = await ServerHost.StartAsync(o => o.MaxWatchers = 2);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        using var first = await host.Client.SendAsync(new HttpRequestMessage(HttpMethod.Get, "v1/ns/a/watch"), HttpCompletionOption.ResponseHeadersRead, stop.Token);
        using var second = await host.Client.SendAsync(new HttpRequestMessage(HttpMethod.Get, "v1/ns/a/watch"), HttpCompletionOption.ResponseHeadersRead, stop.Token);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        using var third = await host.Client.SendAsync(HttpMethod.Get, "v1/ns/a/watch");
        await third.AssertProblemAsync(429, "too-many-watchers");
        await stop.CancelAsync();
    }

    [Fact]
    public async Task Acquire_MoreWaitersThanAllowed_Returns429TooManyWaitersAtOnce()
    {
        await using var host = await ServerHost.StartAsync(o => o.MaxLockWaitersPerKey = 2);
        using var held = await host.Client.SendAsync(HttpMethod.Post, "v1/ns/a/locks/acquire", """{"name":"hot","owner":"holder","ttlMs":60000}""");
        Assert.Equal(HttpStatusCode.OK, held.StatusCode);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var waiters = Enumerable.Range(0, 2).Select(i => host.Client.SendAsync(
            Request(HttpMethod.Post, "v1/ns/a/locks/acquire", $$"""{"name":"hot","owner":"w{{i}}","ttlMs":60000,"waitMs":60000}"""), stop.Token)).ToList();
        for (var i = 0; i < 400 && await WaitersAsync(host) < 2; i++) await Task.Delay(25, Ct);
        Assert.Equal(2, await WaitersAsync(host));

        using var refused = await host.Client.SendAsync(HttpMethod.Post, "v1/ns/a/locks/acquire", """{"name":"hot","owner":"late","ttlMs":60000,"waitMs":60000}""");
        var problem = await refused.AssertProblemAsync(429, "too-many-waiters");
        Assert.Contains("limit is 2", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        // A try-lock (no wait) never queues, so it still gets the ordinary busy answer.
        using var busy = await host.Client.SendAsync(HttpMethod.Post, "v1/ns/a/locks/acquire", """{"name":"hot","owner":"try","ttlMs":60000}""");
        await busy.AssertProblemAsync(409, "lock-busy");
        await stop.CancelAsync();
        foreach (var w in waiters)
        {
            try
            {
                (await w).Dispose();
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    [Fact]
    public void Options_ZeroLockWaiters_AreRejected()
    {
        var e = Assert.Throws<InvalidRequestException>(() => new ConcordServerOptions { MaxLockWaitersPerKey = 0 }.Validate());
        Assert.Contains("MaxLockWaitersPerKey", e.Message, StringComparison.Ordinal);
    }

    private static async Task<int> WaitersAsync(ServerHost host)
    {
        using var response = await host.Client.SendAsync(HttpMethod.Get, "v1/ns/a/locks");
        var locks = await response.JsonAsync();
        return locks.EnumerateArray().Sum(l => l.TryGetProperty("waiters", out var w) ? w.GetArrayLength() : 0);
    }

    [Fact]
    public async Task ApiKeys_ValidOrNot_NeverAppearInAnyLogMessage()
    {
        const string Secret = "sk-live-SECRET-4f1c9e";
        const string Wrong = "sk-live-WRONG-77aa01";
        var capture = new CapturingLoggerProvider();
        var store = Engine.ConcordEngine.CreateInMemory(new Engine.ConcordEngineOptions());
        await using var app = await ConcordServer.CreateAsync([], o =>
        {
            o.Backend = "memory";
            o.ApiKeys = [new ApiKeyOptions { Key = Secret, Name = "agent", Namespaces = ["a"], Rights = ApiRights.Write }];
        }, store, b =>
        {
            b.WebHost.UseTestServer();
            b.Logging.ClearProviders();
            b.Logging.AddProvider(capture);
            b.Logging.SetMinimumLevel(LogLevel.Trace);
            b.Logging.AddFilter((_, _) => true);
        }, Ct);
        await app.StartAsync(Ct);
        var client = app.GetTestClient();
        foreach (var key in new[] { Secret, Wrong })
        {
            foreach (var header in new[] { "Authorization", "X-Api-Key" })
            {
                var value = header == "Authorization" ? "Bearer " + key : key;
                (await client.SendAsync(HttpMethod.Put, "v1/ns/a/state/k", """{"n":1}""", (header, value))).Dispose();
                (await client.SendAsync(HttpMethod.Put, "v1/ns/a/state/k", "{bad json", (header, value))).Dispose();
                (await client.SendAsync(HttpMethod.Get, "v1/ns/b/state/k", null, (header, value))).Dispose();
                (await client.SendAsync(HttpMethod.Post, "v1/ns/a/locks/acquire", """{"name":"l"}""", (header, value))).Dispose();
                (await client.SendAsync(HttpMethod.Post, "mcp", """{"jsonrpc":"2.0","id":1,"method":"tools/list"}""", (header, value), ("Accept", "application/json, text/event-stream"))).Dispose();
            }
        }
        await app.StopAsync(Ct);
        await store.DisposeAsync();

        var messages = capture.Messages.ToList();
        Assert.True(messages.Count > 3, "the capture saw the server's logs");
        foreach (var m in messages)
        {
            Assert.DoesNotContain(Secret, m, StringComparison.Ordinal);
            Assert.DoesNotContain(Wrong, m, StringComparison.Ordinal);
        }
    }

    private sealed class CapturingLoggerProvider : ILoggerProvider
    {
        public ConcurrentQueue<string> Messages { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose()
        {
        }

        private sealed class Logger(CapturingLoggerProvider owner, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull
            {
                owner.Messages.Enqueue($"{category} scope: {Describe(state)}");
                return null;
            }

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                owner.Messages.Enqueue($"{category} {logLevel}: {formatter(state, exception)} | {Describe(state)} | {exception}");

            private static string Describe(object? state) => state is IEnumerable<KeyValuePair<string, object?>> pairs
                ? string.Join(", ", pairs.Select(p => $"{p.Key}={p.Value}"))
                : state?.ToString() ?? "";
        }
    }
}
