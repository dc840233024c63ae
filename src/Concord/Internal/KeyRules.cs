using System.Text;

namespace Concord.Internal;

/// <summary>Validation of namespaces and keys (see DESIGN.md "Data model").</summary>
internal static class KeyRules
{
    public const int MaxKeyBytes = 512;
    public const int MaxNamespaceLength = 64;

    public static void ValidateNamespace(string ns)
    {
        ArgumentNullException.ThrowIfNull(ns);
        if (ns.Length == 0) throw new InvalidKeyException(ns, "namespace is empty");
        if (ns.Length > MaxNamespaceLength) throw new InvalidKeyException(ns, $"namespace is longer than {MaxNamespaceLength} characters");
        foreach (var c in ns)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
                throw new InvalidKeyException(ns, $"namespace may contain only ASCII letters, digits, '-', '_' and '.' (found '{Printable(c)}')");
        }
    }

    public static void ValidateKey(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Length == 0) throw new InvalidKeyException(key, "key is empty");
        ValidateText(key, "key");
        if (key[0] == '/' || key[^1] == '/') throw new InvalidKeyException(key, "key must not start or end with '/'");
        if (key.Contains("//", StringComparison.Ordinal)) throw new InvalidKeyException(key, "key has an empty segment ('//')");
        // Span split: this runs on every read and write, and string.Split allocated an array and a string per segment.
        foreach (var range in key.AsSpan().Split('/'))
        {
            if (key.AsSpan(range) is "." or "..") throw new InvalidKeyException(key, "key segments '.' and '..' are not allowed");
        }
    }

    /// <summary>Prefixes may be empty and may end with '/'.</summary>
    public static void ValidatePrefix(string prefix)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        if (prefix.Length == 0) return;
        ValidateText(prefix, "prefix");
        if (prefix[0] == '/') throw new InvalidKeyException(prefix, "prefix must not start with '/'");
    }

    private static void ValidateText(string key, string what)
    {
        if (key.Length > MaxKeyBytes || Encoding.UTF8.GetByteCount(key) > MaxKeyBytes)
            throw new InvalidKeyException(key, $"{what} is longer than {MaxKeyBytes} UTF-8 bytes");
        for (var i = 0; i < key.Length; i++)
        {
            var c = key[i];
            if (char.IsControl(c)) throw new InvalidKeyException(key, $"{what} contains control character U+{(int)c:X4} at {i}");
            if (char.IsSurrogate(c) && !(char.IsHighSurrogate(c) && i + 1 < key.Length && char.IsLowSurrogate(key[i + 1])))
            {
                if (!(char.IsLowSurrogate(c) && i > 0 && char.IsHighSurrogate(key[i - 1])))
                    throw new InvalidKeyException(key, $"{what} contains an unpaired surrogate at {i}");
            }
        }
    }

    private static string Printable(char c) => char.IsControl(c) ? $"U+{(int)c:X4}" : c.ToString();
}
