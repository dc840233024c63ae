using System.Net;
using System.Text.Json;
using Concord.Coordination.Queues;
using Concord.Coordination.Streams;
using Concord.Engine;
using Concord.Lab.History;
using Concord.Server.Tests.Http;
using Microsoft.Extensions.DependencyInjection;
using static Concord.Server.Tests.TestHttp;

namespace Concord.Server.Tests.Dashboard;

public sealed class DashboardApiTests
{
    private static Task<ServerHost> StartAsync() => ServerHost.StartAsync(store: ConcordEngine.CreateInMemory(new ConcordEngineOptions { StrictMode = false }));

    private static async Task<HttpResponseMessage> AsAsync(HttpClient client, HttpMethod method, string url, string agent, string? body = null, params (string, string)[] headers) =>
        await client.SendAsync(method, url, body, [("Concord-Agent", agent), .. headers]);

    [Fact]
    public async Task Page_IsServedFromTheAssembly_WithAStrictContentSecurityPolicy()
    {
        await using var host = await StartAsync();
        using var page = await host.Client.GetAsync("/", Ct);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        Assert.Contains("<script type=\"module\" src=\"/dashboard/assets/dashboard.js\">", await page.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        var csp = page.Header("Content-Security-Policy");
        Assert.Contains("default-src 'self'", csp, StringComparison.Ordinal);
        Assert.Contains("script-src 'self'", csp, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe", csp, StringComparison.Ordinal);

        using var js = await host.Client.GetAsync("/dashboard/assets/dashboard.js", Ct);
        Assert.Equal("text/javascript", js.Content.Headers.ContentType?.MediaType);
        using var css = await host.Client.GetAsync("/dashboard/assets/dashboard.css", Ct);
        Assert.Equal("text/css", css.Content.Headers.ContentType?.MediaType);
        // No CDN: nothing on the page is loaded from another origin.
        Assert.DoesNotContain("http", (await page.Content.ReadAsStringAsync(Ct)).Replace("http://www.w3.org", "", StringComparison.Ordinal), StringComparison.Ordinal);

        using var again = await host.Client.SendAsync(HttpMethod.Get, "/dashboard/assets/dashboard.js", null, ("If-None-Match", js.Headers.ETag!.Tag));
        Assert.Equal(HttpStatusCode.NotModified, again.StatusCode);
        using var missing = await host.Client.GetAsync("/dashboard/assets/nope.js", Ct);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        using var traversal = await host.Client.GetAsync("/dashboard/assets/..%2FConcord.Server.dll", Ct);
        Assert.Equal(HttpStatusCode.NotFound, traversal.StatusCode);
    }

    [Fact]
    public async Task HttpAgents_AreJournaledWithTheirAgent_OnReadsAndWrites()
    {
        await using var host = await StartAsync();
        using (var put = await AsAsync(host.Client, HttpMethod.Put, "/v1/ns/t/state/acct", "fees", "{\"fees\":\"unpaid\"}")) Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        (await AsAsync(host.Client, HttpMethod.Get, "/v1/ns/t/state/acct", "status")).Dispose();
        (await host.Client.GetAsync("/v1/ns/t/state/acct", Ct)).Dispose();

        using var journal = await host.Client.GetAsync("/dashboard/api/journal?ns=t", Ct);
        var entries = (await journal.JsonAsync()).GetProperty("entries").EnumerateArray().ToList();
        Assert.Equal(["fees", "status", "anonymous"], entries.Select(e => e.GetProperty("agent").GetString()));
        Assert.Equal(["put", "read", "read"], entries.Select(e => e.GetProperty("op").GetString()));
        Assert.Equal("fees", entries[1].GetProperty("writer").GetString());
        Assert.Equal(entries[0].GetProperty("seq").GetInt64(), entries[1].GetProperty("basedOnSeq").GetInt64());
    }

    [Fact]
    public async Task ClientSessions_SendTheirAgentOnReads_SoTheJournalKnowsWhoReadWhat()
    {
        await using var host = await StartAsync();
        var client = new Concord.Client.ConcordHttpStore(host.Client);
        var fees = new ConcordSession(client, "s", "fees");
        var status = new ConcordSession(client, "s", "status");
        await fees.PutAsync("acct", JsonSerializer.SerializeToElement(1), Expect.Absent, cancellationToken: Ct);
        await status.GetAsync("acct", Ct);
        await status.GetAsync("acct", 1, Ct);

        using var journal = await host.Client.GetAsync("/dashboard/api/journal?ns=s", Ct);
        var entries = (await journal.JsonAsync()).GetProperty("entries").EnumerateArray().ToList();
        Assert.Equal(["fees", "status", "status"], entries.Select(e => e.GetProperty("agent").GetString()));
    }

    [Fact]
    public async Task BlindOverwriteOverHttp_IsStreamedFoundAndExplainedInTheVerdict()
    {
        await using var host = await StartAsync();
        await using var events = await SseReader.OpenAsync(host.Client, "/dashboard/events?ns=acme");
        Assert.Equal("hello", (await events.NextAsync())!.Event);

        (await AsAsync(host.Client, HttpMethod.Put, "/v1/ns/acme/state/acct/42", "onboarding", "{\"status\":\"active\"}", ("If-None-Match", "*"))).Dispose();
        (await AsAsync(host.Client, HttpMethod.Get, "/v1/ns/acme/state/acct/42", "status")).Dispose();
        (await AsAsync(host.Client, HttpMethod.Get, "/v1/ns/acme/state/acct/42", "fees")).Dispose();
        (await AsAsync(host.Client, HttpMethod.Put, "/v1/ns/acme/state/acct/42", "fees", "{\"status\":\"active\",\"fees\":\"unpaid\"}")).Dispose();
        (await AsAsync(host.Client, HttpMethod.Put, "/v1/ns/acme/state/acct/42", "status", "{\"status\":\"restricted\"}")).Dispose();
        // A stale compare-and-swap is refused: a conflict naming the write it collided with.
        using (var stale = await AsAsync(host.Client, HttpMethod.Put, "/v1/ns/acme/state/acct/42", "compliance", "{\"compliance\":\"review\"}", ("If-Match", "\"1\"")))
            Assert.Equal(HttpStatusCode.PreconditionFailed, stale.StatusCode);

        var received = await events.TakeAsync(7);
        Assert.Equal(["op", "op", "op", "op", "op", "lost", "op"], received.Select(e => e.Event));
        Assert.Equal(["1", "2", "3", "4", "5", null, "6"], received.Select(e => e.Id));
        var lost = received[5].Json;
        Assert.Equal("status", lost.GetProperty("overwriter").GetString());
        Assert.Equal(5, lost.GetProperty("overwriteSeq").GetInt64());
        var conflict = received[6].Json;
        Assert.Equal("conflict", conflict.GetProperty("outcome").GetString());
        Assert.Equal("versionMismatch", conflict.GetProperty("conflict").GetString());
        Assert.Equal("status", conflict.GetProperty("writer").GetString());
        Assert.Equal(5, conflict.GetProperty("conflictWithSeq").GetInt64());

        using var check = await host.Client.SendAsync(HttpMethod.Post, "/dashboard/api/check?ns=acme");
        var verdict = (await check.JsonAsync()).EnumerateArray().Single();
        Assert.Equal("anomaly", verdict.GetProperty("status").GetString());
        Assert.Equal("valid", verdict.GetProperty("linearizability").GetProperty("verdict").GetString());
        Assert.Equal("invalid", verdict.GetProperty("lostUpdates").GetProperty("verdict").GetString());
        Assert.Equal(
            "status overwrote version 2 of acct/42 (written by fees) without having read it (it had read version 1); fees's update was lost.",
            verdict.GetProperty("lostUpdates").GetProperty("findings")[0].GetString());
        var published = await events.NextAsync();
        Assert.Equal("verdict", published!.Event);

        using var findings = await host.Client.GetAsync("/dashboard/api/findings?ns=acme", Ct);
        Assert.Single((await findings.JsonAsync()).EnumerateArray());
        using var agents = await host.Client.GetAsync("/dashboard/api/agents?ns=acme", Ct);
        var byAgent = (await agents.JsonAsync()).EnumerateArray().ToDictionary(a => a.GetProperty("agent").GetString()!);
        Assert.Equal(1, byAgent["status"].GetProperty("overwrote").GetInt64());
        Assert.Equal(1, byAgent["fees"].GetProperty("lostUpdates").GetInt64());
        Assert.Equal(1, byAgent["compliance"].GetProperty("conflicts").GetInt64());
    }

    [Fact]
    public async Task Events_ResumeAfterLastEventId_WithoutLossOrRepeat()
    {
        await using var host = await StartAsync();
        for (var i = 0; i < 3; i++) (await AsAsync(host.Client, HttpMethod.Put, $"/v1/ns/r/state/k{i}", "a", "1")).Dispose();
        await using var events = await SseReader.OpenAsync(host.Client, "/dashboard/events", lastEventId: "1");
        var received = await events.TakeAsync(3);
        Assert.Equal(["hello", "op", "op"], received.Select(e => e.Event));
        Assert.Equal(["2", "3"], received.Skip(1).Select(e => e.Id));
        (await AsAsync(host.Client, HttpMethod.Put, "/v1/ns/r/state/k9", "a", "1")).Dispose();
        Assert.Equal("4", (await events.NextAsync())!.Id);
    }

    [Fact]
    public async Task Auth_DashboardNeedsTheReadRight_AndShowsOnlyReadableNamespaces()
    {
        await using var host = await ServerHost.StartWithAuthAsync(ConcordEngine.CreateInMemory());
        var writerA = host.ClientWithKey(ServerHost.WriterA);
        var writerB = host.ClientWithKey(ServerHost.WriterB);
        var readerA = host.ClientWithKey(ServerHost.ReaderA);
        (await writerB.SendAsync(HttpMethod.Put, "/v1/ns/b/state/secret", "1", ("If-None-Match", "*"))).Dispose();
        (await writerA.SendAsync(HttpMethod.Put, "/v1/ns/a/state/open", "1", ("If-None-Match", "*"))).Dispose();

        using (var page = await host.ClientWithKey(null).GetAsync("/", Ct)) Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        using (var anonymous = await host.ClientWithKey(null).GetAsync("/dashboard/api/overview", Ct)) await anonymous.AssertProblemAsync(401, "unauthorized");
        using (var anonymousEvents = await host.ClientWithKey(null).GetAsync("/dashboard/events", HttpCompletionOption.ResponseHeadersRead, Ct)) await anonymousEvents.AssertProblemAsync(401, "unauthorized");

        using var overview = await readerA.GetAsync("/dashboard/api/overview", Ct);
        Assert.Equal(["a"], (await overview.JsonAsync()).GetProperty("namespaces").EnumerateArray().Select(n => n.GetProperty("ns").GetString()));
        using var journal = await readerA.GetAsync("/dashboard/api/journal", Ct);
        Assert.All((await journal.JsonAsync()).GetProperty("entries").EnumerateArray(), e => Assert.Equal("a", e.GetProperty("ns").GetString()));
        using (var keysB = await readerA.GetAsync("/dashboard/api/ns/b/keys", Ct)) await keysB.AssertProblemAsync(403, "forbidden");
        using (var journalB = await readerA.GetAsync("/dashboard/api/journal?ns=b", Ct)) await journalB.AssertProblemAsync(403, "forbidden");
        using (var eventsB = await readerA.GetAsync("/dashboard/events?ns=b", HttpCompletionOption.ResponseHeadersRead, Ct)) await eventsB.AssertProblemAsync(403, "forbidden");
        using (var historyB = await readerA.GetAsync("/dashboard/api/ns/b/history.jsonl", Ct)) await historyB.AssertProblemAsync(403, "forbidden");

        // The live stream carries only namespace a's operations to this key.
        await using var events = await SseReader.OpenAsync(readerA, "/dashboard/events?after=0");
        var received = await events.TakeAsync(2);
        Assert.Equal("a", received[1].Json.GetProperty("ns").GetString());
        (await writerB.SendAsync(HttpMethod.Put, "/v1/ns/b/state/secret2", "1", ("If-None-Match", "*"))).Dispose();
        (await writerA.SendAsync(HttpMethod.Put, "/v1/ns/a/state/open2", "1", ("If-None-Match", "*"))).Dispose();
        var next = await events.NextAsync();
        Assert.Equal("open2", next!.Json.GetProperty("key").GetString());
    }

    [Fact]
    public async Task Keys_ArePagedInKeyOrder_WithVersionsAndWriters_SkippingReservedKeys()
    {
        await using var host = await StartAsync();
        var store = host.Store;
        for (var i = 0; i < 250; i++)
            await store.PutAsync("k", $"item/{i:D3}", JsonSerializer.SerializeToElement(new { i }), new WriteOptions { Agent = $"agent-{i % 3}" }, Ct);
        await new StoreQueueService(store).EnqueueAsync("k", "jobs", JsonSerializer.SerializeToElement(1), cancellationToken: Ct); // _sys/queues/…
        await store.PutAsync("k", "zz-last", JsonSerializer.SerializeToElement(1), new WriteOptions { Agent = "z" }, Ct);

        var seen = new List<string>();
        string? after = null;
        for (var pages = 0; pages < 10; pages++)
        {
            using var response = await host.Client.GetAsync($"/dashboard/api/ns/k/keys?limit=100{(after is null ? "" : "&after=" + Uri.EscapeDataString(after))}", Ct);
            var page = await response.JsonAsync();
            var keys = page.GetProperty("keys").EnumerateArray().ToList();
            seen.AddRange(keys.Select(k => k.GetProperty("key").GetString()!));
            Assert.All(keys, k => Assert.Equal(1, k.GetProperty("version").GetInt64()));
            after = page.TryGetProperty("next", out var next) ? next.GetString() : null;
            if (after is null) break;
        }
        Assert.Equal(251, seen.Count);
        Assert.Equal(seen.Order(StringComparer.Ordinal), seen);
        Assert.DoesNotContain(seen, k => k.StartsWith("_sys/", StringComparison.Ordinal));
        Assert.Equal("zz-last", seen[^1]);

        using var prefixed = await host.Client.GetAsync("/dashboard/api/ns/k/keys?prefix=item/24&limit=5", Ct);
        var row = (await prefixed.JsonAsync()).GetProperty("keys")[0];
        Assert.Equal("item/240", row.GetProperty("key").GetString());
        Assert.Equal("agent-0", row.GetProperty("writer").GetString());
        Assert.Equal("{\"i\":240}", row.GetProperty("preview").GetString());
    }

    [Fact]
    public async Task Queues_OfANativeQueueService_AreListedThroughTheService_AndTheirChangesRaiseCoordEvents()
    {
        // A queue service whose tasks live outside the served store's key space, like the PostgreSQL and Redis queues.
        await using var elsewhere = ConcordEngine.CreateInMemory(new ConcordEngineOptions());
        var native = new NativeLikeQueues(new StoreQueueService(elsewhere));
        await using var host = await ServerHost.StartAsync(store: ConcordEngine.CreateInMemory(new ConcordEngineOptions { StrictMode = false }),
            build: b => b.Services.AddSingleton<IQueueService>(native));
        await native.EnqueueAsync("n", "invoices", JsonSerializer.SerializeToElement(1), cancellationToken: Ct);
        await native.EnqueueAsync("n", "emails", JsonSerializer.SerializeToElement(2), cancellationToken: Ct);

        using (var response = await host.Client.GetAsync("/dashboard/api/ns/n/queues", Ct))
        {
            var rows = (await response.JsonAsync()).EnumerateArray().ToList();
            Assert.Equal(["emails", "invoices"], rows.Select(r => r.GetProperty("queue").GetString()));
            Assert.All(rows, r => Assert.Equal(1, r.GetProperty("ready").GetInt32()));
        }
        using (var listed = await host.Client.GetAsync("/v1/ns/n/queues?limit=1", Ct))
        {
            var page = await listed.JsonAsync();
            Assert.Equal("emails", page.GetProperty("queues").EnumerateArray().Single().GetString());
            Assert.Equal("emails", page.GetProperty("nextAfter").GetString());
        }

        await using var events = await SseReader.OpenAsync(host.Client, "/dashboard/events?coord=n");
        Assert.Equal("hello", (await events.NextAsync())!.Event);
        // The served store sees nothing of these enqueues: only polling the service can notice them. The watch's first look
        // may come after the first enqueue, so keep changing the queue (a bounded number of times) until it reports.
        using var seen = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var changes = Task.Run(async () =>
        {
            for (var i = 0; i < 40 && !seen.IsCancellationRequested; i++)
            {
                await native.EnqueueAsync("n", "invoices", JsonSerializer.SerializeToElement(i), cancellationToken: Ct);
                await Task.Delay(TimeSpan.FromMilliseconds(250), seen.Token).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }, Ct);
        var coord = await events.NextAsync();
        await seen.CancelAsync();
        await changes;
        Assert.Equal("coord", coord?.Event);
        Assert.Equal("n", coord!.Json.GetProperty("ns").GetString());
    }

    /// <summary>Forwards to a <see cref="StoreQueueService"/> without being one, so the dashboard treats it as native.</summary>
    private sealed class NativeLikeQueues(IQueueService inner) : IQueueService
    {
        public ValueTask<EnqueueResult> EnqueueAsync(string ns, string queue, JsonElement payload, EnqueueOptions? options = null, CancellationToken cancellationToken = default) => inner.EnqueueAsync(ns, queue, payload, options, cancellationToken);
        public ValueTask<PreparedEnqueue> PrepareEnqueueAsync(string ns, string queue, JsonElement payload, EnqueueOptions? options = null, CancellationToken cancellationToken = default) => inner.PrepareEnqueueAsync(ns, queue, payload, options, cancellationToken);
        public ValueTask<LeaseResult> LeaseAsync(string ns, string queue, string consumer, TimeSpan visibilityTimeout, TimeSpan wait = default, CancellationToken cancellationToken = default) => inner.LeaseAsync(ns, queue, consumer, visibilityTimeout, wait, cancellationToken);
        public ValueTask<AckResult> AckAsync(QueueLease lease, IReadOnlyList<TxnOp>? effects = null, CancellationToken cancellationToken = default) => inner.AckAsync(lease, effects, cancellationToken);
        public ValueTask<PreparedQueueOps> PrepareAckAsync(QueueLease lease, CancellationToken cancellationToken = default) => inner.PrepareAckAsync(lease, cancellationToken);
        public ValueTask<NackResult> NackAsync(QueueLease lease, string? reason = null, TimeSpan delay = default, CancellationToken cancellationToken = default) => inner.NackAsync(lease, reason, delay, cancellationToken);
        public ValueTask<ExtendResult> ExtendAsync(QueueLease lease, TimeSpan visibilityTimeout, CancellationToken cancellationToken = default) => inner.ExtendAsync(lease, visibilityTimeout, cancellationToken);
        public ValueTask<int> ReclaimExpiredAsync(string ns, string queue, CancellationToken cancellationToken = default) => inner.ReclaimExpiredAsync(ns, queue, cancellationToken);
        public ValueTask<QueueTask?> GetTaskAsync(string ns, string queue, string taskId, CancellationToken cancellationToken = default) => inner.GetTaskAsync(ns, queue, taskId, cancellationToken);
        public ValueTask<IReadOnlyList<QueueTask>> ListDeadLettersAsync(string ns, string queue, int limit = 100, CancellationToken cancellationToken = default) => inner.ListDeadLettersAsync(ns, queue, limit, cancellationToken);
        public ValueTask<bool> RequeueDeadLetterAsync(string ns, string queue, string taskId, CancellationToken cancellationToken = default) => inner.RequeueDeadLetterAsync(ns, queue, taskId, cancellationToken);
        public ValueTask<bool> DeleteDeadLetterAsync(string ns, string queue, string taskId, CancellationToken cancellationToken = default) => inner.DeleteDeadLetterAsync(ns, queue, taskId, cancellationToken);
        public ValueTask<QueueStats> GetStatsAsync(string ns, string queue, CancellationToken cancellationToken = default) => inner.GetStatsAsync(ns, queue, cancellationToken);
        public ValueTask<QueueListPage> ListQueuesAsync(string ns, string? after = null, int limit = 100, CancellationToken cancellationToken = default) => inner.ListQueuesAsync(ns, after, limit, cancellationToken);
    }

    [Fact]
    public async Task Coordination_ShowsLockHoldersAndTokens_QueueDepthInFlightAndDeadLetters_AndStreams()
    {
        await using var host = await StartAsync();
        using (var acquire = await host.Client.SendAsync(HttpMethod.Post, "/v1/ns/c/locks/acquire", "{\"name\":\"acct-42\",\"owner\":\"fees\",\"ttlMs\":60000}"))
            Assert.Equal(HttpStatusCode.OK, acquire.StatusCode);
        var queues = new StoreQueueService(host.Store);
        for (var i = 0; i < 3; i++) await queues.EnqueueAsync("c", "jobs", JsonSerializer.SerializeToElement(i), cancellationToken: Ct);
        await queues.EnqueueAsync("c", "fragile", JsonSerializer.SerializeToElement("x"), new EnqueueOptions { MaxAttempts = 1 }, Ct);
        var leased = await queues.LeaseAsync("c", "jobs", "worker", TimeSpan.FromMinutes(1), cancellationToken: Ct);
        Assert.NotNull(leased.Lease);
        var doomed = await queues.LeaseAsync("c", "fragile", "worker", TimeSpan.FromMinutes(1), cancellationToken: Ct);
        await queues.NackAsync(doomed.Lease!, "boom", cancellationToken: Ct);
        var streams = new StoreStreamService(host.Store);
        await streams.AppendAsync("c", "orders/1", [new EventData("created", JsonSerializer.SerializeToElement(1)), new EventData("paid", JsonSerializer.SerializeToElement(2))], ExpectedVersion.NoStream, cancellationToken: Ct);

        using var locks = await host.Client.GetAsync("/dashboard/api/ns/c/locks", Ct);
        var lockInfo = (await locks.JsonAsync()).EnumerateArray().Single();
        Assert.Equal("acct-42", lockInfo.GetProperty("name").GetString());
        var holder = lockInfo.GetProperty("holders").EnumerateArray().Single();
        Assert.Equal("fees", holder.GetProperty("owner").GetString());
        Assert.Equal(1, holder.GetProperty("token").GetInt64());

        using var queueResponse = await host.Client.GetAsync("/dashboard/api/ns/c/queues", Ct);
        var byQueue = (await queueResponse.JsonAsync()).EnumerateArray().ToDictionary(q => q.GetProperty("queue").GetString()!);
        Assert.Equal(["fragile", "jobs"], byQueue.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(2, byQueue["jobs"].GetProperty("depth").GetInt32());
        Assert.Equal(1, byQueue["jobs"].GetProperty("inFlight").GetInt32());
        Assert.Equal(1, byQueue["fragile"].GetProperty("dead").GetInt32());
        Assert.Equal("boom", byQueue["fragile"].GetProperty("deadLetters")[0].GetProperty("lastError").GetString());

        using var streamResponse = await host.Client.GetAsync("/dashboard/api/ns/c/streams", Ct);
        var stream = (await streamResponse.JsonAsync()).GetProperty("streams").EnumerateArray().Single();
        Assert.Equal("orders/1", stream.GetProperty("stream").GetString());
        Assert.Equal(2, stream.GetProperty("version").GetInt64());
    }

    [Fact]
    public async Task History_DownloadsAsALabHistory_ThatConcordCheckReads()
    {
        await using var host = await StartAsync();
        (await AsAsync(host.Client, HttpMethod.Put, "/v1/ns/h/state/x", "a", "1")).Dispose();
        (await AsAsync(host.Client, HttpMethod.Get, "/v1/ns/h/state/x", "b")).Dispose();
        using var response = await host.Client.GetAsync("/dashboard/api/ns/h/history.jsonl", Ct);
        var history = HistoryReader.Parse(await response.Content.ReadAsStringAsync(Ct));
        Assert.Equal("register", history.Meta.Model);
        Assert.Equal(4, history.Operations.Count);
        Assert.Equal(["write", "write", "read", "read"], history.Operations.Select(o => o.F));
        Assert.Equal(["a", "a", "b", "b"], history.Operations.Select(o => o.Agent));
    }
}
