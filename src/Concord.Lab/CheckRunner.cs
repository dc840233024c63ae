using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using Concord.Lab.Checkers;
using Concord.Lab.Checkers.Isolation;
using Concord.Lab.Checkers.Linearizability;
using Concord.Lab.Export;
using Concord.Lab.History;

namespace Concord.Lab;

/// <summary>The arguments of <c>concord check</c>, as given on the command line (validated by <see cref="CheckRunner"/>).</summary>
public sealed class CheckRequest
{
    /// <summary>Path of the JSONL history.</summary>
    public string? Path { get; init; }

    /// <summary><c>register</c>, <c>cas-register</c>, <c>counter</c>, <c>set</c>, <c>queue</c> or <c>txn</c>.</summary>
    /// <value>Defaults to <see langword="null"/>: the meta line's <c>model</c>, else inferred from the operations.</value>
    public string? Model { get; init; }

    /// <summary>Seconds allowed for the check (decimal allowed).</summary>
    /// <value>Defaults to <see langword="null"/>: no limit.</value>
    public string? Timeout { get; init; }

    /// <summary><c>text</c> or <c>json</c>.</summary>
    /// <value>Defaults to <see langword="null"/>, meaning <c>text</c>.</value>
    public string? Format { get; init; }

    /// <summary><c>knossos</c>, <c>elle</c> or <c>porcupine</c>: also export the history to <see cref="Out"/>.</summary>
    public string? Export { get; init; }

    /// <summary>Where <see cref="Export"/> writes.</summary>
    public string? Out { get; init; }

    /// <summary>For <c>txn</c> histories: add real-time edges (strict serializability).</summary>
    public bool RealTime { get; init; }

    /// <summary>For <c>txn</c> histories: add process-order edges (strong session serializability).</summary>
    public bool ProcessOrder { get; init; }

    /// <summary>Command-line words not understood by the parser; any makes the request invalid.</summary>
    public IReadOnlyList<string> UnmatchedTokens { get; init; } = [];

    /// <summary>Clock for the timeout.</summary>
    /// <value>Defaults to <see cref="TimeProvider.System"/>.</value>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}

/// <summary>
/// The body of <c>concord check</c>: reads a history, picks the checker, prints the verdict and explanation.
/// Exit codes: <see cref="ExitValid"/>, <see cref="ExitAnomaly"/>, <see cref="ExitBadInput"/>, <see cref="ExitUnknown"/>.
/// </summary>
/// <remarks>Thread-safe: keeps no shared state.</remarks>
public static class CheckRunner
{
    /// <summary>The history is valid for its model.</summary>
    public const int ExitValid = 0;

    /// <summary>An anomaly was found; the explanation is printed.</summary>
    public const int ExitAnomaly = 1;

    /// <summary>Bad input: unreadable or malformed history (line-numbered message on the error writer), or bad arguments.</summary>
    public const int ExitBadInput = 2;

    /// <summary>Undecided: the timeout expired or the check was cancelled before a verdict.</summary>
    public const int ExitUnknown = 3;

    /// <summary>The models accepted by <c>--model</c>.</summary>
    public static IReadOnlyList<string> ModelNames { get; } = ["register", "cas-register", "counter", "set", "queue", "txn"];

    private static readonly JsonWriterOptions JsonOutput = new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Runs the check and returns the exit code. Results go to <paramref name="output"/>, problems with the input to <paramref name="error"/>.</summary>
    public static int Run(CheckRequest request, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);

        if (Validate(request) is { } problem)
        {
            error.WriteLine($"concord check: {problem}");
            return ExitBadInput;
        }

        var path = request.Path!;
        OperationHistory history;
        try
        {
            history = HistoryReader.ReadFile(path);
        }
        catch (HistoryFormatException e)
        {
            error.WriteLine($"{path}:{e.LineNumber}: {e.Reason}");
            return ExitBadInput;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error.WriteLine($"concord check: cannot read {path}: {e.Message}");
            return ExitBadInput;
        }

        var modelName = request.Model ?? history.Meta.Model ?? InferModel(history);
        if (!ModelNames.Contains(modelName) && !LinearizabilityModels.TryParse(modelName, out _))
        {
            error.WriteLine($"concord check: {path}: the meta line names model \"{modelName}\"; expected one of {string.Join(", ", ModelNames)} (or pass --model)");
            return ExitBadInput;
        }

        if (request.Export is not null)
        {
            HistoryExporter.TryParseFormat(request.Export, out var exportFormat);
            try
            {
                HistoryExporter.ExportFile(history, exportFormat, request.Out!);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                error.WriteLine($"concord check: cannot write {request.Out}: {e.Message}");
                return ExitBadInput;
            }
        }

        var timeout = request.Timeout is null ? (TimeSpan?)null : TimeSpan.FromSeconds(double.Parse(request.Timeout, CultureInfo.InvariantCulture));
        var json = string.Equals(request.Format, "json", StringComparison.OrdinalIgnoreCase);
        try
        {
            if (modelName == "txn")
            {
                var report = IsolationChecker.Check(history, new IsolationOptions
                {
                    RealTime = request.RealTime,
                    ProcessOrder = request.ProcessOrder,
                    Timeout = timeout,
                    TimeProvider = request.TimeProvider,
                }, cancellationToken);
                output.WriteLine(json ? ToJson(report) : report.Explanation);
                return ExitCode(report.Verdict);
            }

            LinearizabilityModels.TryParse(modelName, out var model);
            var result = LinearizabilityChecker.Check(history, new LinearizabilityOptions
            {
                Model = model,
                Timeout = timeout,
                TimeProvider = request.TimeProvider,
            }, cancellationToken);
            output.WriteLine(json ? ToJson(result) : result.Explanation);
            return ExitCode(result.Verdict);
        }
        catch (HistoryFormatException e)
        {
            error.WriteLine($"{path}: {e.Message}");
            return ExitBadInput;
        }
    }

    /// <summary>
    /// The model a history most likely needs: <c>txn</c> if it has transactions; <c>queue</c> for enqueue/dequeue;
    /// <c>counter</c> for increments (or adds whose reads return numbers); <c>set</c> for adds whose reads return
    /// lists; <c>cas-register</c> if it has cas; else <c>register</c>.
    /// </summary>
    public static string InferModel(OperationHistory history)
    {
        ArgumentNullException.ThrowIfNull(history);
        var functions = history.Operations.Select(o => o.F).ToHashSet(StringComparer.Ordinal);
        if (functions.Contains(Functions.Txn))
        {
            return "txn";
        }

        if (functions.Contains(Functions.Enqueue) || functions.Contains(Functions.Dequeue))
        {
            return "queue";
        }

        if (functions.Contains(Functions.Increment))
        {
            return "counter";
        }

        if (functions.Contains(Functions.Add))
        {
            var readsLists = history.Operations.Any(o => o.F == Functions.Read && o.Type == OperationType.Ok && o.Value.ValueKind == JsonValueKind.Array);
            return readsLists ? "set" : "counter";
        }

        return functions.Contains(Functions.Cas) ? "cas-register" : "register";
    }

    private static string? Validate(CheckRequest request)
    {
        if (request.UnmatchedTokens.Count > 0)
        {
            return $"unrecognized argument(s): {string.Join(" ", request.UnmatchedTokens)}";
        }

        if (string.IsNullOrEmpty(request.Path))
        {
            return "missing the history file (concord check FILE.jsonl)";
        }

        if (!File.Exists(request.Path))
        {
            return $"no such file: {request.Path}";
        }

        if (request.Model is not null && !ModelNames.Contains(request.Model))
        {
            return $"unknown model \"{request.Model}\"; expected one of {string.Join(", ", ModelNames)}";
        }

        if (request.Timeout is not null
            && (!double.TryParse(request.Timeout, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || !(seconds > 0) || seconds > TimeSpan.MaxValue.TotalSeconds / 2))
        {
            return $"--timeout must be a positive number of seconds, not \"{request.Timeout}\"";
        }

        if (request.Format is not null && request.Format is not ("text" or "json"))
        {
            return $"--format must be text or json, not \"{request.Format}\"";
        }

        if (request.Export is not null && !HistoryExporter.TryParseFormat(request.Export, out _))
        {
            return $"--export must be knossos, elle or porcupine, not \"{request.Export}\"";
        }

        if (request.Export is not null && string.IsNullOrEmpty(request.Out))
        {
            return "--export needs --out PATH";
        }

        if (request.Export is null && request.Out is not null)
        {
            return "--out is only used with --export";
        }

        return null;
    }

    private static int ExitCode(Verdict verdict) => verdict switch
    {
        Verdict.Valid => ExitValid,
        Verdict.Invalid => ExitAnomaly,
        _ => ExitUnknown,
    };

    private static string ToJson(LinearizabilityResult result)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, JsonOutput))
        {
            json.WriteStartObject();
            json.WriteString("checker", "linearizability");
            json.WriteString("model", result.Model.ToWireName());
            json.WriteString("verdict", result.Verdict.ToWireName());
            json.WriteNumber("keyCount", result.Keys.Count);
            json.WriteNumber("validKeys", result.Keys.Count(k => k.Verdict == Verdict.Valid));
            json.WriteNumber("operations", result.Keys.Sum(k => k.OperationCount));
            json.WriteStartArray("keys");
            foreach (var key in result.Keys.Where(k => k.Verdict != Verdict.Valid))
            {
                json.WriteStartObject();
                if (key.Key is null)
                {
                    json.WriteNull("key");
                }
                else
                {
                    json.WriteString("key", key.Key);
                }

                json.WriteString("verdict", key.Verdict.ToWireName());
                json.WriteNumber("operations", key.OperationCount);
                if (key.StuckOperation is { } stuck)
                {
                    json.WriteNumber("stuckOperation", stuck);
                }

                json.WriteStartArray("window");
                foreach (var index in key.Window)
                {
                    json.WriteNumberValue(index);
                }

                json.WriteEndArray();
                json.WriteString("explanation", key.Explanation);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteString("explanation", result.Explanation);
            json.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    private static string ToJson(IsolationReport report)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, JsonOutput))
        {
            json.WriteStartObject();
            json.WriteString("checker", "isolation");
            json.WriteString("model", "txn");
            json.WriteString("verdict", report.Verdict.ToWireName());
            json.WriteString("workload", report.Workload);
            json.WriteNumber("transactions", report.TransactionCount);
            json.WriteStartArray("anomalies");
            foreach (var anomaly in report.Anomalies)
            {
                json.WriteStartObject();
                json.WriteString("type", anomaly.Name);
                json.WriteStartArray("transactions");
                foreach (var index in anomaly.Transactions)
                {
                    json.WriteNumberValue(index);
                }

                json.WriteEndArray();
                json.WriteString("explanation", anomaly.Explanation);
                if (anomaly.Cycle.Count > 0)
                {
                    json.WriteStartArray("cycle");
                    foreach (var edge in anomaly.Cycle)
                    {
                        json.WriteStartObject();
                        json.WriteNumber("from", edge.From);
                        json.WriteNumber("to", edge.To);
                        json.WriteString("kind", edge.Kind.ToString().ToLowerInvariant());
                        json.WriteString("explanation", edge.Explanation);
                        json.WriteEndObject();
                    }

                    json.WriteEndArray();
                }

                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteStartArray("notes");
            foreach (var note in report.Notes)
            {
                json.WriteStringValue(note);
            }

            json.WriteEndArray();
            json.WriteString("explanation", report.Explanation);
            json.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }
}
