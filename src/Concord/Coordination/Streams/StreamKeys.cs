using System.Text.Json;
using Concord.Internal;

namespace Concord.Coordination.Streams;

/// <summary>
/// Key layout of streams under <c>_sys/streams/</c> (see docs/queues-and-streams.md):
/// <c>h/{stream}</c> head {version}; <c>e/{stream}/@{version:D20}</c> events; <c>g/{group}</c> consumer-group
/// checkpoints; <c>d/{group}/{eventId}</c> handler dedup markers. No stream-name segment may start with '@', so the
/// events of one stream are exactly the keys under <c>e/{stream}/@</c>.
/// </summary>
internal static class StreamKeys
{
    public const string Root = StoreStreamService.KeyPrefix;
    public const string Heads = Root + "h/";
    public const string Events = Root + "e/";
    public const string Checkpoints = Root + "g/";
    public const string Handled = Root + "d/";
    public const int MaxStreamLength = 300;

    public static string Head(string stream) => Heads + stream;

    public static string EventPrefix(string stream) => Events + stream + "/@";

    public static string Event(string stream, long version) => EventPrefix(stream) + SysKeys.D20(version);

    public static string Checkpoint(string group) => Checkpoints + SysKeys.Segment(group, "Consumer group");

    public static string HandledMarker(string group, string eventId) =>
        Handled + SysKeys.Segment(group, "Consumer group") + "/" + SysKeys.Segment(eventId, "Event id");

    public static string StreamOfHead(string headKey) => headKey[Heads.Length..];

    public static bool IsEvent(string key) => key.StartsWith(Events, StringComparison.Ordinal);

    public static (string Stream, long Version) ParseEvent(string key)
    {
        var rest = key.AsSpan(Events.Length);
        var at = rest.LastIndexOf("/@");
        return (rest[..at].ToString(), SysKeys.ParseLong(rest[(at + 2)..]));
    }

    /// <summary>The watch prefix covering exactly the events a filter selects (plus, for prefixes, nothing else).</summary>
    public static string WatchPrefix(StreamFilter filter) => filter.Stream is { } s ? EventPrefix(s) : Events + filter.Prefix;

    public static void ValidateStream(string stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (stream.Length is 0 or > MaxStreamLength) throw new InvalidRequestException($"Stream name must have 1 to {MaxStreamLength} characters");
        foreach (var segment in stream.Split('/'))
        {
            if (segment.Length == 0) throw new InvalidRequestException($"Stream name '{stream}' has an empty segment (leading, trailing or double '/')");
            if (segment[0] == '@') throw new InvalidRequestException($"Stream name '{stream}' has a segment starting with '@' (reserved for event keys)");
        }
        try
        {
            KeyRules.ValidateKey(Event(stream, 0));
        }
        catch (InvalidKeyException e)
        {
            throw new InvalidRequestException($"Stream name '{stream}' is not valid: {e.Reason}");
        }
    }

    public static void ValidatePrefix(string prefix)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        KeyRules.ValidatePrefix(Events + prefix);
    }
}

/// <summary>The JSON document of a stream head.</summary>
internal sealed class HeadDoc
{
    public long Version { get; set; }

    public static HeadDoc From(ConcordRecord? record)
    {
        if (record is null) return new HeadDoc();
        try
        {
            return record.Value.Deserialize<HeadDoc>(JsonDefaults.Web) ?? new HeadDoc();
        }
        catch (JsonException e)
        {
            throw new InvalidRequestException($"'{record.Key}' is not a stream head ({e.Message}); keys under {StreamKeys.Root} are reserved");
        }
    }

    public JsonElement ToJson() => JsonSerializer.SerializeToElement(this, JsonDefaults.Web);
}

/// <summary>The JSON document of an event.</summary>
internal sealed class EventDoc
{
    public string Id { get; set; } = "";
    public string Type { get; set; } = "";
    public JsonElement? Data { get; set; }
    public JsonElement? Metadata { get; set; }

    /// <summary>Index among the stream events of the commit: the second half of the global position.</summary>
    public int Index { get; set; }

    /// <summary>W3C traceparent of the appender's span (Diagnostics): consumers link their spans to it.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? TraceParent { get; set; }

    public static EventDoc From(ConcordRecord record)
    {
        try
        {
            return record.Value.Deserialize<EventDoc>(JsonDefaults.Web) ?? throw new JsonException("null");
        }
        catch (JsonException e)
        {
            throw new InvalidRequestException($"'{record.Key}' is not a stream event ({e.Message}); keys under {StreamKeys.Root} are reserved");
        }
    }

    public JsonElement ToJson() => JsonSerializer.SerializeToElement(this, JsonDefaults.Web);

    /// <summary>Just the index (for position probes), without deserializing the event.</summary>
    public static int IndexOf(ConcordRecord record) =>
        record.Value.ValueKind == JsonValueKind.Object && record.Value.TryGetProperty("index", out var index) && index.TryGetInt32(out var i)
            ? i
            : From(record).Index;

    public static RecordedEvent ToRecorded(ConcordRecord record)
    {
        var (stream, version) = StreamKeys.ParseEvent(record.Key);
        var doc = From(record);
        return new RecordedEvent
        {
            Stream = stream,
            Version = version,
            Position = new StreamPosition(record.Revision, doc.Index),
            Id = doc.Id,
            Type = doc.Type,
            Data = doc.Data ?? default,
            Metadata = doc.Metadata ?? default,
            RecordedAt = record.CommittedAt,
            Writer = record.Writer,
            TraceParent = doc.TraceParent,
        };
    }
}

/// <summary>The JSON document of a consumer-group checkpoint.</summary>
internal sealed class CheckpointDoc
{
    public long Revision { get; set; }
    public int Index { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }

    public StreamPosition Position => new(Revision, Index);

    public static CheckpointDoc? From(ConcordRecord? record)
    {
        if (record is null) return null;
        try
        {
            return record.Value.Deserialize<CheckpointDoc>(JsonDefaults.Web);
        }
        catch (JsonException e)
        {
            throw new InvalidRequestException($"'{record.Key}' is not a checkpoint ({e.Message}); keys under {StreamKeys.Root} are reserved");
        }
    }

    public JsonElement ToJson() => JsonSerializer.SerializeToElement(this, JsonDefaults.Web);
}
