using Concord.Client;
using Concord.Coordination.Streams;
using Microsoft.AspNetCore.TestHost;
using static Concord.Server.Tests.TestHttp;

namespace Concord.Server.Tests.Client;

/// <summary>The HTTP coordination clients under a connection that breaks mid-subscription.</summary>
public sealed class HttpCoordinationClientTests
{
    [Fact]
    public async Task Subscribe_ConnectionCutMidEvent_ResumesWithLastEventId_NoLossNoRepeat()
    {
        await using var host = await ServerHost.StartAsync();
        var server = host.App.GetTestServer();
        var cutter = new CuttingHandler(server.CreateHandler(), cutAfterBytes: 700);
        var http = new HttpClient(cutter) { BaseAddress = server.BaseAddress };
        var streams = new HttpStreamService(http, new ConcordClientOptions { RetryDelay = TimeSpan.FromMilliseconds(1) });
        const int total = 20;
        for (var i = 0; i < total; i += 2)
            await streams.AppendAsync("t", "log", [EventData.From("E", i), EventData.From("E", i + 1)], ExpectedVersion.Any, null, Ct);

        var seen = new List<int>();
        await foreach (var e in streams.SubscribeAsync("t", StreamFilter.ForStream("log"), StreamPosition.Start, Ct))
        {
            seen.Add(e.DataAs<int>());
            if (seen.Count == total) break;
        }
        Assert.Equal(Enumerable.Range(0, total), seen);
        Assert.True(cutter.Connections >= 2, "the first connection was cut, so the client must have reconnected");
        Assert.Matches(@"^\d+:\d+$", cutter.LastEventIds[1]);
    }

    /// <summary>Ends the body of the first <c>/events</c> response after a number of bytes, as a dropped connection would.</summary>
    private sealed class CuttingHandler(HttpMessageHandler inner, int cutAfterBytes) : DelegatingHandler(inner)
    {
        public int Connections { get; private set; }

        public List<string> LastEventIds { get; } = [];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            if (request.RequestUri?.AbsolutePath.EndsWith("/events", StringComparison.Ordinal) != true) return response;
            LastEventIds.Add(request.Headers.TryGetValues("Last-Event-ID", out var v) ? string.Join(",", v) : "");
            if (Connections++ > 0) return response;
            var body = await response.Content.ReadAsStreamAsync(cancellationToken);
            var cut = new StreamContent(new TruncatedStream(body, cutAfterBytes));
            foreach (var h in response.Content.Headers) cut.Headers.TryAddWithoutValidation(h.Key, h.Value);
            response.Content = cut;
            return response;
        }
    }

    private sealed class TruncatedStream(Stream inner, int limit) : Stream
    {
        private int _read;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_read >= limit) return 0;
            var n = await inner.ReadAsync(buffer[..Math.Min(buffer.Length, limit - _read)], cancellationToken);
            _read += n;
            return n;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
