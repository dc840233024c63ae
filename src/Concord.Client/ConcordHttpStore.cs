using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
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
        var url = StateUrl(ns, key) + (options?.AtRevision is { } r ? $"?revision={r}" : "");
        using var response = await SendAsync(() =>
        {
            var m = new HttpRequestMessage(HttpMethod.Get, url);
            m.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(RecordMediaType));
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
    public ValueTask<WriteResult> PutAsync(string ns, string key, JsonElement value, WriteOptions? options = null, CancellationToken cancellationToken = default) =>
        WriteAsync(HttpMethod.Put, ns, key, value.GetRawText(), "application/json", options ?? WriteOptions.Default, cancellationToken);

    /// <inheritdoc />
    public ValueTask<WriteResult> DeleteAsync(string ns, string key, WriteOptions? options = null, CancellationToken cancellationToken = default) =>
        WriteAsync(HttpMethod.Delete, ns, key, null, null, options ?? WriteOptions.Default, cancellationToken);

    /// <inheritdoc />
    public ValueTask<WriteResult> PatchAsync(string ns, string key, JsonPatch patch, WriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(patch);
        return WriteAsync(HttpMethod.Patch, ns, key, patch.ToString(), "application/json-patch+json", options ?? WriteOptions.Default, cancellationToken);
    }

    private async ValueTask<WriteResult> WriteAsync(HttpMethod method, string ns, string key, string? body, string? mediaType, WriteOptions options, CancellationToken cancellationToken)
    {
        var idempotencyKey = IdempotencyKeyFor(options);
        using var response = await SendAsync(() =>
        {
            var m = new HttpRequestMessage(method, StateUrl(ns, key));
            if (body is not null) m.Content = new StringContent(body, Encoding.UTF8, mediaType!);
            AddWriteHeaders(m, options, idempotencyKey);
            return m;
        }, cancellationToken).ConfigureAwait(false);
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
        options ??= WriteOptions.Default;
        var idempotencyKey = request.Then.Concat(request.Else).Any(o => o.Kind != TxnOpKind.Get) ? IdempotencyKeyFor(options) : options.IdempotencyKey;
        var json = JsonSerializer.Serialize(WireMapper.ToDto(request), WireJson.Options);
        using var response = await SendAsync(() =>
        {
            var m = new HttpRequestMessage(HttpMethod.Post, $"v1/ns/{Uri.EscapeDataString(ns)}/txn") { Content = new StringContent(json, Encoding.UTF8, "application/json") };
            AddWriteHeaders(m, options with { Expect = default }, idempotencyKey);
            return m;
        }, cancellationToken).ConfigureAwait(false);
        await ThrowIfErrorAsync(response, cancellationToken).ConfigureAwait(false);
        var dto = await response.Content.ReadFromJsonAsync<TxnResultDto>(WireJson.Options, cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidRequestException("empty transaction response");
        return WireMapper.FromDto(dto);
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ChangeEvent> WatchAsync(string ns, WatchRequest request, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var url = new StringBuilder($"v1/ns/{Uri.EscapeDataString(ns)}/watch?fromRevision={request.FromRevision}");
        if (request.Key is not null) url.Append("&key=").Append(Uri.EscapeDataString(request.Key));
        else url.Append("&prefix=").Append(Uri.EscapeDataString(request.Prefix));
        using var message = new HttpRequestMessage(HttpMethod.Get, url.ToString());
        message.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        if (_options.ApiKey is not null) message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _options.ApiKey);
        using var response = await _http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        await ThrowIfErrorAsync(response, cancellationToken).ConfigureAwait(false);
        using var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        string? eventName = null;
        var data = new StringBuilder();
        while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            if (line.Length == 0)
            {
                if (data.Length > 0)
                {
                    if (eventName == "error")
                    {
                        using var err = JsonDocument.Parse(data.ToString());
                        throw new WatchOverflowException(err.RootElement.TryGetProperty("resumeRevision", out var rr) ? rr.GetInt64() : 0);
                    }
                    var dto = JsonSerializer.Deserialize<ChangeEventDto>(data.ToString(), WireJson.Options)!;
                    yield return new ChangeEvent(dto.Namespace, dto.Kind, dto.Record.ToRecord());
                }
                eventName = null;
                data.Clear();
            }
            else if (line.StartsWith("data:", StringComparison.Ordinal)) data.Append(line.AsSpan(5).TrimStart());
            else if (line.StartsWith("event:", StringComparison.Ordinal)) eventName = line[6..].Trim();
        }
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
                if (e.Version == 0) m.Headers.TryAddWithoutValidation("If-None-Match", "*");
                else m.Headers.TryAddWithoutValidation("If-Match", $"\"{e.Version}\"");
                break;
            case ExpectationKind.Absent:
                m.Headers.TryAddWithoutValidation("If-None-Match", "*");
                break;
            case ExpectationKind.Exists:
                m.Headers.TryAddWithoutValidation("If-Match", "*");
                break;
        }
        if (e.Fence is { } f) m.Headers.TryAddWithoutValidation("Concord-Fence", $"{f.Lock}:{f.Token}");
        if (idempotencyKey is not null) m.Headers.TryAddWithoutValidation("Idempotency-Key", idempotencyKey);
        if (options.Agent is not null) m.Headers.TryAddWithoutValidation("Concord-Agent", options.Agent);
        if (options.Ttl is { } ttl) m.Headers.TryAddWithoutValidation("Concord-Ttl", ttl.TotalSeconds.ToString("R", CultureInfo.InvariantCulture));
    }

    /// <summary>Sends with retries on transient failures; the same idempotency key is reused by every attempt.</summary>
    private async Task<HttpResponseMessage> SendAsync(Func<HttpRequestMessage> build, CancellationToken cancellationToken)
    {
        var delay = _options.RetryDelay;
        for (var attempt = 1; ; attempt++)
        {
            using var request = build();
            if (_options.ApiKey is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _options.ApiKey);
            try
            {
                var response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
                if (response.StatusCode != HttpStatusCode.ServiceUnavailable || attempt >= _options.MaxAttempts) return response;
                response.Dispose();
            }
            catch (HttpRequestException) when (attempt < _options.MaxAttempts)
            {
            }
            await Task.Delay(delay, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
            delay *= 2;
        }
    }

    private static long HeaderLong(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) && long.TryParse(values.FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0;

    private sealed record Problem(string? Code, string? Detail, ConflictKind? Conflict, RecordDto? Current, long? Revision);

    private static async Task<Problem?> ReadProblemAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        if (string.IsNullOrWhiteSpace(text)) return null;
        try
        {
            using var doc = JsonDocument.Parse(text);
            var root = doc.RootElement;
            var type = root.TryGetProperty("type", out var t) ? t.GetString() : null;
            var code = type?[(type.LastIndexOf('/') + 1)..];
            ConflictKind? conflict = root.TryGetProperty("conflict", out var c) && Enum.TryParse<ConflictKind>(c.GetString(), ignoreCase: true, out var k) ? k : null;
            var current = root.TryGetProperty("current", out var cur) && cur.ValueKind == JsonValueKind.Object ? cur.Deserialize<RecordDto>(WireJson.Options) : null;
            long? revision = root.TryGetProperty("revision", out var rv) && rv.ValueKind == JsonValueKind.Number ? rv.GetInt64() : null;
            return new Problem(code, root.TryGetProperty("detail", out var d) ? d.GetString() : text, conflict, current, revision);
        }
        catch (JsonException)
        {
            return new Problem(null, text, null, null, null);
        }
    }

    private static async Task<string?> ProblemCodeAsync(HttpResponseMessage response, CancellationToken cancellationToken) =>
        (await ReadProblemAsync(response, cancellationToken).ConfigureAwait(false))?.Code;

    private static async Task ThrowIfErrorAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode) return;
        throw ToException(response.StatusCode, await ReadProblemAsync(response, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>Turns a problem+json response back into the exception the embedded engine would have thrown.</summary>
    private static ConcordException ToException(HttpStatusCode status, Problem? problem)
    {
        var detail = problem?.Detail ?? $"HTTP {(int)status}";
        return problem?.Code switch
        {
            "invalid-key" => new InvalidKeyException("", StripPrefix(detail)),
            "invalid-patch" => new InvalidPatchException(detail),
            "value-too-large" => new ValueTooLargeException("", 0, 0),
            "idempotency-key-reused" => new IdempotencyKeyReusedException(ExtractQuoted(detail)),
            "revision-compacted" => new RevisionCompactedException(0, 0),
            "unknown-revision" => new UnknownRevisionException(0, 0),
            "store-unavailable" or "not-ready" => new StoreUnavailableException(detail, null, isTransient: true),
            _ => new ConcordHttpException(status, problem?.Code ?? "http-error", detail),
        };

        static string StripPrefix(string d) => d.Contains(": ", StringComparison.Ordinal) ? d[(d.IndexOf(": ", StringComparison.Ordinal) + 2)..] : d;
        static string ExtractQuoted(string d)
        {
            var a = d.IndexOf('\'', StringComparison.Ordinal);
            var b = a >= 0 ? d.IndexOf('\'', a + 1) : -1;
            return a >= 0 && b > a ? d[(a + 1)..b] : "";
        }
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
