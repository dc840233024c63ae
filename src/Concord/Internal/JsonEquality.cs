using System.Text.Json;

namespace Concord.Internal;

/// <summary>Deep JSON equality: numbers by value, object members in any order.</summary>
internal static class JsonEquality
{
    public static bool DeepEquals(JsonElement a, JsonElement b) => JsonElement.DeepEquals(a, b);
}
