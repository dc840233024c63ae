using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Concord.Lab.Scheduling;

/// <summary>Renders a <see cref="LabReport"/> as text (for people) or JSON (for tools).</summary>
public static class LabReportWriter
{
    private static readonly JsonWriterOptions JsonOutput = new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// The text report: scenario and strategy, the headline ("63/200 schedules lost an update (31.5%)"), and for a
    /// failure its seed, what went wrong, the shrunk interleaving as a table, the checker's explanation, and the commands
    /// that replay it. <paramref name="replayCommand"/> is the command line prefix to print (<c>concord lab run account --mode naive</c>).
    /// </summary>
    public static string FormatText(LabReport report, string description, string replayCommand)
    {
        ArgumentNullException.ThrowIfNull(report);
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"Scenario {report.Scenario} ({report.Mode}): {description}.\n");
        var seeds = report.Schedules == 1 || report.FirstSeed.Strategy == StrategyKind.Replay
            ? report.FirstSeed.Format()
            : $"{report.FirstSeed.Format()} … seed={report.FirstSeed.Seed + report.Schedules - 1}";
        text.Append(CultureInfo.InvariantCulture, $"Schedules: {seeds} ({report.DistinctSchedules} distinct interleavings)\n\n");
        text.Append(report.Headline).Append('\n');
        if (report.FailuresByKind.Count > 1 || (report.FailuresByKind.Count == 1 && report.FailuresByKind.Keys.First() is "error" or "escape" or "checker"))
        {
            text.Append("  by kind: ").Append(string.Join(", ", report.FailuresByKind.Select(k => $"{k.Key} {k.Value}"))).Append('\n');
        }

        if (report.FirstFailure is not { } failure)
        {
            text.Append(report.ExpectedToPass
                ? "Every schedule passed, as this mode should.\n"
                : "No schedule failed this time; try more schedules or another strategy.\n");
            return text.ToString();
        }

        var original = failure.Original;
        var shrunk = failure.Shrunk;
        text.Append(CultureInfo.InvariantCulture, $"\nFirst failure: {original.Seed.Format()}\n  {original.Verdict.Summary}\n");
        if (failure.Replays == 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"\nNot shrunk: {original.AgentCount} agents, {original.StepCount} steps, {original.Result.Faults} faults\n");
        }
        else
        {
            text.Append(CultureInfo.InvariantCulture,
                $"\nShrunk in {failure.Replays} replays: {original.AgentCount} → {shrunk.AgentCount} agents, {original.StepCount} → {shrunk.StepCount} steps, {original.Result.Faults} → {shrunk.Result.Faults} faults\n");
        }

        if (!ReferenceEquals(shrunk, original)) text.Append("  ").Append(shrunk.Verdict.Summary).Append('\n');
        text.Append('\n').Append(shrunk.Result.Format());
        if (shrunk.Verdict.Details is { } details)
        {
            text.Append('\n').Append(details.TrimEnd()).Append('\n');
        }

        text.Append(CultureInfo.InvariantCulture, $"\nReplay the failure:     {replayCommand} --seed {original.Seed.Format()}\n");
        text.Append(CultureInfo.InvariantCulture, $"Replay the shrunk run:  {replayCommand} --seed {shrunk.Result.ReplaySeed.Format()}\n");
        return text.ToString();
    }

    /// <summary>The JSON report (one document).</summary>
    public static string FormatJson(LabReport report, string description)
    {
        ArgumentNullException.ThrowIfNull(report);
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, JsonOutput))
        {
            json.WriteStartObject();
            json.WriteString("scenario", report.Scenario);
            json.WriteString("mode", report.Mode);
            json.WriteString("description", description);
            json.WriteBoolean("expectedToPass", report.ExpectedToPass);
            json.WriteString("strategy", ScheduleSeed.NameOf(report.FirstSeed.Strategy));
            json.WriteString("firstSeed", report.FirstSeed.Format());
            json.WriteNumber("schedules", report.Schedules);
            json.WriteNumber("failed", report.Failed);
            json.WriteNumber("failedShare", Math.Round(report.FailedShare, 4));
            json.WriteNumber("distinctSchedules", report.DistinctSchedules);
            json.WriteString("headline", report.Headline);
            json.WriteStartObject("failuresByKind");
            foreach (var (kind, count) in report.FailuresByKind) json.WriteNumber(kind, count);
            json.WriteEndObject();
            if (report.FirstFailure is { } failure)
            {
                json.WriteStartObject("firstFailure");
                WriteRun(json, failure.Original, steps: false);
                json.WriteNumber("shrinkReplays", failure.Replays);
                json.WriteStartObject("shrunk");
                WriteRun(json, failure.Shrunk, steps: true);
                json.WriteEndObject();
                json.WriteEndObject();
            }
            else
            {
                json.WriteNull("firstFailure");
            }

            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void WriteRun(Utf8JsonWriter json, LabRun run, bool steps)
    {
        json.WriteString("seed", run.Seed.Format());
        json.WriteString("kind", run.Verdict.Kind);
        json.WriteString("summary", run.Verdict.Summary);
        if (run.Verdict.Details is { } details) json.WriteString("details", details);
        json.WriteNumber("agents", run.AgentCount);
        json.WriteNumber("steps", run.StepCount);
        json.WriteNumber("faults", run.Result.Faults);
        json.WriteNumber("virtualMs", (long)run.Result.Elapsed.TotalMilliseconds);
        if (!steps) return;
        json.WriteString("replaySeed", run.Result.ReplaySeed.Format());
        json.WriteStartArray("interleaving");
        foreach (var step in run.Result.Steps)
        {
            json.WriteStartObject();
            json.WriteNumber("step", step.Number);
            json.WriteNumber("timeMs", (long)step.Time.TotalMilliseconds);
            json.WriteString("agent", step.Agent);
            json.WriteString("operation", step.Operation);
            if (step.Result is { } result) json.WriteString("result", result);
            if (step.Fault is { } fault) json.WriteString("fault", fault);
            json.WriteEndObject();
        }

        json.WriteEndArray();
    }
}
