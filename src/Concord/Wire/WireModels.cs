using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Concord.Wire;

/// <summary>JSON shapes of the HTTP API (shared by the server and the .NET client). camelCase; enums as camelCase strings.</summary>
public static class WireJson
{
    /// <summary>Serializer settings for every wire type.</summary>
    public static JsonSerializerOptions Options { get; } = Create();

    private static JsonSerializerOptions Create()
    {
        var o = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        };
        o.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.CamelCase));
        o.MakeReadOnly(populateMissingResolver: true);
        return o;
    }
}

/// <summary>A record on the wire.</summary>
public sealed record RecordDto
{
    /// <summary>Key.</summary>
    public required string Key { get; init; }
    /// <summary>Value (absent for tombstones).</summary>
    public JsonElement? Value { get; init; }
    /// <summary>Per-key version.</summary>
    public long Version { get; init; }
    /// <summary>Revision of the write.</summary>
    public long Revision { get; init; }
    /// <summary>Revision the key was created at.</summary>
    public long CreateRevision { get; init; }
    /// <summary>Writer agent id.</summary>
    public string? Writer { get; init; }
    /// <summary>Commit time.</summary>
    public DateTimeOffset CommittedAt { get; init; }
    /// <summary>Expiry, if any.</summary>
    public DateTimeOffset? ExpiresAt { get; init; }
    /// <summary>True for tombstones.</summary>
    public bool Deleted { get; init; }

    /// <summary>From a record.</summary>
    public static RecordDto? From(ConcordRecord? r) => r is null ? null : new()
    {
        Key = r.Key,
        Value = r.IsDeleted ? null : r.Value,
        Version = r.Version,
        Revision = r.Revision,
        CreateRevision = r.CreateRevision,
        Writer = r.Writer,
        CommittedAt = r.CommittedAt,
        ExpiresAt = r.ExpiresAt,
        Deleted = r.IsDeleted,
    };

    /// <summary>To a record. A live record whose value reads back as null holds the JSON literal <c>null</c>.</summary>
    public ConcordRecord ToRecord() => new(Key, Deleted ? default : Value ?? JsonNull, Version, Revision, CreateRevision, Writer, CommittedAt, ExpiresAt, Deleted);

    private static readonly JsonElement JsonNull = JsonDocument.Parse("null").RootElement.Clone();
}

/// <summary>A single-key write outcome on the wire.</summary>
public sealed record WriteResultDto
{
    /// <summary>Key.</summary>
    public required string Key { get; init; }
    /// <summary>True when applied.</summary>
    public bool Applied { get; init; }
    /// <summary>Conflict kind (none when applied).</summary>
    public ConflictKind Conflict { get; init; }
    /// <summary>New record, or the current one on conflict.</summary>
    public RecordDto? Record { get; init; }
    /// <summary>Commit or decision revision.</summary>
    public long Revision { get; init; }
    /// <summary>True for an idempotent replay.</summary>
    public bool Replayed { get; init; }
    /// <summary>Conflict explanation.</summary>
    public string? Message { get; init; }

    /// <summary>From a result.</summary>
    public static WriteResultDto From(WriteResult r) => new()
    {
        Key = r.Key, Applied = r.IsApplied, Conflict = r.Conflict, Record = RecordDto.From(r.Record), Revision = r.Revision, Replayed = r.Replayed, Message = r.Message,
    };

    /// <summary>To a result.</summary>
    public WriteResult ToResult() => new(Key, Conflict, Record?.ToRecord(), Revision, Replayed, Message);
}

/// <summary>An expectation on the wire: <c>{"kind":"version","version":3,"fence":{"lock":"l","token":7}}</c>.</summary>
public sealed record ExpectationDto
{
    /// <summary>any | absent | exists | version.</summary>
    public ExpectationKind Kind { get; init; }
    /// <summary>Expected version for kind = version.</summary>
    public long Version { get; init; }
    /// <summary>Optional fence.</summary>
    public FenceDto? Fence { get; init; }

    /// <summary>From an expectation.</summary>
    public static ExpectationDto? From(Expectation e) =>
        e.Kind == ExpectationKind.Any && e.Fence is null ? null : new() { Kind = e.Kind, Version = e.Version, Fence = e.Fence is { } f ? new FenceDto(f.Lock, f.Token) : null };

    /// <summary>To an expectation.</summary>
    public Expectation ToExpectation() => new(Kind, Version, Fence is { } f ? new Fence(f.Lock, f.Token) : null);
}

/// <summary>A fence on the wire.</summary>
public sealed record FenceDto(string Lock, long Token);

/// <summary>A transaction compare on the wire.</summary>
public sealed record CompareDto
{
    /// <summary>Key (or prefix for prefixModRevision).</summary>
    public required string Key { get; init; }
    /// <summary>version | modRevision | value | prefixModRevision.</summary>
    public CompareTarget Target { get; init; }
    /// <summary>equal | notEqual | less | lessOrEqual | greater.</summary>
    public CompareOp Op { get; init; }
    /// <summary>Number operand.</summary>
    public long Number { get; init; }
    /// <summary>Value operand.</summary>
    public JsonElement? Value { get; init; }
}

/// <summary>A transaction operation on the wire.</summary>
public sealed record TxnOpDto
{
    /// <summary>get | put | delete | patch.</summary>
    public TxnOpKind Kind { get; init; }
    /// <summary>Key.</summary>
    public required string Key { get; init; }
    /// <summary>Value for put.</summary>
    public JsonElement? Value { get; init; }
    /// <summary>JSON Patch array for patch.</summary>
    public JsonArray? Patch { get; init; }
    /// <summary>Per-operation expectation.</summary>
    public ExpectationDto? Expect { get; init; }
    /// <summary>TTL in milliseconds.</summary>
    public long? TtlMs { get; init; }
}

/// <summary>A transaction request on the wire.</summary>
public sealed record TxnRequestDto
{
    /// <summary>Compares.</summary>
    public List<CompareDto> Compares { get; init; } = [];
    /// <summary>Then-branch.</summary>
    public List<TxnOpDto> Then { get; init; } = [];
    /// <summary>Else-branch.</summary>
    public List<TxnOpDto> Else { get; init; } = [];
}

/// <summary>One op result on the wire.</summary>
public sealed record TxnOpResultDto(TxnOpKind Kind, string Key, RecordDto? Record);

/// <summary>A transaction result on the wire.</summary>
public sealed record TxnResultDto
{
    /// <summary>Which branch ran.</summary>
    public bool Succeeded { get; init; }
    /// <summary>False when an op's expectation failed.</summary>
    public bool Applied { get; init; }
    /// <summary>Revision.</summary>
    public long Revision { get; init; }
    /// <summary>Idempotent replay.</summary>
    public bool Replayed { get; init; }
    /// <summary>Failed op index or -1.</summary>
    public int FailedOpIndex { get; init; } = -1;
    /// <summary>The conflict, when not applied.</summary>
    public WriteResultDto? Conflict { get; init; }
    /// <summary>Per-op results.</summary>
    public List<TxnOpResultDto> Results { get; init; } = [];
}

/// <summary>A list page on the wire.</summary>
public sealed record ListResultDto(List<RecordDto> Records, long Revision, string? NextAfter);

/// <summary>A change event on the wire (one SSE <c>data:</c> line).</summary>
public sealed record ChangeEventDto(string Namespace, ChangeKind Kind, RecordDto Record);

/// <summary>Conversions between contract types and wire types.</summary>
public static class WireMapper
{
    /// <summary>Request → wire.</summary>
    public static TxnRequestDto ToDto(TxnRequest r) => new()
    {
        Compares = [.. r.Compares.Select(c => new CompareDto { Key = c.Key, Target = c.Target, Op = c.Op, Number = c.Number, Value = c.Value.ValueKind == JsonValueKind.Undefined ? null : c.Value })],
        Then = [.. r.Then.Select(ToDto)],
        Else = [.. r.Else.Select(ToDto)],
    };

    private static TxnOpDto ToDto(TxnOp op) => new()
    {
        Kind = op.Kind,
        Key = op.Key,
        Value = op.Value.ValueKind == JsonValueKind.Undefined ? null : op.Value,
        Patch = op.Patch?.ToJson(),
        Expect = ExpectationDto.From(op.Expect),
        TtlMs = op.Ttl is { } t ? (long)t.TotalMilliseconds : null,
    };

    /// <summary>Wire → request. Throws <see cref="InvalidRequestException"/> / <see cref="InvalidPatchException"/> on malformed input.</summary>
    public static TxnRequest FromDto(TxnRequestDto dto) => new()
    {
        Compares = [.. (dto.Compares ?? []).Select(c => new TxnCompare(c.Key ?? throw new InvalidRequestException("compare needs a key"), c.Target, c.Op, c.Number, c.Value ?? default))],
        Then = [.. (dto.Then ?? []).Select(FromDto)],
        Else = [.. (dto.Else ?? []).Select(FromDto)],
    };

    private static TxnOp FromDto(TxnOpDto op)
    {
        if (op.Key is null) throw new InvalidRequestException("every operation needs a key");
        if (op.Kind == TxnOpKind.Put && op.Value is null) throw new InvalidRequestException($"put of '{op.Key}' needs a value");
        if (op.Kind == TxnOpKind.Patch && op.Patch is null) throw new InvalidRequestException($"patch of '{op.Key}' needs a patch array");
        return new TxnOp(op.Kind, op.Key, op.Value ?? default, op.Patch is null ? null : JsonPatch.FromJson(op.Patch),
            op.Expect?.ToExpectation() ?? default, op.TtlMs is { } ms ? TimeSpan.FromMilliseconds(ms) : null);
    }

    /// <summary>Result → wire.</summary>
    public static TxnResultDto ToDto(TxnResult r) => new()
    {
        Succeeded = r.Succeeded,
        Applied = r.IsApplied,
        Revision = r.Revision,
        Replayed = r.Replayed,
        FailedOpIndex = r.FailedOpIndex,
        Conflict = r.Conflict is null ? null : WriteResultDto.From(r.Conflict),
        Results = [.. r.Results.Select(x => new TxnOpResultDto(x.Kind, x.Key, RecordDto.From(x.Record)))],
    };

    /// <summary>Wire → result.</summary>
    public static TxnResult FromDto(TxnResultDto dto) => new(dto.Succeeded,
        [.. dto.Results.Select(x => new TxnOpResultDto(x.Kind, x.Key, x.Record)).Select(x => new TxnOpResult(x.Kind, x.Key, x.Record?.ToRecord()))],
        dto.Revision, dto.Conflict?.ToResult(), dto.Replayed, dto.FailedOpIndex);
}
