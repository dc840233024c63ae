using System.Globalization;
using System.Text;

namespace Concord.Coordination;

/// <summary>Helpers for the reserved <c>_sys/</c> key space used by the coordination services.</summary>
internal static class SysKeys
{
    /// <summary>Fixed-width decimal, so ordinal key order equals numeric order.</summary>
    public static string D19(long value) => value.ToString("D19", CultureInfo.InvariantCulture);

    /// <summary>Fixed-width decimal, so ordinal key order equals numeric order.</summary>
    public static string D20(long value) => value.ToString("D20", CultureInfo.InvariantCulture);

    /// <summary>
    /// Turns an arbitrary user string (group key, dedup id, event id) into one key segment: '%', '/' and control
    /// characters are percent-encoded, and the segments "." and ".." (refused by key rules) are encoded too.
    /// The mapping is injective, so distinct inputs never share a key.
    /// </summary>
    public static string Segment(string value, string what, int maxLength = 256)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value.Length == 0) throw new InvalidRequestException($"{what} must not be empty");
        if (value.Length > maxLength) throw new InvalidRequestException($"{what} is longer than {maxLength} characters");
        if (value is "." or "..") return value.Replace(".", "%2E", StringComparison.Ordinal);
        var needs = false;
        foreach (var c in value)
        {
            if (c is '%' or '/' || char.IsControl(c))
            {
                needs = true;
                break;
            }
        }
        if (!needs) return value;
        var sb = new StringBuilder(value.Length + 8);
        foreach (var c in value)
        {
            if (c is '%' or '/' || char.IsControl(c)) sb.Append('%').Append(((int)c).ToString("X2", CultureInfo.InvariantCulture));
            else sb.Append(c);
        }
        return sb.ToString();
    }

    /// <summary>Validates a simple name (queue): 1–100 ASCII letters, digits, '-', '_', '.', ':'; not "." or "..".</summary>
    public static void ValidateName(string name, string what)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length is 0 or > 100) throw new InvalidRequestException($"{what} name must have 1 to 100 characters");
        if (name is "." or "..") throw new InvalidRequestException($"{what} name must not be '.' or '..'");
        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':'))
                throw new InvalidRequestException($"{what} name '{name}' may contain only ASCII letters, digits, '-', '_', '.' and ':'");
        }
    }

    public static long ParseLong(ReadOnlySpan<char> digits) => long.Parse(digits, NumberStyles.None, CultureInfo.InvariantCulture);
}
