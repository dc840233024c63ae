using System.Globalization;
using System.Text;

namespace Concord.Lab.Scheduling;

/// <summary>One step of a scheduled run: the scheduler let one agent (or the clock) go, and this is what it did.</summary>
/// <remarks>Read-only to users; the scheduler fills in <see cref="Result"/> and <see cref="Fault"/> as the step's operation completes.</remarks>
public sealed class ScheduleStep
{
    internal ScheduleStep(int number, TimeSpan time, string agent, string operation)
    {
        Number = number;
        Time = time;
        Agent = agent;
        Operation = operation;
    }

    /// <summary>1-based step number (the number of the scheduling decision).</summary>
    public int Number { get; }

    /// <summary>Virtual time at which the step ran (for a clock step, the time the clock jumped to).</summary>
    public TimeSpan Time { get; internal set; }

    /// <summary>The agent that ran (for a clock step, the agent the timer woke, or <c>clock</c>).</summary>
    public string Agent { get; internal set; }

    /// <summary>What it was about to do: the label of its scheduling point (<c>put accounts/acct-42 expect v3</c>, <c>LLM: …</c>).</summary>
    public string Operation { get; internal set; }

    /// <summary>How the operation ended (<c>ok v4</c>, <c>conflict …</c>, <c>threw …</c>), when it is a store call; else null.</summary>
    public string? Result { get; internal set; }

    /// <summary>The fault injected at this step (crash, pause, reply lost, …), if any.</summary>
    public string? Fault { get; internal set; }

    /// <summary>True for a step in which virtual time advanced to fire a timer.</summary>
    public bool IsClock { get; internal init; }

    /// <inheritdoc />
    public override string ToString() =>
        $"{Number} {ScheduleTrace.FormatTime(Time)} {Agent} {Operation}{(Result is null ? "" : " → " + Result)}{(Fault is null ? "" : " [" + Fault + "]")}";
}

/// <summary>Renders a run's steps as a readable interleaving.</summary>
public static class ScheduleTrace
{
    /// <summary>Virtual time as <c>0 ms</c>, <c>35 ms</c>, <c>1.250 s</c>.</summary>
    public static string FormatTime(TimeSpan time) =>
        time < TimeSpan.FromSeconds(1)
            ? string.Create(CultureInfo.InvariantCulture, $"{(long)time.TotalMilliseconds} ms")
            : string.Create(CultureInfo.InvariantCulture, $"{time.TotalSeconds:0.000} s");

    /// <summary>
    /// A fixed-width table with columns step, time, agent, operation, result. Faults are shown in the result column
    /// in brackets. Values longer than <paramref name="maxResult"/> characters are shortened.
    /// </summary>
    public static string Format(IEnumerable<ScheduleStep> steps, int maxResult = 60)
    {
        ArgumentNullException.ThrowIfNull(steps);
        var rows = steps.Select(s => new[]
        {
            s.Number.ToString(CultureInfo.InvariantCulture),
            FormatTime(s.Time),
            s.Agent,
            s.Operation,
            Shorten(string.Join(" ", new[] { s.Result, s.Fault is null ? null : $"[{s.Fault}]" }.Where(x => x is not null)), maxResult),
        }).ToList();
        string[] header = ["step", "time", "agent", "operation", "result"];
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        var text = new StringBuilder();
        AppendRow(text, header, widths);
        foreach (var row in rows) AppendRow(text, row, widths);
        return text.ToString();
    }

    private static void AppendRow(StringBuilder text, string[] cells, int[] widths)
    {
        text.Append(cells[0].PadLeft(widths[0])).Append("  ")
            .Append(cells[1].PadLeft(widths[1])).Append("  ")
            .Append(cells[2].PadRight(widths[2])).Append("  ")
            .Append(cells[3].PadRight(widths[3])).Append("  ")
            .Append(cells[4]);
        // No trailing spaces when the result is empty.
        while (text.Length > 0 && text[^1] == ' ') text.Length--;
        text.Append('\n');
    }

    internal static string Shorten(string text, int max) => text.Length <= max ? text : text[..(max - 1)] + "…";
}
