using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Concord.Coordination.Streams;
using Concord.Wire;

namespace Concord.Client;

/// <summary>
/// <see cref="IStreamService"/> over the Concord HTTP API: appends, reads, checkpoints and subscriptions use the stream
/// routes (<c>/v1/ns/{ns}/streams…</c>, <c>/events</c> as server-sent events resumed with <c>Last-Event-ID</c>).
/// Thread-safe.
/// </summary>
/// <remarks>
/// The outbox operations (<see cref="PrepareAppendAsync"/>, <see cref="AppendWithAsync"/>, <see cref="HandleOnceAsync"/>)
/// and the change feed run the store-level algorithm over the HTTP store: they write the streams' reserved
/// <c>_sys/</c> keys in the caller's transaction, which needs an API key with admin rights.
/// </remarks>
public sealed class HttpStreamService : IStreamService
{
    private readonly ConcordHttpStore _http;
    private readonly HttpClient _client;
    private readonly ConcordClientOptions _options;
    private readonly StoreStreamService _store;

    /// <summary>Creates the client. The service does not dispose <paramref name="http"/>.</summary>
    public HttpStreamService(HttpClient http, ConcordClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(http);
        _client = http;
        _options = options ?? new ConcordClientOptions();
        _http = new ConcordHttpStore(http, _options);
        _store = new StoreStreamService(_http, new StreamServiceOptions { TimeProvider = _options.TimeProvider });
    }

    private static string Ns(string ns) => $"v1/ns/{Uri.EscapeDataString(ns)}";

    private static string StreamUrl(string ns, string stream) => $"{Ns(ns)}/streams/{string.Join('/', stream.Split('/').Select(Uri.EscapeDataString))}";

    /// <inheritdoc />
    public async ValueTask<AppendResult> AppendAsync(string ns, string stream, IReadOnlyList<EventData> events, ExpectedVersion expectedVersion, AppendOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(events);
        _ = StreamFilter.ForStream(stream); // validates the name
        var json = JsonSerializer.Serialize(new AppendRequestDto { Events = [.. events.Select(EventDataDto.From)], ExpectedVersion = AppendRequestDto.Encode(expectedVersion) }, WireJson.Options);
        // Event ids are fixed before the first attempt, so a retry with an idempotency key sends the same payload.
        var idempotencyKey = options?.IdempotencyKey ?? (_options.AutoIdempotency ? Guid.NewGuid().ToString("N") : null);
        using var response = await _http.SendAsync(() =>
        {
            var m = new HttpRequestMessage(HttpMethod.Post, StreamUrl(ns, stream)) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
            if (idempotencyKey is not null) m.Headers.TryAddWithoutValidation("Idempotency-Key", ConcordHttpStore.EncodeHeader(idempotencyKey));
            if (options?.Agent is { } agent) m.Headers.TryAddWithoutValidation("Concord-Agent", ConcordHttpStore.EncodeHeader(agent));
            return m;
        }, cancellationToken, retryable: idempotencyKey is not null).ConfigureAwait(false);
        if (response.IsSuccessStatusCode) return (await HttpQueueService.ReadAsync<AppendResponseDto>(response, cancellationToken).ConfigureAwait(false)).ToResult();
        var problem = await ConcordHttpStore.ReadProblemAsync(response, cancellationToken).ConfigureAwait(false);
        if (problem?.Code == "wrong-expected-version")
        {
            var current = problem.Root.TryGetProperty("currentVersion", out var v) && v.TryGetInt64(out var n) ? n : 0;
            return new AppendResult(AppendStatus.WrongExpectedVersion, stream, current, default, default, problem.Detail);
        }
        throw ConcordHttpStore.ToException(response.StatusCode, problem);
    }

    /// <inheritdoc />
    public ValueTask<PreparedAppend> PrepareAppendAsync(string ns, IReadOnlyList<StreamAppend> appends, CancellationToken cancellationToken = default) =>
        _store.PrepareAppendAsync(ns, appends, cancellationToken);

    /// <inheritdoc />
    public ValueTask<AppendResult> AppendWithAsync(string ns, string stream, IReadOnlyList<EventData> events, ExpectedVersion expectedVersion, IReadOnlyList<TxnOp> stateOps,
        AppendOptions? options = null, CancellationToken cancellationToken = default) =>
        _store.AppendWithAsync(ns, stream, events, expectedVersion, stateOps, options, cancellationToken);

    /// <inheritdoc />
    public async ValueTask<StreamInfo?> GetStreamAsync(string ns, string stream, CancellationToken cancellationToken = default)
    {
        _ = StreamFilter.ForStream(stream); // validates the name
        var page = await ReadPageAsync(StreamUrl(ns, stream) + "?count=0", cancellationToken).ConfigureAwait(false);
        return page.Version == 0 ? null : new StreamInfo(page.Stream, page.Version, page.LastRevision);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<RecordedEvent>> ReadStreamAsync(string ns, string stream, long fromVersion, int count, ReadDirection direction = ReadDirection.Forward, CancellationToken cancellationToken = default)
    {
        _ = StreamFilter.ForStream(stream); // validates the name
        if (count < 1) throw new InvalidRequestException($"count must be at least 1 (got {count})");
        var url = $"{StreamUrl(ns, stream)}?from={fromVersion}&count={count}&direction={(direction == ReadDirection.Backward ? "backward" : "forward")}";
        using var response = await _http.SendAsync(() => new HttpRequestMessage(HttpMethod.Get, url), cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            var problem = await ConcordHttpStore.ReadProblemAsync(response, cancellationToken).ConfigureAwait(false);
            if (problem?.Code == "stream-not-found") return [];
            throw ConcordHttpStore.ToException(response.StatusCode, problem);
        }
        var page = await HttpQueueService.ReadAsync<StreamPageDto>(response, cancellationToken).ConfigureAwait(false);
        return [.. page.Events.Select(e => e.ToEvent())];
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<RecordedEvent>> ReadAllAsync(string ns, StreamPosition from, int count, StreamFilter? filter = null, ReadDirection direction = ReadDirection.Forward, CancellationToken cancellationToken = default)
    {
        var url = new StringBuilder($"{Ns(ns)}/streams?from={from}&count={count}&direction={(direction == ReadDirection.Backward ? "backward" : "forward")}");
        AppendFilter(url, filter);
        var page = await GetAsync<EventsPageDto>(url.ToString(), cancellationToken).ConfigureAwait(false);
        return [.. page.Events.Select(e => e.ToEvent())];
    }

    /// <inheritdoc />
    public async ValueTask<StreamPosition> GetEndPositionAsync(string ns, CancellationToken cancellationToken = default)
    {
        var page = await GetAsync<EventsPageDto>($"{Ns(ns)}/streams?from={StreamPosition.End}&count=1", cancellationToken).ConfigureAwait(false);
        return CoordinationWire.ParsePosition(page.End);
    }

    /// <inheritdoc />
    /// <remarks>
    /// The subscription survives dropped connections: the client reconnects (up to <see cref="ConcordClientOptions.MaxAttempts"/>
    /// times in a row) with <c>Last-Event-ID</c> set to the position of the last event it delivered.
    /// </remarks>
    public async IAsyncEnumerable<RecordedEvent> SubscribeAsync(string ns, StreamFilter filter, StreamPosition after, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var url = new StringBuilder($"{Ns(ns)}/events?after={after}");
        AppendFilter(url, filter);
        var last = after;
        var failures = 0;
        var delay = _options.RetryDelay;
        while (true)
        {
            using var message = new HttpRequestMessage(HttpMethod.Get, url.ToString());
            message.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
            if (_options.ApiKey is not null) message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _options.ApiKey);
            message.Headers.TryAddWithoutValidation("Last-Event-ID", last.ToString());
            HttpResponseMessage? response = null;
            try
            {
                response = await _client.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException)
            {
            }
            if (response is not null && response.StatusCode != HttpStatusCode.ServiceUnavailable)
            {
                using (response)
                {
                    await ConcordHttpStore.ThrowIfErrorAsync(response, cancellationToken).ConfigureAwait(false);
                    using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), Encoding.UTF8);
                    string? eventName = null;
                    var data = new StringBuilder();
                    while (true)
                    {
                        string? line;
                        try
                        {
                            line = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false);
                        }
                        catch (Exception e) when (e is IOException or HttpRequestException && !cancellationToken.IsCancellationRequested)
                        {
                            break; // connection dropped: resume below
                        }
                        if (line is null) break;
                        if (line.Length == 0)
                        {
                            if (data.Length > 0)
                            {
                                if (eventName == "error") throw SubscriptionError(data.ToString());
                                var e = JsonSerializer.Deserialize<RecordedEventDto>(data.ToString(), WireJson.Options)!.ToEvent();
                                last = e.Position;
                                failures = 0;
                                delay = _options.RetryDelay;
                                yield return e;
                            }
                            eventName = null;
                            data.Clear();
                        }
                        else if (line.StartsWith("data:", StringComparison.Ordinal)) data.Append(line.AsSpan(5).TrimStart());
                        else if (line.StartsWith("event:", StringComparison.Ordinal)) eventName = line[6..].Trim();
                    }
                }
            }
            else response?.Dispose();
            cancellationToken.ThrowIfCancellationRequested();
            if (++failures >= _options.MaxAttempts)
                throw new StoreUnavailableException($"The event subscription was interrupted {failures} times in a row", null, isTransient: true);
            await Task.Delay(delay, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
            delay *= 2;
        }
    }

    /// <inheritdoc />
    public Task RunConsumerGroupAsync(string ns, string group, StreamFilter filter, Func<RecordedEvent, CancellationToken, ValueTask> handler,
        ConsumerGroupOptions? options = null, CancellationToken cancellationToken = default) =>
        RunConsumerGroupCoreAsync(ns, group, filter, handler, options ?? new ConsumerGroupOptions(), cancellationToken);

    private async Task RunConsumerGroupCoreAsync(string ns, string group, StreamFilter filter, Func<RecordedEvent, CancellationToken, ValueTask> handler,
        ConsumerGroupOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentNullException.ThrowIfNull(handler);
        if (options.CheckpointEvery < 1) throw new InvalidRequestException("CheckpointEvery must be at least 1");
        var start = await GetCheckpointAsync(ns, group, cancellationToken).ConfigureAwait(false)
            ?? (options.StartFromEnd ? await GetEndPositionAsync(ns, cancellationToken).ConfigureAwait(false) : StreamPosition.Start);
        var handled = start;
        var unsaved = 0;
        try
        {
            await foreach (var e in SubscribeAsync(ns, filter, start, cancellationToken).ConfigureAwait(false))
            {
                await handler(e, cancellationToken).ConfigureAwait(false);
                // At-least-once: the checkpoint moves only after the handler finished.
                handled = e.Position;
                if (++unsaved >= options.CheckpointEvery)
                {
                    await SaveCheckpointAsync(ns, group, handled, cancellationToken).ConfigureAwait(false);
                    unsaved = 0;
                }
            }
        }
        finally
        {
            if (unsaved > 0)
            {
                try
                {
                    await SaveCheckpointAsync(ns, group, handled, CancellationToken.None).ConfigureAwait(false);
                }
                catch (ConcordException)
                {
                    // The server is gone; the events after the stored checkpoint are delivered again next time.
                }
            }
        }
    }

    /// <inheritdoc />
    public async ValueTask<StreamPosition?> GetCheckpointAsync(string ns, string group, CancellationToken cancellationToken = default)
    {
        var dto = await GetAsync<CheckpointDto>($"{Ns(ns)}/consumers/{Uri.EscapeDataString(group)}/checkpoint", cancellationToken).ConfigureAwait(false);
        return dto.Position is null ? null : CoordinationWire.ParsePosition(dto.Position);
    }

    /// <inheritdoc />
    public async ValueTask<bool> SaveCheckpointAsync(string ns, string group, StreamPosition position, CancellationToken cancellationToken = default)
    {
        var json = JsonSerializer.Serialize(new CheckpointDto(position.ToString()), WireJson.Options);
        using var response = await _http.SendAsync(() => new HttpRequestMessage(HttpMethod.Put, $"{Ns(ns)}/consumers/{Uri.EscapeDataString(group)}/checkpoint")
        {
            Content = new StringContent(json, Encoding.UTF8, "application/json"),
        }, cancellationToken).ConfigureAwait(false); // checkpoints only move forward: repeating a save is harmless
        using var doc = await HttpQueueService.ReadAsync<JsonDocument>(response, cancellationToken).ConfigureAwait(false);
        return doc.RootElement.GetProperty("saved").GetBoolean();
    }

    /// <inheritdoc />
    public ValueTask<HandleResult> HandleOnceAsync(string ns, string group, RecordedEvent recordedEvent, IReadOnlyList<TxnOp> effects, CancellationToken cancellationToken = default) =>
        _store.HandleOnceAsync(ns, group, recordedEvent, effects, cancellationToken);

    /// <inheritdoc />
    public IAsyncEnumerable<StateChange> ReadChangesAsync(string ns, string prefix, long fromRevision, CancellationToken cancellationToken = default) =>
        _store.ReadChangesAsync(ns, prefix, fromRevision, cancellationToken);

    // ------------------------------------------------------------------ plumbing

    private static void AppendFilter(StringBuilder url, StreamFilter? filter)
    {
        if (filter?.Stream is { } stream) url.Append("&stream=").Append(Uri.EscapeDataString(stream));
        else if (filter is { Prefix.Length: > 0 }) url.Append("&prefix=").Append(Uri.EscapeDataString(filter.Prefix));
    }

    private async Task<StreamPageDto> ReadPageAsync(string url, CancellationToken cancellationToken) => await GetAsync<StreamPageDto>(url, cancellationToken).ConfigureAwait(false);

    private async Task<T> GetAsync<T>(string url, CancellationToken cancellationToken)
    {
        using var response = await _http.SendAsync(() => new HttpRequestMessage(HttpMethod.Get, url), cancellationToken).ConfigureAwait(false);
        return await HttpQueueService.ReadAsync<T>(response, cancellationToken).ConfigureAwait(false);
    }

    private static ConcordException SubscriptionError(string data)
    {
        using var err = JsonDocument.Parse(data);
        var detail = err.RootElement.TryGetProperty("detail", out var d) ? d.GetString() ?? "" : "";
        return new StoreUnavailableException(detail.Length > 0 ? detail : "The event subscription failed", null, isTransient: true);
    }
}
