using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Concord.Lab.History;

namespace Concord.Lab.Checkers.Linearizability;

/// <summary>
/// Checks that a history of single-key operations is linearizable: that every operation appears to take effect
/// atomically at some instant between its invocation and its completion, in an order the sequential model accepts.
/// </summary>
/// <remarks>
/// <para>
/// The history is split by key (linearizability is compositional), and keys are checked in parallel with the
/// Wing–Gong–Lowe search and Lowe's cache of visited (linearized set, model state) configurations.
/// Failed operations (<c>fail</c>) are dropped: they are known not to have happened. Operations with unknown
/// outcome (<c>info</c>, or no completion) may take effect at any point after their invocation, or never; reads of
/// unknown outcome constrain nothing and are dropped.
/// </para>
/// <para>Thread-safe: the checker keeps no state between calls.</para>
/// </remarks>
public static class LinearizabilityChecker
{
    /// <summary>Checks <paramref name="history"/> against <see cref="LinearizabilityOptions.Model"/>.</summary>
    /// <returns>The verdict; keys not decided before the timeout or cancellation are <see cref="Verdict.Unknown"/>.</returns>
    /// <exception cref="HistoryFormatException">An operation does not fit the model (for example a <c>cas</c> in a plain register history).</exception>
    public static LinearizabilityResult Check(OperationHistory history, LinearizabilityOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(history);
        options ??= new LinearizabilityOptions();
        options.Validate();
        var partitions = Partition.Build(history, options.Model);

        using var timeout = options.Timeout is { } limit ? new CancellationTokenSource(limit, options.TimeProvider) : null;
        using var linked = timeout is null
            ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken)
            : CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        var token = linked.Token;

        var results = new ConcurrentDictionary<Partition, KeyLinearizability>();

        // Largest keys first, so one big key does not start last and dominate the wall time.
        var ordered = partitions.OrderByDescending(p => p.Ops.Count).ToList();
        Parallel.ForEach(
            ordered,
            new ParallelOptions { MaxDegreeOfParallelism = options.MaxDegreeOfParallelism },
            partition => results[partition] = CheckPartition(partition, options, token));

        var keys = partitions.Select(p => results[p]).ToList();
        var verdict = Verdicts.Combine(keys.Select(k => k.Verdict));
        return new LinearizabilityResult(options.Model, verdict, keys, Summarize(options.Model, verdict, keys, cancellationToken.IsCancellationRequested));
    }

    private static KeyLinearizability CheckPartition(Partition partition, LinearizabilityOptions options, CancellationToken token)
    {
        var outcome = token.IsCancellationRequested
            ? SearchOutcome.Cancelled
            : WglSearch.Run(options.Model, partition.SetElementCount, partition.Ops, token);
        switch (outcome)
        {
            case SearchOutcome.Linearizable:
                return new KeyLinearizability(partition.Key, Verdict.Valid, partition.Ops.Count, null, [], null);
            case SearchOutcome.Cancelled:
                return new KeyLinearizability(partition.Key, Verdict.Unknown, partition.Ops.Count,
                    $"{KeyName(partition)}: undecided; the search of {Describe.Plural(partition.Ops.Count, "operation", "operations")} was stopped (timeout or cancellation).", [], null);
        }

        Shrinker.Result shrunk = options.ExplainFailures
            ? Shrinker.Shrink(partition, options.Model, options.MaxShrinkSearches, token)
            : new Shrinker.Result(partition.Ops, null, false);
        var explanation = FailureExplainer.Explain(partition, options.Model, shrunk);
        var window = shrunk.Window.Select(o => o.Source.Index).Order().ToList();
        return new KeyLinearizability(partition.Key, Verdict.Invalid, partition.Ops.Count, explanation, window, shrunk.Stuck?.Source.Index);
    }

    private static string Summarize(LinearizabilityModel model, Verdict verdict, List<KeyLinearizability> keys, bool cancelled)
    {
        var text = new StringBuilder();
        var operations = keys.Sum(k => k.OperationCount);
        var scope = $"{Describe.Plural(operations, "operation", "operations")} on {Describe.Plural(keys.Count, "key", "keys")}";
        switch (verdict)
        {
            case Verdict.Valid:
                text.Append(CultureInfo.InvariantCulture, $"Linearizable ({model.ToWireName()} model): {scope}.");
                break;
            case Verdict.Invalid:
                var invalid = keys.Where(k => k.Verdict == Verdict.Invalid).ToList();
                text.Append(CultureInfo.InvariantCulture, $"NOT linearizable ({model.ToWireName()} model): {Describe.Plural(invalid.Count, "key", "keys")} of {keys.Count} failed ({scope}).");
                foreach (var key in invalid)
                {
                    text.AppendLine().AppendLine().Append(key.Explanation);
                }

                break;
            default:
                var undecided = keys.Count(k => k.Verdict == Verdict.Unknown);
                text.Append(CultureInfo.InvariantCulture, $"Unknown ({model.ToWireName()} model): {Describe.Plural(undecided, "key was", "keys were")} not decided before the {(cancelled ? "check was cancelled" : "timeout")}; no violation was found in the {keys.Count - undecided} decided ({scope}).");
                break;
        }

        return text.ToString();
    }

    private static string KeyName(Partition partition) => partition.Key is null ? "the history" : $"key {partition.Key}";
}
