using System.Globalization;
using Concord.Wire;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Concord.Server.Http;

/// <summary>
/// <c>POST /v1/ns/{ns}/crdt/{*key}</c>: joins a CRDT delta (a <c>{"$crdt":…}</c> envelope) into the key's state,
/// atomically and without conflicts (allowed in strict mode). Answers the merged record; a delta of another type than
/// the key holds is a 409 <c>crdt-type-mismatch</c> problem. Read the state with <c>GET …/state/{*key}</c>.
/// </summary>
internal static class CrdtApi
{
    public static void MapCrdtApi(this RouteGroupBuilder v1) =>
        v1.MapPost("/ns/{ns}/crdt/{*key}", MergeAsync).WithTags("CRDT").WithName("MergeCrdt");

    private static async Task<IResult> MergeAsync(HttpContext http, string ns, string key, IConcordStore store, Auth auth, ConcordServerOptions options, CancellationToken ct)
    {
        var needed = key.StartsWith("_sys/", StringComparison.Ordinal) ? ApiRights.Admin : ApiRights.Write;
        if (auth.Check(http, ns, needed, out var caller) is { } denied) return denied;
        using var body = await HttpIo.ReadJsonAsync(http.Request, options.MaxRequestBodyBytes, ct);
        var write = new WriteOptions
        {
            IdempotencyKey = HttpIo.ReadIdempotencyKey(http.Request),
            Agent = HttpIo.Agent(http.Request, caller),
            LogicalOperation = HttpIo.ReadLogicalOperation(http.Request),
        };
        var result = await store.TransactAsync(ns, new TxnRequest { Then = [TxnOp.Merge(key, body.RootElement)] }, write, ct);
        if (result.Replayed) http.Response.Headers[HttpIo.ReplayedHeader] = "true";
        http.Response.Headers["Concord-Revision"] = result.Revision.ToString(CultureInfo.InvariantCulture);
        if (result.Conflict is { } conflict) return Problems.Conflict(conflict);
        var record = result.Results[0].Record!;
        HttpIo.SetRecordHeaders(http.Response, record, result.Revision);
        return Results.Json(RecordDto.From(record), WireJson.Options, statusCode: record.CreateRevision == record.Revision ? 201 : 200);
    }
}
