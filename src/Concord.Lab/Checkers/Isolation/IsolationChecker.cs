using System.Globalization;
using System.Text;
using Concord.Lab.History;

namespace Concord.Lab.Checkers.Isolation;

/// <summary>
/// Elle-style isolation checker for transactional histories (<c>txn</c> operations): builds the dependency graph
/// (ww, wr, rw edges; optionally process and real-time order), looks for cycles and classifies them (G0, G1c,
/// G-single, G2-item), and reports non-cycle anomalies (G1a, G1b, lost update, internal inconsistency, duplicate
/// elements, garbage reads, incompatible orders).
/// </summary>
/// <remarks>
/// Keys that receive <c>append</c> micro-ops are list-append keys; keys that receive <c>w</c> are read-write
/// registers, whose micro-ops should carry exact versions. Thread-safe: the checker keeps no state between calls.
/// </remarks>
public static class IsolationChecker
{
    /// <summary>Checks <paramref name="history"/> for isolation anomalies.</summary>
    /// <exception cref="HistoryFormatException">The history has non-<c>txn</c> operations, ill-formed micro-ops, or a list element appended twice.</exception>
    public static IsolationReport Check(OperationHistory history, IsolationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(history);
        options ??= new IsolationOptions();
        options.Validate();

        var txns = BuildTransactions(history);
        var context = new IsolationContext(txns);
        var (listKeys, registerKeys) = ClassifyKeys(txns);
        ListAppendAnalyzer.Analyze(context, listKeys);
        RegisterAnalyzer.Analyze(context, registerKeys);
        InternalAnalyzer.Analyze(context, listKeys);

        var extras = EdgeKinds.None;
        if (options.ProcessOrder)
        {
            AddProcessOrder(context);
            extras |= EdgeKinds.Process;
        }

        if (options.RealTime)
        {
            AddRealTimeOrder(context, history);
            extras |= EdgeKinds.RealTime;
        }

        using var timeout = options.Timeout is { } limit ? new CancellationTokenSource(limit, options.TimeProvider) : null;
        using var linked = timeout is null
            ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken)
            : CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        var complete = CycleFinder.Find(context, extras, options.MaxSearchVisitsPerComponent, linked.Token);
        if (!complete)
        {
            context.Notes.Add("The cycle search was cut short (timeout, cancellation or search budget); some cycles may be unreported.");
        }

        var verdict = context.Anomalies.Count > 0 ? Verdict.Invalid : complete ? Verdict.Valid : Verdict.Unknown;
        var workload = (listKeys.Count > 0, registerKeys.Count > 0) switch
        {
            (true, true) => "mixed",
            (true, false) => "list-append",
            (false, true) => "rw-register",
            _ => "empty",
        };
        var consistency = options.RealTime ? "strict serializable" : options.ProcessOrder ? "strong session serializable" : "serializable";
        return new IsolationReport(verdict, context.Anomalies, txns.Count, workload, context.Notes,
            Summarize(verdict, context, txns.Count, workload, consistency));
    }

    private static List<Txn> BuildTransactions(OperationHistory history)
    {
        var txns = new List<Txn>();
        foreach (var pair in history.Pairs)
        {
            if (pair.F != Functions.Txn)
            {
                throw new HistoryFormatException($"the isolation checker only accepts txn operations, not \"{pair.F}\" (use a linearizability model for single-key operations)", pair.Index);
            }

            var value = pair.Outcome == OperationType.Ok && pair.Completion is { HasNullValue: false } completion ? completion.Value : pair.Invoke.Value;
            IReadOnlyList<MicroOp> ops;
            try
            {
                ops = MicroOp.ParseList(value);
            }
            catch (FormatException e)
            {
                throw new HistoryFormatException(e.Message, pair.Index);
            }

            txns.Add(new Txn { Id = txns.Count, Pair = pair, Ops = ops });
        }

        return txns;
    }

    private static (HashSet<string> List, HashSet<string> Register) ClassifyKeys(List<Txn> txns)
    {
        var list = new HashSet<string>(StringComparer.Ordinal);
        var register = new HashSet<string>(StringComparer.Ordinal);
        var readOnly = new Dictionary<string, bool>(StringComparer.Ordinal);
        foreach (var op in txns.SelectMany(t => t.Ops))
        {
            switch (op.F)
            {
                case MicroOp.AppendName: list.Add(op.Key); break;
                case MicroOp.WriteName: register.Add(op.Key); break;
                default:
                    readOnly[op.Key] = readOnly.GetValueOrDefault(op.Key) || op.Value.ValueKind == System.Text.Json.JsonValueKind.Array;
                    break;
            }
        }

        if (list.FirstOrDefault(register.Contains) is { } both)
        {
            var txn = txns.First(t => t.Ops.Any(o => o.Key == both && o.F == MicroOp.WriteName));
            throw new HistoryFormatException($"key {both} is both appended to and written; a key is either a list (append) or a register (w)", txn.Index);
        }

        foreach (var (key, looksLikeList) in readOnly)
        {
            if (!list.Contains(key) && !register.Contains(key))
            {
                (looksLikeList ? list : register).Add(key);
            }
        }

        return (list, register);
    }

    private static void AddProcessOrder(IsolationContext context)
    {
        foreach (var group in context.Txns.Where(t => t.Committed).GroupBy(t => t.Pair.Process))
        {
            Txn? previous = null;
            foreach (var txn in group.OrderBy(t => t.Pair.InvokePosition))
            {
                if (previous is not null)
                {
                    context.Graph.Add(previous.Id, txn.Id, EdgeKinds.Process);
                }

                previous = txn;
            }
        }
    }

    /// <summary>
    /// Real-time edges, transitively reduced: when a transaction starts, it follows every transaction on the current
    /// frontier (committed, and not already known to precede another committed transaction that precedes it).
    /// </summary>
    private static void AddRealTimeOrder(IsolationContext context, OperationHistory history)
    {
        var byInvoke = new Dictionary<int, Txn>();
        var byCompletion = new Dictionary<int, Txn>();
        foreach (var txn in context.Txns.Where(t => !t.Failed))
        {
            byInvoke[txn.Pair.InvokePosition] = txn;
            if (txn.Committed)
            {
                byCompletion[txn.Pair.CompletionPosition] = txn;
            }
        }

        var frontier = new HashSet<int>();
        var predecessors = new Dictionary<int, int[]>();
        for (var position = 0; position < history.Operations.Count; position++)
        {
            if (byInvoke.TryGetValue(position, out var started))
            {
                var before = frontier.ToArray();
                predecessors[started.Id] = before;
                foreach (var p in before)
                {
                    context.Graph.Add(p, started.Id, EdgeKinds.RealTime);
                }
            }
            else if (byCompletion.TryGetValue(position, out var finished))
            {
                frontier.ExceptWith(predecessors[finished.Id]);
                frontier.Add(finished.Id);
            }
        }
    }

    private static string Summarize(Verdict verdict, IsolationContext context, int count, string workload, string consistency)
    {
        var text = new StringBuilder();
        var scope = $"{Describe.Plural(count, "transaction", "transactions")}, {workload}";
        switch (verdict)
        {
            case Verdict.Valid:
                text.Append(CultureInfo.InvariantCulture, $"No anomaly: the history is {consistency} as far as its dependencies show ({scope}).");
                break;
            case Verdict.Invalid:
                var kinds = context.Anomalies.GroupBy(a => a.Name).Select(g => $"{g.Count()} {g.Key}").ToList();
                text.Append(CultureInfo.InvariantCulture, $"NOT {consistency}: {Describe.Plural(context.Anomalies.Count, "anomaly", "anomalies")} ({Describe.List(kinds)}) in {scope}.");
                foreach (var anomaly in context.Anomalies)
                {
                    text.AppendLine().AppendLine().Append(CultureInfo.InvariantCulture, $"[{anomaly.Name}] {anomaly.Explanation}");
                }

                break;
            default:
                text.Append(CultureInfo.InvariantCulture, $"Unknown: no anomaly found, but the search did not finish ({scope}).");
                break;
        }

        foreach (var note in context.Notes)
        {
            text.AppendLine().Append("Note: ").Append(note);
        }

        return text.ToString();
    }
}
