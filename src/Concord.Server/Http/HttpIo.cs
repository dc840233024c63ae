using System.Globalization;
using System.Text.Json;
using Concord.Wire;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace Concord.Server.Http;

/// <summary>Request parsing and response headers shared by the route groups.</summary>
internal static class HttpIo
{
    public const string RecordMediaType = "application/vnd.concord.record+json";

    /// <summary>Set to <c>true</c> on a response that replays the stored result of an earlier request with the same Idempotency-Key.</summary>
    public const string ReplayedHeader = "Idempotent-Replayed";

    /// <summary>Names one logical operation whose payload may change between attempts (the client's UpdateAsync); fingerprints use it instead of the body.</summary>
    public const string LogicalOperationHeader = "Concord-Logical-Operation";

    /// <summary>Thrown for malformed HTTP input (bad JSON, bad headers, oversized bodies); mapped to 4xx by the error middleware.</summary>
    public sealed class BadInputException(int status, string code, string message) : Exception(message)
    {
        public int Status { get; } = status;
        public string Code { get; } = code;
    }

    public static async Task<JsonDocument> ReadJsonAsync(HttpRequest request, long maxBytes, CancellationToken cancellationToken)
    {
        if (request.ContentLength is { } length && length > maxBytes)
            throw new BadInputException(413, "body-too-large", $"Request body is {length} bytes; the limit is {maxBytes} bytes");
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + read > maxBytes) throw new BadInputException(413, "body-too-large", $"Request body exceeds the limit of {maxBytes} bytes");
            buffer.Write(chunk, 0, read);
        }
        if (buffer.Length == 0) throw new BadInputException(400, "malformed-json", "Request body is empty; a JSON document is required");
        try
        {
            return JsonDocument.Parse(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), new JsonDocumentOptions { MaxDepth = 128 });
        }
        catch (JsonException e)
        {
            throw new BadInputException(400, "malformed-json", $"Request body is not valid JSON: {e.Message}");
        }
    }

    public static T Deserialize<T>(JsonDocument doc, string what)
    {
        try
        {
            return doc.RootElement.Deserialize<T>(WireJson.Options) ?? throw new BadInputException(400, "invalid-request", $"{what} must not be null");
        }
        catch (JsonException e)
        {
            throw new BadInputException(400, "invalid-request", $"{what} has the wrong shape: {e.Message}");
        }
    }

    /// <summary>The expectation stated by If-Match / If-None-Match / Concord-Fence.</summary>
    public static Expectation ReadExpectation(HttpRequest request)
    {
        var expectation = Expect.Any;
        var ifMatch = request.Headers.IfMatch.ToString();
        var ifNoneMatch = request.Headers.IfNoneMatch.ToString();
        if (ifMatch.Length > 0 && ifNoneMatch.Length > 0) throw new BadInputException(400, "invalid-precondition", "Send If-Match or If-None-Match, not both");
        if (ifMatch.Length > 0)
            expectation = ifMatch.Trim() == "*" ? Expect.Exists : Expect.Version(ParseVersionTag(ifMatch, "If-Match"));
        else if (ifNoneMatch.Length > 0)
        {
            if (ifNoneMatch.Trim() != "*") throw new BadInputException(400, "invalid-precondition", "On writes, If-None-Match supports only '*' (create if absent)");
            expectation = Expect.Absent;
        }
        var fence = HeaderText(request, "Concord-Fence");
        if (fence.Length > 0)
        {
            var colon = fence.LastIndexOf(':');
            if (colon <= 0 || !long.TryParse(fence.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var token) || token <= 0)
                throw new BadInputException(400, "invalid-fence", "Concord-Fence must be 'LOCK:TOKEN' with a positive integer token");
            expectation = expectation.WithFence(new Fence(fence[..colon], token));
        }
        return expectation;
    }

    public static long ParseVersionTag(string value, string header)
    {
        var v = value.Trim();
        if (v.StartsWith("W/", StringComparison.Ordinal)) v = v[2..];
        if (v.Contains(',', StringComparison.Ordinal)) throw new BadInputException(400, "invalid-precondition", $"{header} must name exactly one version");
        v = v.Trim('"');
        if (!long.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var version))
            throw new BadInputException(400, "invalid-precondition", $"{header} must be a quoted version such as \"3\" (got {value})");
        return version;
    }

    public static TimeSpan? ReadTtl(HttpRequest request)
    {
        var ttl = request.Headers["Concord-Ttl"].ToString();
        if (ttl.Length == 0) return null;
        if (!double.TryParse(ttl, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || seconds <= 0 || seconds > 10 * 365 * 86400)
            throw new BadInputException(400, "invalid-ttl", "Concord-Ttl must be a positive number of seconds");
        return TimeSpan.FromSeconds(seconds);
    }

    public static string? ReadIdempotencyKey(HttpRequest request)
    {
        var key = HeaderText(request, "Idempotency-Key");
        if (key.Length == 0) return null;
        if (key.Length > 255) throw new BadInputException(400, "invalid-idempotency-key", "Idempotency-Key must be at most 255 characters");
        return key;
    }

    public static string? ReadLogicalOperation(HttpRequest request)
    {
        var op = HeaderText(request, LogicalOperationHeader);
        if (op.Length == 0) return null;
        if (op.Length > 600) throw new BadInputException(400, "invalid-request", $"{LogicalOperationHeader} must be at most 600 characters");
        return op;
    }

    public static string? Agent(HttpRequest request, Caller caller)
    {
        var agent = HeaderText(request, "Concord-Agent");
        if (agent.Length > 128) throw new BadInputException(400, "invalid-agent", "Concord-Agent must be at most 128 characters");
        return agent.Length > 0 ? agent : caller.DefaultAgent;
    }

    public static bool WantsEnvelope(HttpRequest request) =>
        request.Headers.Accept.ToString().Contains(RecordMediaType, StringComparison.OrdinalIgnoreCase);

    public static void SetRecordHeaders(HttpResponse response, ConcordRecord record, long revision)
    {
        response.Headers.ETag = new EntityTagHeaderValue($"\"{record.Version}\"").ToString();
        response.Headers["Concord-Revision"] = revision.ToString(CultureInfo.InvariantCulture);
        response.Headers["Concord-Mod-Revision"] = record.Revision.ToString(CultureInfo.InvariantCulture);
        if (record.Writer is not null) response.Headers["Concord-Writer"] = EncodeHeader(record.Writer);
    }

    /// <summary>
    /// Header values are ASCII; text that is not (agent ids, lock names, keys in idempotency ids) travels as
    /// <c>utf-8''PERCENT-ENCODED</c> (the RFC 8187 ext-value form), which this decodes.
    /// </summary>
    public static string HeaderText(HttpRequest request, string name)
    {
        var raw = request.Headers[name].ToString();
        if (!raw.StartsWith(Utf8Prefix, StringComparison.OrdinalIgnoreCase)) return raw;
        try
        {
            return Uri.UnescapeDataString(raw[Utf8Prefix.Length..]);
        }
        catch (UriFormatException)
        {
            throw new BadInputException(400, "invalid-header", $"{name} is not valid utf-8'' percent-encoding");
        }
    }

    /// <summary>The inverse of <see cref="HeaderText"/>: printable ASCII is sent as is, anything else percent-encoded.</summary>
    public static string EncodeHeader(string value) =>
        value.All(c => c is >= ' ' and <= '~') && !value.StartsWith(Utf8Prefix, StringComparison.OrdinalIgnoreCase)
            ? value
            : Utf8Prefix + Uri.EscapeDataString(value);

    private const string Utf8Prefix = "utf-8''";
}
