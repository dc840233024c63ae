using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Concord.Engine;
using Concord.Internal;
using Concord.Wire;

namespace Concord.Client;

/// <summary>Settings of <see cref="ConcordHttpStore"/>.</summary>
public sealed record ConcordClientOptions
{
    /// <summary>API key sent as a bearer token. <value>Default: null.</value></summary>
    public string? ApiKey { get; init; }

    /// <summary>
    /// Give every mutation an idempotency key when the caller did not, so retries (this client's, or a Polly handler's
    /// resending the same request) can never apply twice. <value>Default: true.</value>
    /// </summary>
    public bool AutoIdempotency { get; init; } = true;

    /// <summary>Attempts for transient failures (connection errors, 503). <value>Default: 3.</value></summary>
    public int MaxAttempts { get; init; } = 3;

    /// <summary>Delay before the second attempt, doubled after. <value>Default: 100 ms.</value></summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Clock for retry delays. <value>Default: system.</value></summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}

/// <summary>
/// <see cref="IConcordStore"/> over the Concord HTTP API. Give it an <see cref="HttpClient"/> whose BaseAddress is the
/// server (from <c>IHttpClientFactory</c> if you like, with any handlers such as Polly's). Thread-safe.
/// </summary>
public sealed class ConcordHttpStore : IConcordStore
{
    private const string RecordMediaType = "application/vnd.concord.record+json";
    private readonly HttpClient _http;
    private readonly ConcordClientOptions _options;

    /// <summary>The newest store revision any response has shown this client (from Concord-Revision headers).</summary>
    private long _observed;

    /// <summary>Creates the client. The store does not dispose <paramref name="http"/>.</summary>
    public ConcordHttpStore(HttpClient http, ConcordClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(http);
        _http = http;
        _options = options ?? new ConcordClientOptions();
    }

    /// <inheritdoc />
    public async ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default)
    {
        using var response = await SendAsync(() => new HttpRequestMessage(HttpMethod.Get, "readyz"), cancellationToken).ConfigureAwait(false);
        await ThrowIfErrorAsync(response, cancellationToken).ConfigureAwait(false);
        using var doc = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), default, cancellationToken).ConfigureAwait(false);
        return doc.RootElement.GetProperty("revision").GetInt64();
    }

    /// <inheritdoc />
    public async ValueTask<ConcordRecord?> GetAsync(string ns, string key, ReadOptions? options = null, CancellationToken cancellationToken = default)
    {
        KeyRules.ValidateNamespace(ns);
        KeyRules.ValidateKey(key);
        var url = StateUrl(ns, key) + (options?.AtRevision is { } r ? $"?revision={r}" : "");
        using var response = await SendAsync(() =>
        {
            var m = new HttpRequestMessage(HttpMethod.Get, url);
            m.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(RecordMediaType));
            if (options?.Agent is { } agent) m.Headers.TryAddWithoutValidation("Concord-Agent", EncodeHeader(agent));
            return m;
        }, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound && await ProblemCodeAsync(response, cancellationToken).ConfigureAwait(false) == "key-not-found") return null;
        await ThrowIfErrorAsync(response, cancellationToken).ConfigureAwait(false);
        var dto = await response.Content.ReadFromJsonAsync<RecordDto>(WireJson.Options, cancellationToken).ConfigureAwait(false);
        return dto?.ToRecord();
    }

    /// <inheritdoc />
    public async ValueTask<ListResult> ListAsync(string ns, ListRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        KeyRules.ValidateNamespace(ns);
        KeyRules.ValidatePrefix(request.Prefix);
        if (request.Limit is < 1 or > 10_000) throw new InvalidRequestException($"List limit must be between 1 and 10000 (got {request.Limit})");
        var query = new StringBuilder($"v1/ns/{Uri.EscapeDataString(ns)}/state?prefix={Uri.EscapeDataString(request.Prefix)}&limit={request.Limit}");
        if (request.After is not null) query.Append("&after=").Append(Uri.EscapeDataString(request.After));
        if (request.AtRevision is { } r) query.Append("&revision=").Append(r);
        using var response = await SendAsync(() => new HttpRequestMessage(HttpMethod.Get, query.ToString()), cancellationToken).ConfigureAwait(false);
        await ThrowIfErrorAsync(response, cancellationToken).ConfigureAwait(false);
        var dto = await response.Content.ReadFromJsonAsync<ListResultDto>(WireJson.Options, cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidRequestException("empty list response");
        return new ListResult([.. dto.Records.Select(x => x.ToRecord())], dto.Revision, dto.NextAfter);
    }

    /// <inheritdoc />
    public async ValueTask<WriteResult> PutAsync(string ns, string key, JsonElement value, WriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= WriteOptions.Default;
        Validate(ns, new TxnOp(TxnOpKind.Put, key, value, null, options.Expect, options.Ttl));
        return await WriteAsync(HttpMethod.Put, ns, key, value.GetRawText(), "application/json", options, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<WriteResult> DeleteAsync(string ns, string key, WriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= WriteOptions.Default;
        Validate(ns, new TxnOp(TxnOpKind.Delete, key, default, null, options.Expect));
        return await WriteAsync(HttpMethod.Delete, ns, key, null, null, options, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<WriteResult> PatchAsync(string ns, string key, JsonPatch patch, WriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(patch);
        options ??= WriteOptions.Default;
        Validate(ns, new TxnOp(TxnOpKind.Patch, key, default, patch, options.Expect, options.Ttl));
        return await WriteAsync(HttpMethod.Patch, ns, key, patch.ToString(), "application/json-patch+json", options, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The engine's own checks, with its exceptions, before anything is sent: some invalid keys cannot even be written
    /// in a URL, and the caller should not be able to tell a remote store from a local one by how bad input fails.
    /// The value size limit is the server's to enforce (413 → <see cref="ValueTooLargeException"/>).
    /// </summary>
    private static void Validate(string ns, TxnOp op) => TxnEvaluator.Validate(ns, new TxnRequest { Then = [op] }, int.MaxValue);

    private async ValueTask<WriteResult> WriteAsync(HttpMethod method, string ns, string key, string? body, string? mediaType, WriteOptions options, CancellationToken cancellationToken)
    {
        var idempotencyKey = IdempotencyKeyFor(options);
        using var response = await SendAsync(() =>
        {
            var m = new HttpRequestMessage(method, StateUrl(ns, key));
            if (body is not null) m.Content = new StringContent(body, Encoding.UTF8, mediaType!);
            AddWriteHeaders(m, options, idempotencyKey);
            return m;
        }, cancellationToken, retryable: idempotencyKey is not null).ConfigureAwait(false);
        var revision = HeaderLong(response, "Concord-Revision");
        var replayed = response.Headers.TryGetValues("Idempotent-Replayed", out var r) && r.Contains("true");
        if (response.IsSuccessStatusCode)
        {
            var dto = await response.Content.ReadFromJsonAsync<RecordDto>(WireJson.Options, cancellationToken).ConfigureAwait(false);
            return new WriteResult(key, ConflictKind.None, dto?.ToRecord(), revision, replayed);
        }
        var problem = await ReadProblemAsync(response, cancellationToken).ConfigureAwait(false);
        if (problem is { Conflict: { } kind })
            return new WriteResult(key, kind, problem.Current?.ToRecord(), problem.Revision ?? revision, replayed, problem.Detail);
        if (method == HttpMethod.Delete && problem?.Code == "key-not-found")
            return new WriteResult(key, ConflictKind.NotFound, null, revision, replayed, problem.Detail);
        throw ToException(response.StatusCode, problem);
    }

    /// <inheritdoc />
    public async ValueTask<TxnResult> TransactAsync(string ns, TxnRequest request, WriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        TxnEvaluator.Validate(ns, request, int.MaxValue);
        options ??= WriteOptions.Default;
        var idempotencyKey = request.Then.Concat(request.Else).Any(o => o.Kind != TxnOpKind.Get) ? IdempotencyKeyFor(options) : options.IdempotencyKey;
        var json = JsonSerializer.Serialize(WireMapper.ToDto(request), WireJson.Options);
        using var response = await SendAsync(() =>
        {
            var m = new HttpRequestMessage(HttpMethod.Post, $"v1/ns/{Uri.EscapeDataString(ns)}/txn") { Content = new StringContent(json, Encoding.UTF8, "application/json") };
            AddWriteHeaders(m, options with { Expect = default }, idempotencyKey);
            return m;
        }, cancellationToken, retryable: idempotencyKey is not null || request.Then.Concat(request.Else).All(o => o.Kind == TxnOpKind.Get)).ConfigureAwait(false);
        await ThrowIfErrorAsync(response, cancellationToken).ConfigureAwait(false);
        var dto = await response.Content.ReadFromJsonAsync<TxnResultDto>(WireJson.Options, cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidRequestException("empty transaction response");
        return WireMapper.FromDto(dto);
    }

    /// <inheritdoc />
    /// <remarks>
    /// The stream survives dropped connections: the client reconnects (up to <see cref="ConcordClientOptions.MaxAttempts"/>
    /// times in a row) with <c>Last-Event-ID</c> set to the last event it delivered, and the server resumes exactly after
    /// it — no change is lost or repeated, even inside a multi-key transaction.
    /// </remarks>
    public async IAsyncEnumerable<ChangeEvent> WatchAsync(string ns, WatchRequest request, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        KeyRules.ValidateNamespace(ns);
        request.Validate(); // the same rules as every store, before anything goes on the wire
        // "From now" over HTTP: the server can only subscribe when the request arrives, after writes this client made or
        // saw before calling. Start right after the newest revision this client has observed instead, so nothing it
        // caused or read is missed or repeated (a change it never saw is indistinguishable from a concurrent one).
        var fromNow = request.FromRevision == 0 && Volatile.Read(ref _observed) > 0;
        var from = fromNow ? Volatile.Read(ref _observed) + 1 : request.FromRevision;
        var url = new StringBuilder($"v1/ns/{Uri.EscapeDataString(ns)}/watch?fromRevision={from}");
        if (request.Key is not null) url.Append("&key=").Append(Uri.EscapeDataString(request.Key));
        else url.Append("&prefix=").Append(Uri.EscapeDataString(request.Prefix));
        string? lastEventId = null;
        long? startedAfter = null;
        var failures = 0;
        var delay = _options.RetryDelay;
        while (true)
        {
            using var message = new HttpRequestMessage(HttpMethod.Get, url.ToString());
            message.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
            if (_options.ApiKey is not null) message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _options.ApiKey);
            if (lastEventId is not null) message.Headers.TryAddWithoutValidation("Last-Event-ID", lastEventId);
            (HttpResponseMessage Response, Stream Body)? stream;
            try
            {
                stream = await OpenWatchAsync(message, cancellationToken).ConfigureAwait(false);
            }
            catch (RevisionCompactedException) when (fromNow && lastEventId is null)
            {
                // What this client last saw has aged out of the history: "now" is the server's now.
                fromNow = false;
                url.Replace($"fromRevision={from}", "fromRevision=0");
                continue;
            }
            if (stream is not null)
            {
                // A "from now" watch learns the revision it started after, so a reconnect before any event keeps its meaning.
                if (startedAfter is null && request.FromRevision == 0 && !fromNow) startedAfter = HeaderLong(stream.Value.Response, "Concord-Revision");
                using var response = stream.Value.Response;
                using var reader = new StreamReader(stream.Value.Body, Encoding.UTF8);
                string? eventName = null, eventId = null;
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
                            if (eventName == "error") throw WatchError(data.ToString());
                            var dto = JsonSerializer.Deserialize<ChangeEventDto>(data.ToString(), WireJson.Options)!;
                            if (eventId is not null) lastEventId = eventId;
                            failures = 0;
                            delay = _options.RetryDelay;
                            yield return new ChangeEvent(dto.Namespace, dto.Kind, dto.Record.ToRecord());
                        }
                        eventName = null;
                        eventId = null;
                        data.Clear();
                    }
                    else if (line.StartsWith("data:", StringComparison.Ordinal)) data.Append(line.AsSpan(5).TrimStart());
                    else if (line.StartsWith("event:", StringComparison.Ordinal)) eventName = line[6..].Trim();
                    else if (line.StartsWith("id:", StringComparison.Ordinal)) eventId = line[3..].Trim();
                }
            }
            // The server ended the stream (shutdown) or the connection broke: reconnect where we left off.
            cancellationToken.ThrowIfCancellationRequested();
            if (++failures >= _options.MaxAttempts)
                throw new StoreUnavailableException($"The watch stream was interrupted {failures} times in a row", null, isTransient: true);
            await Task.Delay(delay, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
            delay *= 2;
            if (lastEventId is null && request.FromRevision == 0 && !fromNow && startedAfter is { } after)
                url.Replace("fromRevision=0", $"fromRevision={after + 1}");
        }
    }

    /// <summary>Opens one SSE connection; null when it failed in a way worth retrying.</summary>
    private async Task<(HttpResponseMessage Response, Stream Body)?> OpenWatchAsync(HttpRequestMessage message, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException)
        {
            return null;
        }
        if (response.StatusCode == HttpStatusCode.ServiceUnavailable)
        {
            response.Dispose();
            return null;
        }
        try
        {
            await ThrowIfErrorAsync(response, cancellationToken).ConfigureAwait(false);
            return (response, await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false));
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    private static ConcordException WatchError(string data)
    {
        using var err = JsonDocument.Parse(data);
        var root = err.RootElement;
        var type = root.TryGetProperty("type", out var t) ? t.GetString() ?? "" : "";
        var detail = root.TryGetProperty("detail", out var d) ? d.GetString() ?? "" : "";
        if (type.EndsWith("/watch-overflow", StringComparison.Ordinal))
            return new WatchOverflowException(root.TryGetProperty("resumeRevision", out var rr) && rr.TryGetInt64(out var r) ? r : 0);
        return new StoreUnavailableException(detail.Length > 0 ? detail : "The watch stream failed", null, isTransient: true);
    }

    /// <summary>Nothing to release: the caller owns the <see cref="HttpClient"/>.</summary>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    // ------------------------------------------------------------------ plumbing

    internal static string StateUrl(string ns, string key) =>
        $"v1/ns/{Uri.EscapeDataString(ns)}/state/{string.Join('/', key.Split('/').Select(Uri.EscapeDataString))}";

    private string? IdempotencyKeyFor(WriteOptions options) =>
        options.IdempotencyKey ?? (_options.AutoIdempotency && options.LogicalOperation is null ? Guid.NewGuid().ToString("N") : null);

    private void AddWriteHeaders(HttpRequestMessage m, WriteOptions options, string? idempotencyKey)
    {
        var e = options.Expect;
        switch (e.Kind)
        {
            case ExpectationKind.Version:
                // "0" is the version of an absent key: unlike If-None-Match: *, a mismatch is a versionMismatch conflict.
                m.Headers.TryAddWithoutValidation("If-Match", $"\"{e.Version}\"");
                break;
            case ExpectationKind.Absent:
                m.Headers.TryAddWithoutValidation("If-None-Match", "*");
                break;
            case ExpectationKind.Exists:
                m.Headers.TryAddWithoutValidation("If-Match", "*");
                break;
        }
        if (e.Fence is { } f) m.Headers.TryAddWithoutValidation("Concord-Fence", EncodeHeader($"{f.Lock}:{f.Token}"));
        if (idempotencyKey is not null) m.Headers.TryAddWithoutValidation("Idempotency-Key", EncodeHeader(idempotencyKey));
        if (options.Agent is not null) m.Headers.TryAddWithoutValidation("Concord-Agent", EncodeHeader(options.Agent));
        if (options.LogicalOperation is not null) m.Headers.TryAddWithoutValidation("Concord-Logical-Operation", EncodeHeader(options.LogicalOperation));
        if (options.Ttl is { } ttl) m.Headers.TryAddWithoutValidation("Concord-Ttl", ttl.TotalSeconds.ToString("R", CultureInfo.InvariantCulture));
        if (options.Context is { } context) m.Headers.TryAddWithoutValidation("Concord-Context", EncodeHeader(context.ToString()));
        if (options.AllowSiblings) m.Headers.TryAddWithoutValidation("Concord-Allow-Siblings", "true");
    }

    /// <summary>
    /// Sends with retries on transient failures (connection errors, 503). Only requests that are safe to repeat are
    /// retried: reads, and mutations carrying an idempotency key (the same key on every attempt, so a write whose reply
    /// was lost is replayed, not applied twice).
    /// </summary>
    internal async Task<HttpResponseMessage> SendAsync(Func<HttpRequestMessage> build, CancellationToken cancellationToken, bool retryable = true)
    {
        var delay = _options.RetryDelay;
        for (var attempt = 1; ; attempt++)
        {
            using var request = build();
            if (_options.ApiKey is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _options.ApiKey);
            try
            {
                var response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
                Observe(response);
                if (response.StatusCode != HttpStatusCode.ServiceUnavailable || !retryable || attempt >= _options.MaxAttempts) return response;
                response.Dispose();
            }
            catch (HttpRequestException) when (retryable && attempt < _options.MaxAttempts)
            {
            }
            await Task.Delay(delay, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
            delay *= 2;
        }
    }

    /// <summary>Header values are ASCII: other text travels as <c>utf-8''PERCENT-ENCODED</c> (RFC 8187 ext-value), which the server decodes.</summary>
    internal static string EncodeHeader(string value) =>
        value.All(c => c is >= ' ' and <= '~') && !value.StartsWith("utf-8''", StringComparison.OrdinalIgnoreCase)
            ? value
            : "utf-8''" + Uri.EscapeDataString(value);

    internal static string DecodeHeader(string value) =>
        value.StartsWith("utf-8''", StringComparison.OrdinalIgnoreCase) ? Uri.UnescapeDataString(value[7..]) : value;

    private void Observe(HttpResponseMessage response)
    {
        var revision = HeaderLong(response, "Concord-Revision");
        for (var seen = Volatile.Read(ref _observed); revision > seen; seen = Volatile.Read(ref _observed))
        {
            if (Interlocked.CompareExchange(ref _observed, revision, seen) == seen) break;
        }
    }

    private static long HeaderLong(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) && long.TryParse(values.FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0;

    internal sealed record Problem(string? Code, string? Detail, ConflictKind? Conflict, RecordDto? Current, long? Revision, JsonElement Root);

    internal static async Task<Problem?> ReadProblemAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        if (string.IsNullOrWhiteSpace(text)) return null;
        try
        {
            using var doc = JsonDocument.Parse(text);
            var root = doc.RootElement.Clone();
            if (root.ValueKind != JsonValueKind.Object) return new Problem(null, text, null, null, null, default);
            var type = root.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            var code = type?[(type.LastIndexOf('/') + 1)..];
            ConflictKind? conflict = root.TryGetProperty("conflict", out var c) && c.ValueKind == JsonValueKind.String && Enum.TryParse<ConflictKind>(c.GetString(), ignoreCase: true, out var k) ? k : null;
            var current = root.TryGetProperty("current", out var cur) && cur.ValueKind == JsonValueKind.Object ? cur.Deserialize<RecordDto>(WireJson.Options) : null;
            long? revision = root.TryGetProperty("revision", out var rv) && rv.ValueKind == JsonValueKind.Number ? rv.GetInt64() : null;
            return new Problem(code, root.TryGetProperty("detail", out var d) ? d.GetString() : text, conflict, current, revision, root);
        }
        catch (JsonException)
        {
            return new Problem(null, text, null, null, null, default);
        }
    }

    private static async Task<string?> ProblemCodeAsync(HttpResponseMessage response, CancellationToken cancellationToken) =>
        (await ReadProblemAsync(response, cancellationToken).ConfigureAwait(false))?.Code;

    internal static async Task ThrowIfErrorAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode) return;
        throw ToException(response.StatusCode, await ReadProblemAsync(response, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>Turns a problem+json response back into the exception the embedded engine would have thrown.</summary>
    internal static ConcordException ToException(HttpStatusCode status, Problem? problem)
    {
        var detail = problem?.Detail ?? $"HTTP {(int)status}";
        return problem?.Code switch
        {
            "invalid-key" => new InvalidKeyException(Text("key") ?? "", Text("reason") ?? detail),
            "invalid-request" => new InvalidRequestException(detail),
            "invalid-patch" => Number("operationIndex") is var index and >= 0 && detail.StartsWith($"Patch operation {index}: ", StringComparison.Ordinal)
                ? new InvalidPatchException(detail[$"Patch operation {index}: ".Length..], (int)index)
                : new InvalidPatchException(detail),
            "value-too-large" => new ValueTooLargeException(Text("key") ?? "", Number("size"), Number("limit")),
            "idempotency-key-reused" => new IdempotencyKeyReusedException(Text("idempotencyKey") ?? ""),
            "revision-compacted" => new RevisionCompactedException(Number("requested"), Number("compactedRevision")),
            "unknown-revision" => new UnknownRevisionException(Number("requested"), Number("current")),
            "watch-overflow" => new WatchOverflowException(Number("resumeRevision")),
            "crdt-type-mismatch" => new CrdtTypeMismatchException(Text("key"), Text("expected") ?? "?", Text("actual") ?? "?"),
            "queue-full" => new Coordination.QueueFullException(Text("queue") ?? "", Number("tasks"), (int)Number("limit")),
            "store-unavailable" or "not-ready" => new StoreUnavailableException(detail, null, isTransient: true),
            // Any other 400 is input the server refused (malformed header, body or parameter).
            _ when status == HttpStatusCode.BadRequest => new InvalidRequestException(detail),
            _ => new ConcordHttpException(status, problem?.Code ?? "http-error", detail),
        };

        string? Text(string name) =>
            problem?.Root.ValueKind == JsonValueKind.Object && problem.Root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        long Number(string name) =>
            problem?.Root.ValueKind == JsonValueKind.Object && problem.Root.TryGetProperty(name, out var v) && v.TryGetInt64(out var n) ? n : name == "operationIndex" ? -1 : 0;
    }
}

/// <summary>An HTTP error with no closer contract equivalent (auth, limits, unexpected status).</summary>
public sealed class ConcordHttpException(HttpStatusCode status, string code, string message) : ConcordException(message)
{
    /// <summary>HTTP status.</summary>
    public HttpStatusCode Status { get; } = status;

    /// <inheritdoc />
    public override string Code { get; } = code;

    /// <inheritdoc />
    public override bool IsTransient => Status is HttpStatusCode.ServiceUnavailable or HttpStatusCode.TooManyRequests or HttpStatusCode.RequestTimeout;
}
