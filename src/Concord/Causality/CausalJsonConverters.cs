using System.Text.Json;
using System.Text.Json.Serialization;

namespace Concord;

/// <summary>Serializes a <see cref="VersionVector"/> as its JSON object form <c>{"n1":42}</c> (used by wire models).</summary>
public sealed class VersionVectorJsonConverter : JsonConverter<VersionVector>
{
    /// <inheritdoc />
    public override VersionVector Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        using var doc = JsonDocument.ParseValue(ref reader);
        try
        {
            return VersionVector.FromJson(doc.RootElement);
        }
        catch (InvalidRequestException e)
        {
            throw new JsonException(e.Message, e);
        }
    }

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, VersionVector value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(value);
        value.WriteTo(writer);
    }
}

/// <summary>Serializes a <see cref="CausalStamp"/> in its documented encoding (used by wire models).</summary>
public sealed class CausalStampJsonConverter : JsonConverter<CausalStamp>
{
    /// <inheritdoc />
    public override CausalStamp Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        using var doc = JsonDocument.ParseValue(ref reader);
        try
        {
            return CausalStamp.Read(doc.RootElement);
        }
        catch (InvalidRequestException e)
        {
            throw new JsonException(e.Message, e);
        }
    }

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, CausalStamp value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(value);
        value.WriteTo(writer);
    }
}
