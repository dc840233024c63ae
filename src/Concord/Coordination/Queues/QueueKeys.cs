using System.Text.Json;

namespace Concord.Coordination.Queues;

/// <summary>
/// Key layout of one queue under <c>_sys/queues/{queue}/</c> (see docs/queues-and-streams.md). Index keys put the
/// sort order into fixed-width decimal segments so an ordinal prefix scan returns entries in processing order.
/// </summary>
internal sealed class QueueKeys
{
    public QueueKeys(string queue)
    {
        SysKeys.ValidateName(queue, "Queue");
        Queue = queue;
        Root = StoreQueueService.KeyPrefix + queue + "/";
        Tasks = Root + "t/";
        Ready = Root + "r/";
        InFlight = Root + "f/";
        Dead = Root + "x/";
        Dedups = Root + "d/";
        Groups = Root + "g/";
        Members = Root + "m/";
    }

    public string Queue { get; }

    /// <summary><c>_sys/queues/{q}/</c>: everything of the queue.</summary>
    public string Root { get; }

    /// <summary><c>t/{id}</c>: the task record (payload, state, attempts, receipt, …).</summary>
    public string Tasks { get; }

    /// <summary><c>r/{band}/{visibleAt}/{order}/{id}</c>: ready and delayed tasks, priority band first (higher priority = smaller band).</summary>
    public string Ready { get; }

    /// <summary><c>f/{deadline}/{id}</c>: leased tasks by lease deadline, for reclaiming expired leases.</summary>
    public string InFlight { get; }

    /// <summary><c>x/{deadAt}/{id}</c>: dead letters, oldest first.</summary>
    public string Dead { get; }

    /// <summary><c>d/{dedupId}</c> → task id, with the dedup window as TTL.</summary>
    public string Dedups { get; }

    /// <summary><c>g/{group}</c>: {next, count} of a group with unfinished tasks.</summary>
    public string Groups { get; }

    /// <summary><c>m/{group}/{seq}</c> → task id: a group's unfinished tasks in FIFO order; the first is the head.</summary>
    public string Members { get; }

    /// <summary><c>n</c>: {"tasks": unfinished tasks}, kept by atomic increments in the same transactions that add and remove tasks.</summary>
    public string Count => Root + "n";

    public string Task(string id) => Tasks + id;

    public static string Band(int priority) => (2147483647L - priority).ToString("D10", System.Globalization.CultureInfo.InvariantCulture);

    public string ReadyKey(int priority, DateTimeOffset visibleAt, long order, string id) =>
        $"{Ready}{Band(priority)}/{SysKeys.D19(visibleAt.UtcTicks)}/{SysKeys.D19(order)}/{id}";

    /// <summary>A key after every entry of <paramref name="band"/> and before the next band.</summary>
    public string BandEnd(string band) => $"{Ready}{band}/9999999999999999999";

    /// <summary>Band and visibility ticks of a ready key.</summary>
    public (string Band, long VisibleTicks) ParseReady(string key)
    {
        var rest = key.AsSpan(Ready.Length);
        var slash = rest.IndexOf('/');
        var band = rest[..slash].ToString();
        rest = rest[(slash + 1)..];
        return (band, SysKeys.ParseLong(rest[..rest.IndexOf('/')]));
    }

    public string InFlightKey(DateTimeOffset deadline, string id) => $"{InFlight}{SysKeys.D19(deadline.UtcTicks)}/{id}";

    public long ParseInFlight(string key)
    {
        var rest = key.AsSpan(InFlight.Length);
        return SysKeys.ParseLong(rest[..rest.IndexOf('/')]);
    }

    public string DeadKey(DateTimeOffset at, string id) => $"{Dead}{SysKeys.D19(at.UtcTicks)}/{id}";

    public string Dedup(string dedupId) => Dedups + SysKeys.Segment(dedupId, "Dedup id");

    public string Group(string group) => Groups + SysKeys.Segment(group, "Group key");

    public string MemberPrefix(string group) => Members + SysKeys.Segment(group, "Group key") + "/";

    public string Member(string group, long seq) => MemberPrefix(group) + SysKeys.D20(seq);

    /// <summary>The <c>{"id":…}</c> value of index entries.</summary>
    public static JsonElement IdValue(string id) => JsonSerializer.SerializeToElement(new IdRef { Id = id }, JsonDefaults.Web);

    public static string IdOf(ConcordRecord entry)
    {
        if (entry.Value.ValueKind == JsonValueKind.Object && entry.Value.TryGetProperty("id", out var id) && id.GetString() is { } s) return s;
        throw new InvalidRequestException($"'{entry.Key}' is not a queue index entry; keys under {StoreQueueService.KeyPrefix} are reserved");
    }

    private sealed class IdRef
    {
        public string Id { get; set; } = "";
    }
}

/// <summary>The JSON document of a task record.</summary>
internal sealed class TaskDoc
{
    public string Id { get; set; } = "";
    public JsonElement Payload { get; set; }
    public QueueTaskState State { get; set; }
    public int Attempts { get; set; }
    public int MaxAttempts { get; set; }
    public int Priority { get; set; }
    public string? Group { get; set; }
    public long GroupSeq { get; set; }
    public string? DedupId { get; set; }
    public DateTimeOffset EnqueuedAt { get; set; }
    public DateTimeOffset VisibleAt { get; set; }

    /// <summary>Tie-breaker among tasks visible at the same instant (monotonic per producer).</summary>
    public long Order { get; set; }

    /// <summary>The index entry (ready, in-flight or dead) that currently points at this task; null while waiting in a group.</summary>
    public string? Index { get; set; }

    public string? Receipt { get; set; }
    public string? Consumer { get; set; }
    public DateTimeOffset? LeasedAt { get; set; }
    public DateTimeOffset? Deadline { get; set; }
    public string? LastError { get; set; }
    public DateTimeOffset? DeadAt { get; set; }

    /// <summary>W3C traceparent of the producer's span (Diagnostics): consumers link their spans to it.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? TraceParent { get; set; }

    public static TaskDoc From(ConcordRecord record)
    {
        try
        {
            return record.Value.Deserialize<TaskDoc>(JsonDefaults.Web) ?? throw new JsonException("null");
        }
        catch (JsonException e)
        {
            throw new InvalidRequestException($"'{record.Key}' is not a task record ({e.Message}); keys under {StoreQueueService.KeyPrefix} are reserved");
        }
    }

    public JsonElement ToJson() => JsonSerializer.SerializeToElement(this, JsonDefaults.Web);

    public TaskDoc Clone() => (TaskDoc)MemberwiseClone();

    public QueueTask ToTask(string queue) => new()
    {
        Queue = queue,
        Id = Id,
        Payload = Payload,
        State = State,
        Attempts = Attempts,
        MaxAttempts = MaxAttempts,
        Priority = Priority,
        Group = Group,
        DedupId = DedupId,
        EnqueuedAt = EnqueuedAt,
        VisibleAt = VisibleAt,
        Consumer = Consumer,
        LeaseDeadline = State == QueueTaskState.Leased ? Deadline : null,
        LastError = LastError,
        DeadAt = DeadAt,
    };
}

/// <summary>The JSON document of a group record: the next member sequence number and the count of unfinished tasks.</summary>
internal sealed class GroupDoc
{
    public long Next { get; set; }
    public long Count { get; set; }

    public static GroupDoc From(ConcordRecord? record)
    {
        if (record is null) return new GroupDoc();
        try
        {
            return record.Value.Deserialize<GroupDoc>(JsonDefaults.Web) ?? new GroupDoc();
        }
        catch (JsonException e)
        {
            throw new InvalidRequestException($"'{record.Key}' is not a queue group record ({e.Message}); keys under {StoreQueueService.KeyPrefix} are reserved");
        }
    }

    public JsonElement ToJson() => JsonSerializer.SerializeToElement(this, JsonDefaults.Web);
}
