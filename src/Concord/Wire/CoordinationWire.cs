using System.Text.Json;
using Concord.Coordination.Queues;
using Concord.Coordination.Streams;

namespace Concord.Wire;

/// <summary><c>POST /v1/ns/{ns}/queues/{queue}/tasks</c>: one task to enqueue.</summary>
public sealed record EnqueueRequestDto
{
    /// <summary>Task payload (any JSON).</summary>
    public JsonElement? Payload { get; init; }
    /// <summary>Deduplication id (see <see cref="EnqueueOptions.DedupId"/>).</summary>
    public string? DedupId { get; init; }
    /// <summary>Group key (see <see cref="EnqueueOptions.Group"/>).</summary>
    public string? Group { get; init; }
    /// <summary>Visibility delay in milliseconds.</summary>
    public long DelayMs { get; init; }
    /// <summary>Priority (higher first).</summary>
    public int Priority { get; init; }
    /// <summary>Leases before dead-lettering; null takes the server default.</summary>
    public int? MaxAttempts { get; init; }
}

/// <summary><c>POST /v1/ns/{ns}/queues/{queue}/lease</c>: lease the next visible task.</summary>
public sealed record LeaseRequestDto
{
    /// <summary>Consumer name; defaults to the request's agent.</summary>
    public string? Consumer { get; init; }
    /// <summary>Visibility timeout in milliseconds. <value>Default: 30,000.</value></summary>
    public long VisibilityMs { get; init; } = 30_000;
    /// <summary>How long to wait for a task, in milliseconds (the server caps it at 60,000). <value>Default: 0 (try once).</value></summary>
    public long WaitMs { get; init; }
}

/// <summary>The answer to a lease request: a lease, or none with the next moment a task becomes visible.</summary>
/// <param name="Lease">The leased task, or null.</param>
/// <param name="NextVisibleAt">When empty, the earliest moment something becomes visible, if known.</param>
public sealed record LeaseResponseDto(QueueLease? Lease, DateTimeOffset? NextVisibleAt);

/// <summary>Body of ack, nack and extend: the lease's task and receipt, plus what the operation needs.</summary>
public sealed record ReceiptRequestDto
{
    /// <summary>Task id of the lease.</summary>
    public string? TaskId { get; init; }
    /// <summary>Receipt of the lease.</summary>
    public string? Receipt { get; init; }
    /// <summary>Consumer holding the lease (recorded as the writer); defaults to the request's agent.</summary>
    public string? Consumer { get; init; }
    /// <summary>Ack only: operations committed in the same transaction as the ack.</summary>
    public List<TxnOpDto>? Effects { get; init; }
    /// <summary>Nack only: the failure reason.</summary>
    public string? Reason { get; init; }
    /// <summary>Nack only: delay before the task is visible again, in milliseconds.</summary>
    public long DelayMs { get; init; }
    /// <summary>Extend only: the new visibility timeout from now, in milliseconds. <value>Default: 30,000.</value></summary>
    public long VisibilityMs { get; init; } = 30_000;
}

/// <summary>An applied ack.</summary>
/// <param name="Revision">Commit revision.</param>
/// <param name="Replayed">True when a retry found its earlier ack committed.</param>
public sealed record AckResponseDto(long Revision, bool Replayed);

/// <summary>An applied extend.</summary>
/// <param name="Deadline">The new lease deadline.</param>
/// <param name="Revision">Commit revision.</param>
public sealed record ExtendResponseDto(DateTimeOffset Deadline, long Revision);

/// <summary>
/// Operations prepared by the server for the caller's own transaction (<c>…/prepare/enqueue</c>, <c>…/prepare/ack</c>).
/// </summary>
/// <param name="TaskId">The task the operations create (prepared enqueue) or complete (prepared ack).</param>
/// <param name="Ops">The operations, in order.</param>
/// <param name="Stale">Prepared ack only: the receipt is no longer current (no operations).</param>
/// <param name="Message">Why it is stale.</param>
public sealed record PreparedOpsDto(string? TaskId, List<TxnOpDto> Ops, bool Stale, string? Message);

/// <summary>An event to append, on the wire.</summary>
public sealed record EventDataDto
{
    /// <summary>Event id (handlers deduplicate on it); the server generates one when absent.</summary>
    public string? Id { get; init; }
    /// <summary>Event type.</summary>
    public string? Type { get; init; }
    /// <summary>Payload.</summary>
    public JsonElement? Data { get; init; }
    /// <summary>Metadata.</summary>
    public JsonElement? Metadata { get; init; }

    /// <summary>From an event.</summary>
    public static EventDataDto From(EventData e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return new()
        {
            Id = e.Id,
            Type = e.Type,
            Data = e.Data.ValueKind == JsonValueKind.Undefined ? null : e.Data,
            Metadata = e.Metadata.ValueKind == JsonValueKind.Undefined ? null : e.Metadata,
        };
    }

    /// <summary>To an event. Throws <see cref="InvalidRequestException"/> without a type.</summary>
    public EventData ToEventData() => string.IsNullOrWhiteSpace(Type)
        ? throw new InvalidRequestException("every event needs a 'type'")
        : new EventData(Type, Data ?? default, Metadata ?? default, Id);
}

/// <summary><c>POST /v1/ns/{ns}/streams/{*stream}</c>: events to append.</summary>
public sealed record AppendRequestDto
{
    /// <summary>Events, appended atomically in this order.</summary>
    public List<EventDataDto>? Events { get; init; }

    /// <summary>
    /// The expected version: a number (0 = the stream must be empty), or <c>"any"</c>, <c>"noStream"</c>,
    /// <c>"streamExists"</c>. <value>Default: any.</value>
    /// </summary>
    public JsonElement? ExpectedVersion { get; init; }

    /// <summary>Encodes an expected version.</summary>
    public static JsonElement? Encode(ExpectedVersion expected) => expected.Kind switch
    {
        ExpectedVersionKind.Exact => JsonSerializer.SerializeToElement(expected.Version),
        ExpectedVersionKind.NoStream => JsonSerializer.SerializeToElement("noStream"),
        ExpectedVersionKind.StreamExists => JsonSerializer.SerializeToElement("streamExists"),
        _ => null,
    };

    /// <summary>Decodes <see cref="ExpectedVersion"/>.</summary>
    public ExpectedVersion DecodeExpectedVersion()
    {
        if (ExpectedVersion is not { } e || e.ValueKind == JsonValueKind.Null) return Coordination.Streams.ExpectedVersion.Any;
        if (e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out var n) && n >= 0) return Coordination.Streams.ExpectedVersion.Exactly(n);
        return (e.ValueKind == JsonValueKind.String ? e.GetString() : null) switch
        {
            "any" => Coordination.Streams.ExpectedVersion.Any,
            "noStream" => Coordination.Streams.ExpectedVersion.NoStream,
            "streamExists" => Coordination.Streams.ExpectedVersion.StreamExists,
            _ => throw new InvalidRequestException($"expectedVersion must be a non-negative integer, \"any\", \"noStream\" or \"streamExists\" (got {e.GetRawText()})"),
        };
    }
}

/// <summary>An applied append on the wire. Positions are <c>REVISION:INDEX</c>.</summary>
/// <param name="Stream">Stream name.</param>
/// <param name="Version">The stream's version after the append.</param>
/// <param name="FirstPosition">Position of the first appended event.</param>
/// <param name="LastPosition">Position of the last appended event.</param>
/// <param name="Revision">Commit revision.</param>
/// <param name="Replayed">True for an idempotent replay.</param>
public sealed record AppendResponseDto(string Stream, long Version, string FirstPosition, string LastPosition, long Revision, bool Replayed)
{
    /// <summary>From a result.</summary>
    public static AppendResponseDto From(AppendResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        return new(r.Stream, r.Version, r.FirstPosition.ToString(), r.LastPosition.ToString(), r.Revision, r.Replayed);
    }

    /// <summary>To a result.</summary>
    public AppendResult ToResult() =>
        new(AppendStatus.Appended, Stream, Version, CoordinationWire.ParsePosition(FirstPosition), CoordinationWire.ParsePosition(LastPosition), null) { Replayed = Replayed };
}

/// <summary>A stored event on the wire.</summary>
public sealed record RecordedEventDto
{
    /// <summary>Stream name.</summary>
    public required string Stream { get; init; }
    /// <summary>Version within the stream.</summary>
    public long Version { get; init; }
    /// <summary>Global position, <c>REVISION:INDEX</c>.</summary>
    public required string Position { get; init; }
    /// <summary>Event id.</summary>
    public required string Id { get; init; }
    /// <summary>Event type.</summary>
    public required string Type { get; init; }
    /// <summary>Payload.</summary>
    public JsonElement? Data { get; init; }
    /// <summary>Metadata.</summary>
    public JsonElement? Metadata { get; init; }
    /// <summary>Commit time.</summary>
    public DateTimeOffset RecordedAt { get; init; }
    /// <summary>Writer agent.</summary>
    public string? Writer { get; init; }

    /// <summary>From an event.</summary>
    public static RecordedEventDto From(RecordedEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return new()
        {
            Stream = e.Stream,
            Version = e.Version,
            Position = e.Position.ToString(),
            Id = e.Id,
            Type = e.Type,
            Data = e.Data.ValueKind == JsonValueKind.Undefined ? null : e.Data,
            Metadata = e.Metadata.ValueKind == JsonValueKind.Undefined ? null : e.Metadata,
            RecordedAt = e.RecordedAt,
            Writer = e.Writer,
        };
    }

    /// <summary>To an event.</summary>
    public RecordedEvent ToEvent() => new()
    {
        Stream = Stream,
        Version = Version,
        Position = CoordinationWire.ParsePosition(Position),
        Id = Id,
        Type = Type,
        Data = Data ?? default,
        Metadata = Metadata ?? default,
        RecordedAt = RecordedAt,
        Writer = Writer,
    };
}

/// <summary>A page of one stream: its head and the events read.</summary>
/// <param name="Stream">Stream name.</param>
/// <param name="Version">The stream's version (0 when it has no events).</param>
/// <param name="LastRevision">Revision of its last append (0 when none).</param>
/// <param name="Events">The events read.</param>
public sealed record StreamPageDto(string Stream, long Version, long LastRevision, List<RecordedEventDto> Events);

/// <summary>A page of the global event order.</summary>
/// <param name="Events">The events read.</param>
/// <param name="End">The position just after every event committed so far.</param>
public sealed record EventsPageDto(List<RecordedEventDto> Events, string End);

/// <summary>A consumer group's checkpoint on the wire.</summary>
/// <param name="Position">The position of the last handled event, <c>REVISION:INDEX</c>; null before the first.</param>
public sealed record CheckpointDto(string? Position);

/// <summary>Helpers shared by the coordination routes and their clients.</summary>
public static class CoordinationWire
{
    /// <summary>Parses <c>REVISION:INDEX</c>; throws <see cref="InvalidRequestException"/> otherwise.</summary>
    public static StreamPosition ParsePosition(string? text) =>
        StreamPosition.TryParse(text, out var p) ? p : throw new InvalidRequestException($"A stream position is 'REVISION:INDEX' (got '{text}')");
}
