using Concord.Coordination.Queues;
using Concord.Wire;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Concord.Server.Http;

/// <summary>
/// <c>/v1/ns/{ns}/queues</c> (the namespace's queues, paged) and <c>/v1/ns/{ns}/queues/{queue}</c>: task queues (enqueue with dedup id, group, delay, priority; lease with a visibility
/// timeout and an optional wait; ack with effects, nack, extend by receipt; dead letters). A receipt that is no longer
/// current is a 409 <c>stale-receipt</c> problem; an ack whose effect was refused a 409 <c>effect-conflict</c>.
/// </summary>
internal static class QueuesApi
{
    /// <summary>Longest lease wait one request may hold a connection for.</summary>
    private static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(60);

    public static void MapQueuesApi(this RouteGroupBuilder v1)
    {
        v1.MapGet("/ns/{ns}/queues", ListQueuesAsync).WithTags("Queues").WithName("ListQueues");
        var queues = v1.MapGroup("/ns/{ns}/queues/{queue}").WithTags("Queues");
        queues.MapGet("", StatsAsync).WithName("QueueStats");
        queues.MapPost("/tasks", EnqueueAsync).WithName("Enqueue");
        queues.MapGet("/tasks/{taskId}", GetTaskAsync).WithName("GetTask");
        queues.MapPost("/lease", LeaseAsync).WithName("LeaseTask");
        queues.MapPost("/ack", AckAsync).WithName("AckTask");
        queues.MapPost("/prepare/enqueue", PrepareEnqueueAsync).WithName("PrepareEnqueue");
        queues.MapPost("/prepare/ack", PrepareAckAsync).WithName("PrepareAck");
        queues.MapPost("/nack", NackAsync).WithName("NackTask");
        queues.MapPost("/extend", ExtendAsync).WithName("ExtendLease");
        queues.MapPost("/reclaim", ReclaimAsync).WithName("ReclaimExpired");
        queues.MapGet("/dead", DeadLettersAsync).WithName("ListDeadLetters");
        queues.MapPost("/dead/{taskId}/requeue", RequeueAsync).WithName("RequeueDeadLetter");
        queues.MapDelete("/dead/{taskId}", DeleteDeadAsync).WithName("DeleteDeadLetter");
    }

    /// <summary>The namespace's queues that hold tasks, in name order: <c>?after=NAME&amp;limit=N</c> (default 100, at most 1000).</summary>
    private static async Task<IResult> ListQueuesAsync(HttpContext http, string ns, IQueueService queues, Auth auth, CancellationToken ct)
    {
        if (auth.Check(http, ns, ApiRights.Read, out _) is { } denied) return denied;
        var after = http.Request.Query["after"].Count > 0 ? http.Request.Query["after"].ToString() : null;
        var limit = http.Request.Query["limit"].Count > 0 ? StateApi.ParseLong(http.Request.Query["limit"].ToString(), "limit") : 100;
        if (limit is < 1 or > QueueListPage.MaxLimit)
            throw new HttpIo.BadInputException(400, "invalid-request", $"'limit' must be between 1 and {QueueListPage.MaxLimit} (got {limit})");
        return Results.Json(await queues.ListQueuesAsync(ns, after, (int)limit, ct), WireJson.Options);
    }

    private static async Task<IResult> StatsAsync(HttpContext http, string ns, string queue, IQueueService queues, Auth auth, CancellationToken ct)
    {
        if (auth.Check(http, ns, ApiRights.Read, out _) is { } denied) return denied;
        return Results.Json(await queues.GetStatsAsync(ns, queue, ct), WireJson.Options);
    }

    private static async Task<IResult> EnqueueAsync(HttpContext http, string ns, string queue, IQueueService queues, Auth auth, ConcordServerOptions options, CancellationToken ct)
    {
        if (auth.Check(http, ns, ApiRights.Write, out var caller) is { } denied) return denied;
        using var doc = await HttpIo.ReadJsonAsync(http.Request, options.MaxRequestBodyBytes, ct);
        var body = HttpIo.Deserialize<EnqueueRequestDto>(doc, "Enqueue request");
        if (body.Payload is not { } payload) throw new HttpIo.BadInputException(400, "invalid-request", "'payload' is required");
        var result = await queues.EnqueueAsync(ns, queue, payload, new EnqueueOptions
        {
            DedupId = body.DedupId,
            Group = body.Group,
            Delay = Milliseconds(body.DelayMs, "delayMs"),
            Priority = body.Priority,
            MaxAttempts = body.MaxAttempts,
            Agent = HttpIo.Agent(http.Request, caller),
        }, ct);
        if (result.Status == EnqueueStatus.QueueFull)
        {
            http.Response.Headers.RetryAfter = "1";
            return Problems.Create(429, "queue-full", "Queue full", $"Queue '{queue}' is at its limit of unfinished tasks; retry after consumers drain it",
                new Dictionary<string, object?> { ["queue"] = queue });
        }
        return Results.Json(result, WireJson.Options, statusCode: result.IsEnqueued ? 201 : 200);
    }

    /// <summary>The operations of an enqueue, for the caller's own transaction (prepared with the server's clock).</summary>
    private static async Task<IResult> PrepareEnqueueAsync(HttpContext http, string ns, string queue, IQueueService queues, Auth auth, ConcordServerOptions options, CancellationToken ct)
    {
        if (auth.Check(http, ns, ApiRights.Write, out var caller) is { } denied) return denied;
        using var doc = await HttpIo.ReadJsonAsync(http.Request, options.MaxRequestBodyBytes, ct);
        var body = HttpIo.Deserialize<EnqueueRequestDto>(doc, "Enqueue request");
        if (body.Payload is not { } payload) throw new HttpIo.BadInputException(400, "invalid-request", "'payload' is required");
        var prepared = await queues.PrepareEnqueueAsync(ns, queue, payload, new EnqueueOptions
        {
            DedupId = body.DedupId,
            Group = body.Group,
            Delay = Milliseconds(body.DelayMs, "delayMs"),
            Priority = body.Priority,
            MaxAttempts = body.MaxAttempts,
            Agent = HttpIo.Agent(http.Request, caller),
        }, ct);
        return Results.Json(new PreparedOpsDto(prepared.TaskId, WireMapper.ToDto(new TxnRequest { Then = prepared.Ops }).Then, false, null), WireJson.Options);
    }

    /// <summary>The operations that ack a lease, for the caller's own transaction.</summary>
    private static async Task<IResult> PrepareAckAsync(HttpContext http, string ns, string queue, IQueueService queues, Auth auth, ConcordServerOptions options, CancellationToken ct)
    {
        if (auth.Check(http, ns, ApiRights.Write, out var caller) is { } denied) return denied;
        var (_, lease) = await ReadReceiptAsync(http, ns, queue, caller, options, ct);
        var prepared = await queues.PrepareAckAsync(lease, ct);
        return Results.Json(new PreparedOpsDto(lease.TaskId, WireMapper.ToDto(new TxnRequest { Then = prepared.Ops }).Then, prepared.IsStale, prepared.Message), WireJson.Options);
    }

    private static async Task<IResult> GetTaskAsync(HttpContext http, string ns, string queue, string taskId, IQueueService queues, Auth auth, CancellationToken ct)
    {
        if (auth.Check(http, ns, ApiRights.Read, out _) is { } denied) return denied;
        return await queues.GetTaskAsync(ns, queue, taskId, ct) is { } task
            ? Results.Json(task, WireJson.Options)
            : Problems.Create(404, "task-not-found", "Not found", $"Task '{taskId}' is not in queue '{queue}' (never enqueued, or acked)");
    }

    private static async Task<IResult> LeaseAsync(HttpContext http, string ns, string queue, IQueueService queues, Auth auth, ConcordServerOptions options, CancellationToken ct)
    {
        if (auth.Check(http, ns, ApiRights.Write, out var caller) is { } denied) return denied;
        using var doc = await HttpIo.ReadJsonAsync(http.Request, options.MaxRequestBodyBytes, ct);
        var body = HttpIo.Deserialize<LeaseRequestDto>(doc, "Lease request");
        var wait = Milliseconds(body.WaitMs, "waitMs");
        if (wait > MaxWait) wait = MaxWait;
        var result = await queues.LeaseAsync(ns, queue, body.Consumer ?? HttpIo.Agent(http.Request, caller) ?? "anonymous", Milliseconds(body.VisibilityMs, "visibilityMs"), wait, ct);
        return Results.Json(new LeaseResponseDto(result.Lease, result.NextVisibleAt), WireJson.Options);
    }

    private static async Task<IResult> AckAsync(HttpContext http, string ns, string queue, IQueueService queues, Auth auth, ConcordServerOptions options, CancellationToken ct)
    {
        if (auth.Check(http, ns, ApiRights.Write, out var caller) is { } denied) return denied;
        var (body, lease) = await ReadReceiptAsync(http, ns, queue, caller, options, ct);
        var effects = body.Effects is { Count: > 0 } e ? WireMapper.FromDto(new TxnRequestDto { Then = e }).Then : null;
        if (effects is not null && effects.Any(o => o.Kind != TxnOpKind.Get && o.Key.StartsWith("_sys/", StringComparison.Ordinal))
            && !Auth.Permits(caller, ns, ApiRights.Admin))
            return Auth.Forbidden(ns, ApiRights.Admin);
        var result = await queues.AckAsync(lease, effects, ct);
        return result.Status switch
        {
            AckStatus.Acked => Results.Json(new AckResponseDto(result.Revision, result.Replayed), WireJson.Options),
            AckStatus.EffectConflict => Problems.Create(409, "effect-conflict", "Effect refused", result.Message ?? "an effect was refused", new Dictionary<string, object?>
            {
                ["effectIndex"] = result.EffectIndex,
                ["conflict"] = result.Conflict is { } c ? WriteResultDto.From(c) : null,
                ["revision"] = result.Revision,
            }),
            _ => StaleReceipt(result.Message),
        };
    }

    private static async Task<IResult> NackAsync(HttpContext http, string ns, string queue, IQueueService queues, Auth auth, ConcordServerOptions options, CancellationToken ct)
    {
        if (auth.Check(http, ns, ApiRights.Write, out var caller) is { } denied) return denied;
        var (body, lease) = await ReadReceiptAsync(http, ns, queue, caller, options, ct);
        var result = await queues.NackAsync(lease, body.Reason, Milliseconds(body.DelayMs, "delayMs"), ct);
        return result.Status == NackStatus.StaleReceipt ? StaleReceipt(result.Message) : Results.Json(result, WireJson.Options);
    }

    private static async Task<IResult> ExtendAsync(HttpContext http, string ns, string queue, IQueueService queues, Auth auth, ConcordServerOptions options, CancellationToken ct)
    {
        if (auth.Check(http, ns, ApiRights.Write, out var caller) is { } denied) return denied;
        var (body, lease) = await ReadReceiptAsync(http, ns, queue, caller, options, ct);
        var result = await queues.ExtendAsync(lease, Milliseconds(body.VisibilityMs, "visibilityMs"), ct);
        return result.Lease is { } extended
            ? Results.Json(new ExtendResponseDto(extended.Deadline, extended.Revision), WireJson.Options)
            : StaleReceipt(result.Message);
    }

    private static async Task<IResult> ReclaimAsync(HttpContext http, string ns, string queue, IQueueService queues, Auth auth, CancellationToken ct)
    {
        if (auth.Check(http, ns, ApiRights.Write, out _) is { } denied) return denied;
        return Results.Json(new { reclaimed = await queues.ReclaimExpiredAsync(ns, queue, ct) }, WireJson.Options);
    }

    private static async Task<IResult> DeadLettersAsync(HttpContext http, string ns, string queue, IQueueService queues, Auth auth, CancellationToken ct)
    {
        if (auth.Check(http, ns, ApiRights.Read, out _) is { } denied) return denied;
        var limit = http.Request.Query["limit"].Count > 0 ? (int)Math.Min(StateApi.ParseLong(http.Request.Query["limit"].ToString(), "limit"), 10_000) : 100;
        return Results.Json(await queues.ListDeadLettersAsync(ns, queue, limit, ct), WireJson.Options);
    }

    private static async Task<IResult> RequeueAsync(HttpContext http, string ns, string queue, string taskId, IQueueService queues, Auth auth, CancellationToken ct)
    {
        if (auth.Check(http, ns, ApiRights.Write, out _) is { } denied) return denied;
        return Results.Json(new { requeued = await queues.RequeueDeadLetterAsync(ns, queue, taskId, ct) }, WireJson.Options);
    }

    private static async Task<IResult> DeleteDeadAsync(HttpContext http, string ns, string queue, string taskId, IQueueService queues, Auth auth, CancellationToken ct)
    {
        if (auth.Check(http, ns, ApiRights.Write, out _) is { } denied) return denied;
        return Results.Json(new { deleted = await queues.DeleteDeadLetterAsync(ns, queue, taskId, ct) }, WireJson.Options);
    }

    /// <summary>The lease named by a receipt body. Only the task id, receipt and consumer matter to the queue service.</summary>
    private static async Task<(ReceiptRequestDto Body, QueueLease Lease)> ReadReceiptAsync(HttpContext http, string ns, string queue, Caller caller,
        ConcordServerOptions options, CancellationToken ct)
    {
        using var doc = await HttpIo.ReadJsonAsync(http.Request, options.MaxRequestBodyBytes, ct);
        var body = HttpIo.Deserialize<ReceiptRequestDto>(doc, "Receipt request");
        if (string.IsNullOrEmpty(body.TaskId) || string.IsNullOrEmpty(body.Receipt))
            throw new HttpIo.BadInputException(400, "invalid-request", "'taskId' and 'receipt' are required");
        var lease = new QueueLease
        {
            Namespace = ns,
            Queue = queue,
            TaskId = body.TaskId,
            Receipt = body.Receipt,
            Consumer = body.Consumer ?? HttpIo.Agent(http.Request, caller) ?? "anonymous",
            Payload = default,
        };
        return (body, lease);
    }

    private static IResult StaleReceipt(string? message) =>
        Problems.Create(409, "stale-receipt", "Stale receipt", message ?? "The receipt is no longer current: the lease expired, was taken over, or the task was acked");

    private static TimeSpan Milliseconds(long ms, string name) =>
        ms is >= 0 and <= 366L * 24 * 3600 * 1000
            ? TimeSpan.FromMilliseconds(ms)
            : throw new HttpIo.BadInputException(400, "invalid-request", $"'{name}' must be between 0 and 366 days in milliseconds (got {ms})");
}
