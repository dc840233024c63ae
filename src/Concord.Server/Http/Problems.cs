using Concord.Wire;
using Microsoft.AspNetCore.Http;

namespace Concord.Server.Http;

/// <summary>RFC 9457 problem+json responses with a stable <c>type</c> per error.</summary>
internal static class Problems
{
    public const string TypeBase = "https://concord.dev/problems/";

    public static IResult Create(int status, string code, string title, string detail, IDictionary<string, object?>? extensions = null) =>
        Results.Problem(detail: detail, statusCode: status, title: title, type: TypeBase + code, extensions: extensions);

    /// <summary>Maps a fault to its status: bad input is 4xx, an unavailable store 503. Data the client needs to rebuild the exception travels as extensions.</summary>
    public static IResult From(ConcordException e) => e switch
    {
        InvalidKeyException k => Create(400, e.Code, "Invalid key", e.Message, new Dictionary<string, object?> { ["key"] = k.Key, ["reason"] = k.Reason }),
        InvalidRequestException => Create(400, e.Code, "Invalid request", e.Message),
        InvalidPatchException p => Create(422, e.Code, "Invalid patch", e.Message, new Dictionary<string, object?> { ["operationIndex"] = p.OperationIndex }),
        ValueTooLargeException v => Create(413, e.Code, "Value too large", e.Message, new Dictionary<string, object?> { ["key"] = v.Key, ["size"] = v.Size, ["limit"] = v.Limit }),
        IdempotencyKeyReusedException i => Create(422, e.Code, "Idempotency key reused", e.Message, new Dictionary<string, object?> { ["idempotencyKey"] = i.IdempotencyKey }),
        RevisionCompactedException c => Create(410, e.Code, "Revision compacted", e.Message, new Dictionary<string, object?> { ["requested"] = c.Requested, ["compactedRevision"] = c.CompactedRevision }),
        UnknownRevisionException u => Create(400, e.Code, "Unknown revision", e.Message, new Dictionary<string, object?> { ["requested"] = u.Requested, ["current"] = u.Current }),
        WatchOverflowException w => Create(503, e.Code, "Watch overflow", e.Message, new Dictionary<string, object?> { ["resumeRevision"] = w.ResumeRevision }),
        CrdtTypeMismatchException m => Create(409, e.Code, "CRDT type mismatch", e.Message, new Dictionary<string, object?> { ["key"] = m.Key, ["expected"] = m.Expected, ["actual"] = m.Actual }),
        StoreUnavailableException => Create(503, e.Code, "Store unavailable", e.Message),
        Coordination.QueueFullException q => Create(429, e.Code, "Queue full", e.Message, new Dictionary<string, object?> { ["queue"] = q.Queue, ["tasks"] = q.Tasks, ["limit"] = q.Limit }),
        Coordination.ContentionException c => Create(503, e.Code, "Contention", e.Message, new Dictionary<string, object?> { ["operation"] = c.Operation, ["attempts"] = c.Attempts }),
        _ => Create(500, e.Code, "Error", e.Message),
    };

    /// <summary>A conflict is a result, but over HTTP it is a precondition status with the current record.</summary>
    public static IResult Conflict(WriteResult r)
    {
        var (status, title) = r.Conflict switch
        {
            ConflictKind.BlindWriteRefused => (428, "Precondition required"),
            ConflictKind.StaleFence => (409, "Stale fencing token"),
            ConflictKind.TestFailed => (409, "Patch test failed"),
            ConflictKind.NotFound when r.Record is null => (412, "Precondition failed"),
            _ => (412, "Precondition failed"),
        };
        var code = r.Conflict switch
        {
            ConflictKind.BlindWriteRefused => "strict-blind-write",
            ConflictKind.StaleFence => "stale-fence",
            ConflictKind.TestFailed => "test-failed",
            ConflictKind.AlreadyExists => "already-exists",
            ConflictKind.NotFound => "not-found",
            _ => "version-mismatch",
        };
        return Create(status, code, title, r.Message ?? r.Conflict.ToString(), new Dictionary<string, object?>
        {
            ["conflict"] = WireJsonName(r.Conflict),
            ["current"] = RecordDto.From(r.Record),
            ["revision"] = r.Revision,
        });
    }

    public static string WireJsonName<TEnum>(TEnum value) where TEnum : struct, Enum => System.Text.Json.JsonNamingPolicy.CamelCase.ConvertName(value.ToString());
}
