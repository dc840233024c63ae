using System.Globalization;
using System.Text.Json;
using Concord.Lab.History;

namespace Concord.Lab.Checkers;

/// <summary>Shared wording for explanations.</summary>
internal static class Describe
{
    /// <summary>Nanoseconds as a short human duration: 850ns, 12.5µs, 3.25ms, 1.234s.</summary>
    public static string Time(long nanoseconds) => nanoseconds switch
    {
        < 1_000 => string.Create(CultureInfo.InvariantCulture, $"{nanoseconds}ns"),
        < 1_000_000 => string.Create(CultureInfo.InvariantCulture, $"{nanoseconds / 1_000.0:0.###}µs"),
        < 1_000_000_000 => string.Create(CultureInfo.InvariantCulture, $"{nanoseconds / 1_000_000.0:0.###}ms"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{nanoseconds / 1_000_000_000.0:0.###}s"),
    };

    /// <summary>"process 3 (agent fees)" or "process 3".</summary>
    public static string Who(int process, string? agent) =>
        agent is null ? $"process {process}" : $"process {process} (agent {agent})";

    /// <summary>The agent's name if known, else "process N": the shortest way to name an actor.</summary>
    public static string Actor(int process, string? agent) => agent ?? $"process {process}";

    /// <summary>A value as compact JSON (<c>null</c> when absent).</summary>
    public static string Value(JsonElement value) => HistoryValue.Canonical(value);

    /// <summary>"a, b and c".</summary>
    public static string List(IReadOnlyList<string> items) => items.Count switch
    {
        0 => "nothing",
        1 => items[0],
        _ => string.Join(", ", items.Take(items.Count - 1)) + " and " + items[^1],
    };

    public static string Plural(int count, string singular, string plural) =>
        string.Create(CultureInfo.InvariantCulture, $"{count} {(count == 1 ? singular : plural)}");
}
