using System.Text.Json;

namespace Concord.Crdt;

/// <summary>
/// A last-writer-wins register: the value with the highest (timestamp, replica id) survives a join. Timestamps come from
/// a hybrid clock: the <see cref="TimeProvider"/>'s time in ticks, bumped past the register's current timestamp, so a
/// set made after reading a value always wins over it even if the clocks disagree.
/// </summary>
/// <remarks>
/// <para>Immutable and thread-safe. Concurrent sets are resolved by the order, not merged: the loser is discarded
/// (use <see cref="MVRegister"/> to keep both).</para>
/// <para>State: <c>{}</c> when unset, otherwise <c>{"ts":ticks,"replica":"a","value":…}</c>. Ties on (ts, replica) — which
/// a well-behaved replica never produces — are broken by the canonical value text, so the join stays deterministic.</para>
/// </remarks>
public sealed class LwwRegister : CrdtState, ICrdt<LwwRegister>
{
    internal const string Type = "lww";

    private readonly JsonElement _value;
    private string? _valueText;

    private LwwRegister(JsonElement value, long timestamp, string? replica)
    {
        _value = value;
        Timestamp = timestamp;
        Replica = replica;
    }

    /// <summary>The unset register.</summary>
    public static LwwRegister Empty { get; } = new(default, 0, null);

    /// <inheritdoc />
    public static string CrdtType => Type;

    /// <inheritdoc />
    public override string TypeName => Type;

    /// <inheritdoc />
    public override bool IsEmpty => Replica is null;

    /// <summary>True when a value was set.</summary>
    public bool HasValue => Replica is not null;

    /// <summary>The current value; <see cref="JsonValueKind.Undefined"/> when unset.</summary>
    public JsonElement Value => _value;

    /// <summary>Hybrid timestamp (UTC ticks, bumped to be monotonic) of the winning set; 0 when unset.</summary>
    public long Timestamp { get; }

    /// <summary>Replica that made the winning set; null when unset.</summary>
    public string? Replica { get; }

    /// <summary>Deserializes the value; default when unset.</summary>
    public T? ValueAs<T>(JsonSerializerOptions? options = null) => HasValue ? _value.Deserialize<T>(options ?? JsonDefaults.Web) : default;

    /// <summary>The delta that sets <paramref name="value"/>, stamped with <paramref name="clock"/>'s time (bumped past the current timestamp).</summary>
    public LwwRegister Set(JsonElement value, string replica, TimeProvider clock)
    {
        ArgumentNullException.ThrowIfNull(clock);
        return Set(value, replica, Math.Max(clock.GetUtcNow().UtcTicks, checked(Timestamp + 1)));
    }

    /// <summary>Serializes and sets <paramref name="value"/>.</summary>
    public LwwRegister Set<T>(T value, string replica, TimeProvider clock) => Set(JsonSerializer.SerializeToElement(value, JsonDefaults.Web), replica, clock);

    /// <summary>The delta that sets <paramref name="value"/> at an explicit <paramref name="timestamp"/> (≥ 1).</summary>
    public LwwRegister Set(JsonElement value, string replica, long timestamp)
    {
        Dot.ValidateActor(replica);
        if (value.ValueKind == JsonValueKind.Undefined) throw new ArgumentException("A register value must be a JSON value", nameof(value));
        ArgumentOutOfRangeException.ThrowIfLessThan(timestamp, 1);
        return new LwwRegister(CanonicalJson.Normalize(value), timestamp, replica);
    }

    /// <inheritdoc />
    public LwwRegister Merge(LwwRegister other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return Compare(this, other) >= 0 ? this : other;
    }

    private static int Compare(LwwRegister a, LwwRegister b)
    {
        var c = a.Timestamp.CompareTo(b.Timestamp);
        if (c != 0) return c;
        c = string.CompareOrdinal(a.Replica, b.Replica);
        return c != 0 ? c : string.CompareOrdinal(a.ValueText, b.ValueText);
    }

    private string ValueText => _valueText ??= HasValue ? CanonicalJson.Text(_value) : "";

    private protected override CrdtState JoinCore(CrdtState other) => Merge((LwwRegister)other);

    /// <inheritdoc />
    public override JsonElement ToPlainJson() => HasValue ? _value : CrdtJson.Build(static w => w.WriteNullValue());

    private protected override void WriteState(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        if (HasValue)
        {
            writer.WriteNumber("ts", Timestamp);
            writer.WriteString("replica", Replica);
            writer.WritePropertyName("value");
            CanonicalJson.Write(writer, _value);
        }
        writer.WriteEndObject();
    }

    internal static LwwRegister ReadState(JsonElement state)
    {
        CrdtJson.RequireObject(state, "an lww state");
        if (!state.TryGetProperty("replica", out var r)) return Empty;
        if (r.ValueKind != JsonValueKind.String) throw new InvalidRequestException("lww \"replica\" must be a string");
        var ts = CrdtJson.ReadCount(CrdtJson.Property(state, "ts", "An lww state"), "lww \"ts\"");
        return Empty.Set(CrdtJson.Property(state, "value", "An lww state"), r.GetString()!, ts);
    }
}
