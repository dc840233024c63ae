using System.Globalization;
using Concord.Wire;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Concord.Server.Http;

/// <summary><c>/v1/ns/{ns}/state/{*key}</c>: versioned reads and conditional writes.</summary>
internal static class StateApi
{
    private const string Reserved = "_sys/";

    public static void MapStateApi(this RouteGroupBuilder v1)
    {
        var state = v1.MapGroup("/ns/{ns}/state").WithTags("State");
        state.MapGet("", ListAsync).WithName("ListKeys");
        state.MapGet("/{*key}", GetAsync).WithName("GetKey");
        state.MapPut("/{*key}", PutAsync).WithName("PutKey");
        state.MapPatch("/{*key}", PatchAsync).WithName("PatchKey");
        state.MapDelete("/{*key}", DeleteAsync).WithName("DeleteKey");
        v1.MapPost("/ns/{ns}/txn", TransactAsync).WithTags("Transactions").WithName("Transact");
    }

    private static ApiRights WriteRight(string key) => key.StartsWith(Reserved, StringComparison.Ordinal) ? ApiRights.Admin : ApiRights.Write;

    private static async Task<IResult> GetAsync(HttpContext http, string ns, string key, IConcordStore store, Auth auth, CancellationToken ct)
    {
        if (auth.Check(http, ns, ApiRights.Read, out _) is { } denied) return denied;
        var query = http.Request.Query["revision"].ToString();
        long revision;
        ConcordRecord? record;
        if (query.Length > 0)
        {
            revision = ParseLong(query, "revision");
            record = await store.GetAsync(ns, key, new ReadOptions { AtRevision = revision }, ct);
        }
        else
        {
            // A latest read (so TTLs are honoured to the instant). The record was the latest at some revision v >= both
            // numbers below, and nothing changed it between its own revision and v, so it is exactly the value at their max.
            var before = await store.GetRevisionAsync(ct);
            record = await store.GetAsync(ns, key, null, ct);
            revision = Math.Max(before, record?.Revision ?? 0);
        }
        http.Response.Headers["Concord-Revision"] = revision.ToString(CultureInfo.InvariantCulture);
        if (record is null) return Problems.Create(404, "key-not-found", "Not found", $"'{key}' does not exist in namespace '{ns}'", new Dictionary<string, object?> { ["revision"] = revision });
        HttpIo.SetRecordHeaders(http.Response, record, revision);
        var ifNoneMatch = http.Request.Headers.IfNoneMatch.ToString();
        if (ifNoneMatch.Length > 0 && (ifNoneMatch.Trim() == "*" || HttpIo.ParseVersionTag(ifNoneMatch, "If-None-Match") == record.Version))
            return Results.StatusCode(304);
        return HttpIo.WantsEnvelope(http.Request)
            ? Results.Json(RecordDto.From(record), WireJson.Options, HttpIo.RecordMediaType)
            : Results.Text(record.Value.GetRawText(), "application/json");
    }

    private static async Task<IResult> ListAsync(HttpContext http, string ns, IConcordStore store, Auth auth, CancellationToken ct)
    {
        if (auth.Check(http, ns, ApiRights.Read, out _) is { } denied) return denied;
        var q = http.Request.Query;
        var request = new ListRequest
        {
            Prefix = q["prefix"].ToString(),
            After = q["after"].Count > 0 ? q["after"].ToString() : null,
            Limit = q["limit"].Count > 0 ? (int)ParseLong(q["limit"].ToString(), "limit") : 100,
            AtRevision = q["revision"].Count > 0 ? ParseLong(q["revision"].ToString(), "revision") : null,
        };
        var page = await store.ListAsync(ns, request, ct);
        http.Response.Headers["Concord-Revision"] = page.Revision.ToString(CultureInfo.InvariantCulture);
        return Results.Json(new ListResultDto([.. page.Records.Select(r => RecordDto.From(r)!)], page.Revision, page.NextAfter), WireJson.Options);
    }

    private static async Task<IResult> PutAsync(HttpContext http, string ns, string key, IConcordStore store, Auth auth, ConcordServerOptions options, CancellationToken ct)
    {
        if (auth.Check(http, ns, WriteRight(key), out var caller) is { } denied) return denied;
        var write = WriteOptionsFor(http.Request, caller);
        using var body = await HttpIo.ReadJsonAsync(http.Request, options.MaxRequestBodyBytes, ct);
        var result = await store.PutAsync(ns, key, body.RootElement, write, ct);
        return WriteResponse(http, ns, result);
    }

    private static async Task<IResult> PatchAsync(HttpContext http, string ns, string key, IConcordStore store, Auth auth, ConcordServerOptions options, CancellationToken ct)
    {
        if (auth.Check(http, ns, WriteRight(key), out var caller) is { } denied) return denied;
        var write = WriteOptionsFor(http.Request, caller);
        using var body = await HttpIo.ReadJsonAsync(http.Request, options.MaxRequestBodyBytes, ct);
        if (body.RootElement.ValueKind != System.Text.Json.JsonValueKind.Array)
            throw new HttpIo.BadInputException(400, "invalid-request", "A PATCH body must be a JSON Patch array (RFC 6902), e.g. [{\"op\":\"increment\",\"path\":\"/n\",\"value\":1}]");
        var patch = JsonPatch.FromJson(System.Text.Json.Nodes.JsonNode.Parse(body.RootElement.GetRawText()));
        var result = await store.PatchAsync(ns, key, patch, write, ct);
        return WriteResponse(http, ns, result);
    }

    private static async Task<IResult> DeleteAsync(HttpContext http, string ns, string key, IConcordStore store, Auth auth, CancellationToken ct)
    {
        if (auth.Check(http, ns, WriteRight(key), out var caller) is { } denied) return denied;
        var result = await store.DeleteAsync(ns, key, WriteOptionsFor(http.Request, caller) with { Ttl = null }, ct);
        if (!result.IsApplied && result.Conflict == ConflictKind.NotFound && http.Request.Headers.IfMatch.Count == 0)
            return Problems.Create(404, "key-not-found", "Not found", result.Message ?? $"'{key}' does not exist");
        return WriteResponse(http, ns, result);
    }

    private static async Task<IResult> TransactAsync(HttpContext http, string ns, IConcordStore store, Auth auth, ConcordServerOptions options, CancellationToken ct)
    {
        // Outsiders are turned away before the body is even read; the exact right depends on the operations.
        if (auth.Check(http, ns, ApiRights.Read, out var caller) is { } denied) return denied;
        using var body = await HttpIo.ReadJsonAsync(http.Request, options.MaxRequestBodyBytes, ct);
        var dto = HttpIo.Deserialize<TxnRequestDto>(body, "Transaction");
        var request = WireMapper.FromDto(dto);
        var ops = request.Then.Concat(request.Else).ToList();
        var needed = ops.All(o => o.Kind == TxnOpKind.Get) ? ApiRights.Read
            : ops.Any(o => o.Kind != TxnOpKind.Get && o.Key.StartsWith(Reserved, StringComparison.Ordinal)) ? ApiRights.Admin : ApiRights.Write;
        if (!Auth.Permits(caller, ns, needed)) return Auth.Forbidden(ns, needed);
        var result = await store.TransactAsync(ns, request, WriteOptionsFor(http.Request, caller) with { Expect = default, Ttl = null, Context = null, AllowSiblings = false }, ct);
        http.Response.Headers["Concord-Revision"] = result.Revision.ToString(CultureInfo.InvariantCulture);
        if (result.Replayed) http.Response.Headers[HttpIo.ReplayedHeader] = "true";
        return Results.Json(WireMapper.ToDto(result), WireJson.Options);
    }

    private static WriteOptions WriteOptionsFor(HttpRequest request, Caller caller) => new()
    {
        Expect = HttpIo.ReadExpectation(request),
        IdempotencyKey = HttpIo.ReadIdempotencyKey(request),
        Agent = HttpIo.Agent(request, caller),
        Ttl = HttpIo.ReadTtl(request),
        LogicalOperation = HttpIo.ReadLogicalOperation(request),
        Context = HttpIo.ReadContext(request),
        AllowSiblings = HttpIo.ReadAllowSiblings(request),
    };

    private static IResult WriteResponse(HttpContext http, string ns, WriteResult result)
    {
        if (result.Replayed) http.Response.Headers[HttpIo.ReplayedHeader] = "true";
        http.Response.Headers["Concord-Revision"] = result.Revision.ToString(CultureInfo.InvariantCulture);
        if (!result.IsApplied) return Problems.Conflict(result);
        var record = result.Record!;
        HttpIo.SetRecordHeaders(http.Response, record, result.Revision);
        var dto = RecordDto.From(record);
        var created = !record.IsDeleted && record.CreateRevision == record.Revision;
        return created
            ? Results.Json(dto, WireJson.Options, statusCode: 201)
            : Results.Json(dto, WireJson.Options);
    }

    internal static long ParseLong(string value, string name) =>
        long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            ? n
            : throw new HttpIo.BadInputException(400, "invalid-request", $"'{name}' must be a non-negative integer (got '{value}')");
}
