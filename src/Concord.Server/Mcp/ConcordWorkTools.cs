using System.ComponentModel;
using System.Text.Json;
using Concord.Coordination.Queues;
using Concord.Coordination.Streams;
using Concord.Server.Http;
using Microsoft.AspNetCore.Http;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Concord.Server.Mcp;

/// <summary>
/// MCP tools for work queues (enqueue / lease / ack) and event streams (append / read_events). Like the state tools,
/// expected outcomes (empty queue, stale receipt, wrong stream version) are results the model acts on; bad arguments
/// and refusals are tool errors that change nothing.
/// </summary>
[McpServerToolType]
internal sealed class ConcordWorkTools(IQueueService queues, IStreamService streams, Auth auth, IHttpContextAccessor accessor)
{
    [McpServerTool(Name = "enqueue")]
    [Description("Adds a task to a work queue. Returns {enqueued, taskId}. Pass dedupId to make a retried enqueue create nothing new (enqueued=false, same taskId). " +
        "Tasks with the same group run one at a time, in order.")]
    public async Task<CallToolResult> EnqueueAsync(
        [Description("Namespace.")] string ns,
        [Description("Queue name, e.g. \"reviews\".")] string queue,
        [Description("The task's JSON payload.")] JsonElement payload,
        [Description("Optional deduplication id (e.g. the id of the thing to process).")] string? dedupId = null,
        [Description("Optional group key: tasks of a group never run concurrently.")] string? group = null,
        [Description("Optional delay in seconds before the task becomes visible (0..86400).")] double delaySeconds = 0,
        [Description("Higher runs first.")] int priority = 0,
        CancellationToken cancellationToken = default)
    {
        var caller = Authorize(ns, ApiRights.Write);
        if (payload.ValueKind == JsonValueKind.Undefined) throw new McpException("payload is required (any JSON value).");
        if (delaySeconds is < 0 or > 86_400 || double.IsNaN(delaySeconds)) throw new McpException("delaySeconds must be between 0 and 86400.");
        return await Guard(async () =>
        {
            var options = new EnqueueOptions { DedupId = dedupId, Group = group, Delay = TimeSpan.FromSeconds(delaySeconds), Priority = priority, Agent = Agent(caller) };
            var result = await queues.EnqueueAsync(ns, queue, payload, options, cancellationToken).ConfigureAwait(false);
            return Ok(new { enqueued = result.IsEnqueued, taskId = result.TaskId, duplicate = result.Status == EnqueueStatus.Duplicate ? true : (bool?)null });
        }).ConfigureAwait(false);
    }

    [McpServerTool(Name = "lease")]
    [Description("Takes the next visible task from a queue for you alone, for visibilitySeconds. Returns {leased:true, taskId, receipt, payload, attempt, deadline}: " +
        "do the work, then call ack with taskId and receipt before the deadline (otherwise the task is handed to someone else). " +
        "Returns {leased:false} when nothing is ready.")]
    public async Task<CallToolResult> LeaseAsync(
        [Description("Namespace.")] string ns,
        [Description("Queue name.")] string queue,
        [Description("How long the task is yours, in seconds (1..3600).")] double visibilitySeconds = 60,
        CancellationToken cancellationToken = default)
    {
        var caller = Authorize(ns, ApiRights.Write);
        if (visibilitySeconds is < 1 or > 3600 || double.IsNaN(visibilitySeconds)) throw new McpException("visibilitySeconds must be between 1 and 3600.");
        return await Guard(async () =>
        {
            var result = await queues.LeaseAsync(ns, queue, Agent(caller), TimeSpan.FromSeconds(visibilitySeconds), default, cancellationToken).ConfigureAwait(false);
            return result.Lease is { } l
                ? Ok(new { leased = true, taskId = l.TaskId, receipt = l.Receipt, payload = l.Payload, attempt = l.Attempt, maxAttempts = l.MaxAttempts, deadline = l.Deadline })
                : Ok(new { leased = false, nextVisibleAt = result.NextVisibleAt, hint = "Nothing is ready in this queue now." });
        }).ConfigureAwait(false);
    }

    [McpServerTool(Name = "ack", Idempotent = true)]
    [Description("Marks a leased task done. Returns {acked:true}; acked=false with status \"staleReceipt\" means your lease had ended and someone else may be doing the task: do not repeat its effects.")]
    public async Task<CallToolResult> AckAsync(
        [Description("Namespace.")] string ns,
        [Description("Queue name.")] string queue,
        [Description("The taskId returned by lease.")] string taskId,
        [Description("The receipt returned by lease.")] string receipt,
        CancellationToken cancellationToken = default)
    {
        var caller = Authorize(ns, ApiRights.Write);
        if (string.IsNullOrWhiteSpace(taskId) || string.IsNullOrWhiteSpace(receipt)) throw new McpException("taskId and receipt are required (both returned by lease).");
        return await Guard(async () =>
        {
            var lease = new QueueLease { Namespace = ns, Queue = queue, TaskId = taskId, Receipt = receipt, Payload = default, Consumer = Agent(caller) };
            var result = await queues.AckAsync(lease, null, cancellationToken).ConfigureAwait(false);
            return Ok(new { acked = result.IsAcked, status = Problems.WireJsonName(result.Status), message = result.Message });
        }).ConfigureAwait(false);
    }

    [McpServerTool(Name = "append")]
    [Description("Appends events to a stream (an immutable log). events is an array of {type, data, id?}. expectedVersion: omit to append whatever the stream holds, " +
        "0 to require a new stream, n to require exactly n events so far. Returns {appended:true, version} or {appended:false, currentVersion, hint} " +
        "when someone appended in between: read the new events, then decide again.")]
    public async Task<CallToolResult> AppendAsync(
        [Description("Namespace.")] string ns,
        [Description("Stream name, e.g. \"order-42\".")] string stream,
        [Description("Events: [{\"type\":\"OrderShipped\",\"data\":{...},\"id\":\"optional-unique-id\"}].")] JsonElement events,
        [Description("Optional expected stream version (0 = must not exist yet).")] long? expectedVersion = null,
        [Description("Optional id of this logical append; a retry with the same id is applied once.")] string? operationId = null,
        CancellationToken cancellationToken = default)
    {
        var caller = Authorize(ns, ApiRights.Write);
        var parsed = ParseEvents(events);
        if (expectedVersion is < 0) throw new McpException("expectedVersion must not be negative.");
        var expected = expectedVersion is { } v ? ExpectedVersion.Exactly(v) : ExpectedVersion.Any;
        return await Guard(async () =>
        {
            var options = new AppendOptions { Agent = Agent(caller), IdempotencyKey = string.IsNullOrEmpty(operationId) ? null : "mcp:" + operationId };
            var r = await streams.AppendAsync(ns, stream, parsed, expected, options, cancellationToken).ConfigureAwait(false);
            return r.IsAppended
                ? Ok(new { appended = true, stream, version = r.Version, replayed = r.Replayed ? true : (bool?)null })
                : Ok(new { appended = false, stream, conflict = Problems.WireJsonName(r.Status), currentVersion = r.Version, message = r.Message,
                    hint = $"The stream is at version {r.Version}. Read the events after your version, then retry with expectedVersion={r.Version} if still appropriate." });
        }).ConfigureAwait(false);
    }

    [McpServerTool(Name = "read_events", ReadOnly = true, Idempotent = true)]
    [Description("Reads a stream's events in order, starting at fromVersion (1 = the first event), at most count. Returns {events:[{version, id, type, data, writer}], streamVersion}.")]
    public async Task<CallToolResult> ReadEventsAsync(
        [Description("Namespace.")] string ns,
        [Description("Stream name.")] string stream,
        [Description("First version to read (1-based).")] long fromVersion = 1,
        [Description("Maximum events, 1..500.")] int count = 100,
        CancellationToken cancellationToken = default)
    {
        Authorize(ns, ApiRights.Read);
        if (fromVersion < 1) throw new McpException("fromVersion must be at least 1.");
        if (count is < 1 or > 500) throw new McpException("count must be between 1 and 500.");
        return await Guard(async () =>
        {
            var read = await streams.ReadStreamAsync(ns, stream, fromVersion, count, ReadDirection.Forward, cancellationToken).ConfigureAwait(false);
            var info = await streams.GetStreamAsync(ns, stream, cancellationToken).ConfigureAwait(false);
            return Ok(new
            {
                events = read.Select(e => new { version = e.Version, id = e.Id, type = e.Type, data = e.Data, writer = e.Writer, recordedAt = e.RecordedAt }),
                streamVersion = info?.Version ?? 0,
            });
        }).ConfigureAwait(false);
    }

    private static List<EventData> ParseEvents(JsonElement events)
    {
        if (events.ValueKind != JsonValueKind.Array || events.GetArrayLength() == 0)
            throw new McpException("events must be a non-empty JSON array of {\"type\":\"...\",\"data\":{...}} objects.");
        var list = new List<EventData>();
        var i = 0;
        foreach (var e in events.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(type.GetString()))
                throw new McpException($"events[{i}] needs a non-empty string \"type\".");
            var data = e.TryGetProperty("data", out var d) ? d.Clone() : JsonDocument.Parse("null").RootElement.Clone();
            var id = e.TryGetProperty("id", out var idElement) && idElement.ValueKind == JsonValueKind.String ? idElement.GetString() : null;
            list.Add(new EventData(type.GetString()!, data, default, id));
            i++;
        }
        return list;
    }

    private Caller Authorize(string ns, ApiRights needed)
    {
        var caller = accessor.HttpContext?.Items[McpEndpoint.CallerItem] as Caller ?? new Caller(null);
        if (string.IsNullOrEmpty(ns)) throw new McpException("ns (namespace) is required.");
        if (auth.Enabled && !Auth.Permits(caller, ns, needed))
            throw new McpException($"Forbidden: this API key may not {Auth.Describe(needed)} in namespace '{ns}'.");
        return caller;
    }

    private string Agent(Caller caller)
    {
        var header = accessor.HttpContext is { } http ? HttpIo.HeaderText(http.Request, "Concord-Agent") : "";
        return header.Length > 0 ? header : caller.Key?.Name ?? "mcp";
    }

    private static CallToolResult Ok(object payload) => ConcordTools.Result(payload);

    private static Task<CallToolResult> Guard(Func<Task<CallToolResult>> body) => ConcordTools.GuardAsync(body);
}
