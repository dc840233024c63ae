using System.Text;
using System.Text.Json;

namespace Concord.Server.Tests.Http;

internal sealed record SseEvent(string? Id, string? Event, string Data)
{
    public JsonElement Json => JsonDocument.Parse(Data).RootElement.Clone();

    public string Key => Json.GetProperty("record").GetProperty("key").GetString()!;
}

/// <summary>Reads server-sent events from a live response. Every read is bounded so a missing event fails instead of hanging.</summary>
internal sealed class SseReader : IAsyncDisposable
{
    private readonly HttpResponseMessage _response;
    private readonly StreamReader _reader;

    private SseReader(HttpResponseMessage response, Stream stream)
    {
        _response = response;
        _reader = new StreamReader(stream, Encoding.UTF8);
    }

    public HttpResponseMessage Response => _response;

    public static async Task<SseReader> OpenAsync(HttpClient client, string url, string? lastEventId = null)
    {
        var m = new HttpRequestMessage(HttpMethod.Get, url);
        m.Headers.Accept.ParseAdd("text/event-stream");
        if (lastEventId is not null) m.Headers.TryAddWithoutValidation("Last-Event-ID", lastEventId);
        var response = await client.SendAsync(m, HttpCompletionOption.ResponseHeadersRead, TestContext.Current.CancellationToken);
        if (!response.IsSuccessStatusCode)
            Assert.Fail($"watch failed: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)}");
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        return new SseReader(response, await response.Content.ReadAsStreamAsync(TestContext.Current.CancellationToken));
    }

    /// <summary>The next event (comments skipped); null at end of stream.</summary>
    public async Task<SseEvent?> NextAsync()
    {
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        bound.CancelAfter(TimeSpan.FromSeconds(10));
        string? id = null, name = null;
        var data = new StringBuilder();
        while (await _reader.ReadLineAsync(bound.Token) is { } line)
        {
            if (line.Length == 0)
            {
                if (data.Length > 0) return new SseEvent(id, name, data.ToString());
                id = name = null;
                continue;
            }
            if (line.StartsWith(':')) continue;
            if (line.StartsWith("id:", StringComparison.Ordinal)) id = line[3..].Trim();
            else if (line.StartsWith("event:", StringComparison.Ordinal)) name = line[6..].Trim();
            else if (line.StartsWith("data:", StringComparison.Ordinal)) data.Append(line[5..].TrimStart());
        }
        return null;
    }

    public async Task<List<SseEvent>> TakeAsync(int count)
    {
        var events = new List<SseEvent>();
        while (events.Count < count) events.Add(await NextAsync() ?? throw new InvalidOperationException($"stream ended after {events.Count} events"));
        return events;
    }

    public ValueTask DisposeAsync()
    {
        _reader.Dispose();
        _response.Dispose();
        return ValueTask.CompletedTask;
    }
}
