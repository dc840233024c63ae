using System.Text.Json;

namespace Concord;

/// <summary>
/// One event of one actor: the <see cref="Counter"/>-th event issued by <see cref="Actor"/>. Dots identify versions
/// in causal contexts and elements in CRDT states. JSON: <c>["actor", counter]</c>.
/// </summary>
/// <param name="Actor">The replica (store node or CRDT replica) that issued the event. Never an agent id in key contexts.</param>
/// <param name="Counter">Positive, strictly increasing per actor.</param>
public readonly record struct Dot(string Actor, long Counter) : IComparable<Dot>
{
    /// <summary>Orders by actor (ordinal), then counter: the canonical order used in encodings.</summary>
    public int CompareTo(Dot other)
    {
        var c = string.CompareOrdinal(Actor, other.Actor);
        return c != 0 ? c : Counter.CompareTo(other.Counter);
    }

    /// <summary>Less-than in the canonical order.</summary>
    public static bool operator <(Dot left, Dot right) => left.CompareTo(right) < 0;

    /// <summary>Greater-than in the canonical order.</summary>
    public static bool operator >(Dot left, Dot right) => left.CompareTo(right) > 0;

    /// <summary>Less-or-equal in the canonical order.</summary>
    public static bool operator <=(Dot left, Dot right) => left.CompareTo(right) <= 0;

    /// <summary>Greater-or-equal in the canonical order.</summary>
    public static bool operator >=(Dot left, Dot right) => left.CompareTo(right) >= 0;

    /// <summary><c>actor:counter</c>.</summary>
    public override string ToString() => $"{Actor}:{Counter}";

    /// <summary>Writes <c>["actor", counter]</c>.</summary>
    public void WriteTo(Utf8JsonWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStartArray();
        writer.WriteStringValue(Actor);
        writer.WriteNumberValue(Counter);
        writer.WriteEndArray();
    }

    /// <summary>Reads <c>["actor", counter]</c>.</summary>
    /// <exception cref="InvalidRequestException">The element is not a dot.</exception>
    public static Dot Read(JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Array || element.GetArrayLength() != 2)
            throw new InvalidRequestException($"A dot is [\"actor\", counter]; got {Describe(element)}");
        var actor = element[0];
        var counter = element[1];
        if (actor.ValueKind != JsonValueKind.String || counter.ValueKind != JsonValueKind.Number || !counter.TryGetInt64(out var n))
            throw new InvalidRequestException($"A dot is [\"actor\", counter]; got {Describe(element)}");
        return Create(actor.GetString()!, n);
    }

    /// <summary>Creates a validated dot.</summary>
    /// <exception cref="InvalidRequestException">Empty actor or a counter below 1.</exception>
    public static Dot Create(string actor, long counter)
    {
        ValidateActor(actor);
        if (counter < 1) throw new InvalidRequestException($"Dot counters start at 1 (got {counter} for '{actor}')");
        return new Dot(actor, counter);
    }

    internal static void ValidateActor(string? actor)
    {
        if (string.IsNullOrEmpty(actor)) throw new InvalidRequestException("An actor (replica) id must not be empty");
        if (actor.Length > 256) throw new InvalidRequestException("An actor (replica) id must be at most 256 characters");
    }

    internal static string Describe(JsonElement e)
    {
        var raw = e.ValueKind == JsonValueKind.Undefined ? "nothing" : e.GetRawText();
        return raw.Length > 80 ? raw[..80] + "…" : raw;
    }
}
