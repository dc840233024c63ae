using System.Net;
using System.Text.Json;
using Concord.Client;
using Concord.Engine;
using Microsoft.AspNetCore.TestHost;
using static Concord.Server.Tests.TestHttp;

namespace Concord.Server.Tests.Client;

public sealed class ConcordHttpStoreTests
{
    private static JsonElement J(string json) => JsonDocument.Parse(json).RootElement.Clone();

    private static (ConcordHttpStore Store, HttpClient Http) ClientFor(ServerHost host, Func<HttpMessageHandler, DelegatingHandler>? wrap = null, ConcordClientOptions? options = null, string? apiKey = null)
    {
        var server = host.App.GetTestServer();
        HttpMessageHandler handler = server.CreateHandler();
        if (wrap is not null) handler = wrap(handler);
        var http = new HttpClient(handler) { BaseAddress = server.BaseAddress };
        options ??= new ConcordClientOptions { RetryDelay = TimeSpan.FromMilliseconds(1) };
        if (apiKey is not null) options = options with { ApiKey = apiKey };
        return (new ConcordHttpStore(http, options), http);
    }

    [Fact]
    public async Task Session_BasicOperations_RoundTripOverHttp()
    {
        await using var host = await ServerHost.StartAsync();
        var (store, _) = ClientFor(host);
        var s = new ConcordSession(store, "t", "agent-ü");
        var created = await s.PutAsync("acct/1", J("""{"fees":1}"""), Expect.Absent, cancellationToken: Ct);
        Assert.True(created.IsApplied);
        Assert.Equal(1, created.Version);
        Assert.Equal("agent-ü", created.Record!.Writer);
        var stale = await s.PutAsync("acct/1", J("""{"fees":2}"""), Expect.Version(7), cancellationToken: Ct);
        Assert.Equal(ConflictKind.VersionMismatch, stale.Conflict);
        Assert.Equal(1, stale.Record!.Version);
        var blind = await s.PutAsync("acct/1", J("""{"fees":2}"""), cancellationToken: Ct);
        Assert.Equal(ConflictKind.BlindWriteRefused, blind.Conflict);
        var patched = await s.IncrementAsync("acct/1", 2, "/fees", cancellationToken: Ct);
        Assert.Equal(2, patched.Version);
        var read = await s.GetAsync("acct/1", Ct);
        Assert.Equal(3, read!.Value.GetProperty("fees").GetDouble());
        Assert.Null(await s.GetAsync("nope", Ct));
        var deleted = await s.DeleteAsync("acct/1", Expect.Version(2), cancellationToken: Ct);
        Assert.True(deleted.IsApplied);
        Assert.True(deleted.Record!.IsDeleted);
        var missing = await s.DeleteAsync("acct/1", cancellationToken: Ct);
        Assert.Equal(ConflictKind.NotFound, missing.Conflict);
    }

    [Fact]
    public async Task UpdateAsync_ConcurrentAgentsOverHttp_NoLostUpdate()
    {
        await using var host = await ServerHost.StartAsync();
        var (store, _) = ClientFor(host);
        await store.PutAsync("t", "counter", J("""{"n":0}"""), null, Ct);
        const int agents = 8, each = 5;
        await Task.WhenAll(Enumerable.Range(0, agents).Select(a => Task.Run(async () =>
        {
            var s = new ConcordSession(store, "t", $"agent-{a}", new SessionOptions { Retry = new RetryOptions { MaxAttempts = 200, BaseDelay = TimeSpan.FromMilliseconds(1), MaxDelay = TimeSpan.FromMilliseconds(5) } });
            for (var i = 0; i < each; i++)
            {
                // One idempotency key per logical update, reused by every CAS attempt with a different payload.
                var result = await s.UpdateAsync<Counter>("counter", c => new Counter(c!.N + 1), new UpdateOptions { IdempotencyKey = $"a{a}-i{i}" }, Ct);
                Assert.True(result.IsApplied);
            }
        }, Ct)));
        var final = await store.GetAsync("t", "counter", null, Ct);
        Assert.Equal(agents * each, final!.Value.GetProperty("n").GetInt32());
        Assert.Equal(agents * each + 1, final.Version);
    }

    private sealed record Counter(int N);

    [Fact]
    public async Task Patch_ReplyLostOnce_RetriedWithSameKeyAndAppliedOnce()
    {
        await using var host = await ServerHost.StartAsync();
        var lossy = new LoseFirstReplyHandler();
        var (store, _) = ClientFor(host, inner => { lossy.InnerHandler = inner; return lossy; });
        var result = await store.PatchAsync("t", "n", JsonPatch.Create().Increment("/n", 1), null, Ct);
        Assert.True(result.IsApplied);
        Assert.True(result.Replayed);
        Assert.Equal(2, lossy.Sent.Count);
        Assert.Equal(lossy.Sent[0], lossy.Sent[1]);
        Assert.NotNull(lossy.Sent[0]);
        Assert.Equal(1, (await host.Store.GetAsync("t", "n", null, Ct))!.Value.GetProperty("n").GetDouble());
    }

    [Fact]
    public async Task Patch_ReplyLostWithoutIdempotency_IsNotRetried()
    {
        await using var host = await ServerHost.StartAsync();
        var lossy = new LoseFirstReplyHandler();
        var (store, _) = ClientFor(host, inner => { lossy.InnerHandler = inner; return lossy; },
            new ConcordClientOptions { AutoIdempotency = false, RetryDelay = TimeSpan.FromMilliseconds(1) });
        await Assert.ThrowsAsync<HttpRequestException>(async () => await store.PatchAsync("t", "n", JsonPatch.Create().Increment("/n", 1), null, Ct));
        Assert.Single(lossy.Sent);
        Assert.Equal(1, (await host.Store.GetAsync("t", "n", null, Ct))!.Value.GetProperty("n").GetDouble());
    }

    [Fact]
    public async Task Watch_ConnectionDropsMidStream_ResumesWithoutLossOrDuplicate()
    {
        await using var host = await ServerHost.StartAsync();
        for (var i = 0; i < 3; i++)
        {
            var ops = Enumerable.Range(0, 4).Select(k => TxnOp.Put($"w/{i}/{k}", J($"{k}"))).ToList();
            await host.Store.TransactAsync("t", new TxnRequest { Then = ops }, null, Ct);
        }
        // Cut the first stream after 700 bytes (somewhere inside the second transaction's events).
        var cutter = new CutFirstStreamHandler(700);
        var (store, _) = ClientFor(host, inner => { cutter.InnerHandler = inner; return cutter; });
        var seen = new List<string>();
        await foreach (var change in store.WatchAsync("t", new WatchRequest { Prefix = "w/", FromRevision = 1 }, Ct))
        {
            seen.Add(change.Key);
            if (seen.Count == 12) break;
        }
        Assert.Equal(Enumerable.Range(0, 3).SelectMany(i => Enumerable.Range(0, 4).Select(k => $"w/{i}/{k}")), seen);
        Assert.True(cutter.Connections >= 2, "the stream was never cut");
        Assert.StartsWith("1.", cutter.LastEventIdOnReconnect);
    }

    [Fact]
    public async Task Errors_MapBackToContractExceptions()
    {
        var engine = ConcordEngine.CreateInMemory(new ConcordEngineOptions { StrictMode = false, RetainedRevisions = 2, MaxValueBytes = 64 });
        for (var i = 0; i < 1100; i++) await engine.PutAsync("t", "k", J($"{i}"), null, Ct);
        await using var host = await ServerHost.StartAsync(store: engine);
        var (store, _) = ClientFor(host);
        await Assert.ThrowsAsync<InvalidKeyException>(async () => await store.GetAsync("bad ns", "k", null, Ct));
        var compacted = await Assert.ThrowsAsync<RevisionCompactedException>(async () => await store.GetAsync("t", "k", new ReadOptions { AtRevision = 1 }, Ct));
        Assert.Equal(1, compacted.Requested);
        await Assert.ThrowsAsync<UnknownRevisionException>(async () => await store.GetAsync("t", "k", new ReadOptions { AtRevision = 99_999 }, Ct));
        await Assert.ThrowsAsync<ValueTooLargeException>(async () => await store.PutAsync("t", "big", J("\"" + new string('x', 100) + "\""), null, Ct));
        await Assert.ThrowsAsync<InvalidPatchException>(async () => await store.PatchAsync("t", "k2", JsonPatch.Parse("""[{"op":"remove","path":"/nothing/here"}]"""), null, Ct));
        await store.PutAsync("t", "once", J("1"), new WriteOptions { IdempotencyKey = "same" }, Ct);
        var reused = await Assert.ThrowsAsync<IdempotencyKeyReusedException>(async () => await store.PutAsync("t", "once", J("2"), new WriteOptions { IdempotencyKey = "same" }, Ct));
        Assert.Equal("same", reused.IdempotencyKey);
        await Assert.ThrowsAsync<RevisionCompactedException>(async () =>
        {
            await foreach (var _ in store.WatchAsync("t", new WatchRequest { FromRevision = 1 }, Ct)) { }
        });
    }

    [Fact]
    public async Task Errors_Auth_SurfacesAsConcordHttpException()
    {
        await using var host = await ServerHost.StartWithAuthAsync();
        var (anonymous, _) = ClientFor(host);
        var e401 = await Assert.ThrowsAsync<ConcordHttpException>(async () => await anonymous.GetAsync("a", "k", null, Ct));
        Assert.Equal(HttpStatusCode.Unauthorized, e401.Status);
        var (other, _) = ClientFor(host, apiKey: ServerHost.WriterB);
        var e403 = await Assert.ThrowsAsync<ConcordHttpException>(async () => await other.PutAsync("a", "k", J("1"), null, Ct));
        Assert.Equal(HttpStatusCode.Forbidden, e403.Status);
        Assert.Equal("forbidden", e403.Code);
        var (mine, _) = ClientFor(host, apiKey: ServerHost.WriterA);
        Assert.True((await mine.PutAsync("a", "k", J("1"), null, Ct)).IsApplied);
    }

    /// <summary>Delivers the first request to the server, then pretends the reply was lost.</summary>
    private sealed class LoseFirstReplyHandler : DelegatingHandler
    {
        public List<string?> Sent { get; } = [];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Sent.Add(request.Headers.TryGetValues("Idempotency-Key", out var v) ? v.Single() : null);
            var response = await base.SendAsync(request, cancellationToken);
            if (Sent.Count > 1) return response;
            response.Dispose();
            throw new HttpRequestException("connection reset (simulated after the server applied the request)");
        }
    }

    /// <summary>Breaks the first streamed response after a number of bytes, and records the resume point of the next.</summary>
    private sealed class CutFirstStreamHandler(int cutAfter) : DelegatingHandler
    {
        public int Connections { get; private set; }
        public string? LastEventIdOnReconnect { get; private set; }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Connections++;
            if (Connections > 1) LastEventIdOnReconnect = request.Headers.TryGetValues("Last-Event-ID", out var v) ? v.Single() : null;
            var response = await base.SendAsync(request, cancellationToken);
            if (Connections == 1)
            {
                var inner = await response.Content.ReadAsStreamAsync(cancellationToken);
                var content = new StreamContent(new CuttingStream(inner, cutAfter));
                foreach (var h in response.Content.Headers) content.Headers.TryAddWithoutValidation(h.Key, h.Value);
                response.Content = content;
            }
            return response;
        }
    }

    private sealed class CuttingStream(Stream inner, int limit) : Stream
    {
        private int _read;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_read >= limit) throw new IOException("connection reset (simulated)");
            var n = await inner.ReadAsync(buffer[..Math.Min(buffer.Length, limit - _read)], cancellationToken);
            _read += n;
            return n;
        }

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
