using System.Globalization;
using System.Text;
using System.Text.Json;
using Concord.Lab.History;

namespace Concord.Lab.Checkers.Linearizability;

/// <summary>Turns a shrunk failure into plain words: what the stuck operation saw, what it could have seen, and the window.</summary>
internal static class FailureExplainer
{
    public static string Explain(Partition partition, LinearizabilityModel model, Shrinker.Result shrunk)
    {
        var text = new StringBuilder();
        var keyName = partition.Key is null ? "the history" : $"key {partition.Key}";
        text.Append(CultureInfo.InvariantCulture, $"{keyName} is not linearizable ({model.ToWireName()} model).");
        if (shrunk.Stuck is { } stuck)
        {
            text.Append(' ').Append(Diagnose(partition, model, stuck));
        }

        var window = shrunk.Window.OrderBy(o => o.Source.Index).ToList();
        text.AppendLine();
        text.Append(CultureInfo.InvariantCulture, $"{(shrunk.Complete ? "Smallest failing window" : "Failing window (shrinking stopped early)")}: {Describe.Plural(window.Count, "operation", "operations")} that no order can explain:");
        foreach (var op in window)
        {
            text.AppendLine();
            text.Append("  ").Append(Line(op, model));
        }

        return text.ToString();
    }

    private static string Diagnose(Partition partition, LinearizabilityModel model, LinOp stuck)
    {
        var specific = model switch
        {
            LinearizabilityModel.Register or LinearizabilityModel.CasRegister when stuck.Kind is LinKind.Read or LinKind.Cas => RegisterRead(partition, stuck),
            LinearizabilityModel.Counter when stuck.Kind == LinKind.Read => CounterRead(partition, stuck),
            LinearizabilityModel.Set when stuck.Kind == LinKind.Read => SetRead(partition, stuck),
            LinearizabilityModel.Queue when stuck.Kind == LinKind.Dequeue => Dequeue(partition, stuck),
            _ => null,
        };
        return specific ?? $"Once {Subject(stuck)} {Action(stuck, model)} ({When(stuck)}), no order of the operations below explains all their results.";
    }

    private static string RegisterRead(Partition partition, LinOp x)
    {
        var observed = x.Kind == LinKind.Cas ? x.A : x.Output;
        var observedText = x.Kind == LinKind.Cas ? Describe.Value(x.Source.Invoke.Value[0]) : Describe.Value(x.Source.Completion!.Value);
        var writes = partition.Ops.Where(o => !ReferenceEquals(o.Source, x.Source) && o.Kind is LinKind.Write or LinKind.Cas).ToList();
        static long Written(LinOp w) => w.Kind == LinKind.Cas ? w.B : w.A;
        static JsonElement WrittenValue(LinOp w) => w.Kind == LinKind.Cas ? w.Source.Invoke.Value[1] : w.Source.Invoke.Value;

        LinOp? SupersededBy(LinOp w) => !w.Known
            ? null
            : writes.FirstOrDefault(w2 => w2.Known && (w2.Kind == LinKind.Write || w2.Kind == LinKind.Cas) && w.Return < w2.Call && w2.Return < x.Call);

        var candidates = writes.Where(w => w.Call < x.Return && SupersededBy(w) is null).ToList();
        var initialPossible = !writes.Any(w => w.Known && w.Return < x.Call);
        var candidateValues = candidates.Select(w => (Id: Written(w), Text: Describe.Value(WrittenValue(w)))).ToList();
        if (initialPossible)
        {
            candidateValues.Insert(0, (0, "null (the initial value)"));
        }

        var distinct = candidateValues.DistinctBy(c => c.Id).ToList();
        var verb = x.Kind == LinKind.Cas
            ? $"changed {KeyText(partition)} from {observedText} to {Describe.Value(x.Source.Invoke.Value[1])} (a successful cas)"
            : $"read {observedText} from {KeyText(partition)}";
        var lead = $"{Subject(x)} {verb} ({When(x)})";
        if (distinct.Any(c => c.Id == observed))
        {
            return $"{lead}; a write of {observedText} could precede it, but not in any order that also explains the other results below.";
        }

        var text = new StringBuilder(lead);
        text.Append(distinct.Count == 0
            ? ", but no write could precede it"
            : $", but the only {(distinct.Count == 1 ? "value" : "values")} it could have found {(distinct.Count == 1 ? "was" : "were")} {Describe.List(distinct.Select(c => c.Text).ToList())}");
        var sources = writes.Where(w => Written(w) == observed).Take(3).ToList();
        if (sources.Count == 0)
        {
            var failed = partition.AllPairs.FirstOrDefault(p => p.Outcome == OperationType.Fail && p.F is Functions.Write or Functions.Cas
                && Describe.Value(p.F == Functions.Cas && p.Invoke.Value.ValueKind == JsonValueKind.Array ? p.Invoke.Value[1] : p.Invoke.Value) == observedText);
            text.Append(failed is null
                ? $". No operation ever wrote {observedText}."
                : $". The only write of {observedText} ({Subject(failed)}, op {failed.Index}) failed, so it never took effect.");
            return text.ToString();
        }

        text.Append('.');
        foreach (var w in sources)
        {
            if (w.Call > x.Return)
            {
                text.Append(CultureInfo.InvariantCulture, $" The write of {observedText} by {Subject(w)} (op {w.Source.Index}) began only at t={Describe.Time(w.Source.Invoke.Time)}, after this operation had returned.");
            }
            else if (SupersededBy(w) is { } later)
            {
                text.Append(CultureInfo.InvariantCulture, $" The write of {observedText} by {Subject(w)} (op {w.Source.Index}) had already been overwritten by the write of {Describe.Value(WrittenValue(later))} by {Subject(later)} (op {later.Source.Index}), which finished at t={Describe.Time(later.Source.Completion!.Time)}, before this operation began.");
            }
        }

        return text.ToString();
    }

    private static string? CounterRead(Partition partition, LinOp x)
    {
        var increments = partition.Ops.Where(o => o.Kind == LinKind.Increment).ToList();
        if (increments.Any(i => i.A < 0))
        {
            return null;
        }

        var minimum = increments.Where(i => i.Known && i.Return < x.Call).Sum(i => i.A);
        var maximum = increments.Where(i => i.Call < x.Return).Sum(i => i.A);
        var lead = $"{Subject(x)} read {x.Output} from {KeyText(partition)} ({When(x)})";
        if (x.Output < minimum)
        {
            return $"{lead}, but increments totalling {minimum} had already completed before the read began.";
        }

        if (x.Output > maximum)
        {
            return $"{lead}, but all the increments that could have happened by then add up to only {maximum}.";
        }

        var earlier = partition.Ops.FirstOrDefault(r => r.Kind == LinKind.Read && r.Known && r.Return < x.Call && r.Output > x.Output);
        return earlier is null
            ? null
            : $"{lead}, but {Subject(earlier)} had already read {earlier.Output} (op {earlier.Source.Index}, finished at t={Describe.Time(earlier.Source.Completion!.Time)} before this read began), and the counter only grows.";
    }

    private static string? SetRead(Partition partition, LinOp x)
    {
        var read = x.Source.Completion!.Value;
        var elementTexts = read.ValueKind == JsonValueKind.Array ? read.EnumerateArray().Select(Describe.Value).ToHashSet() : [];
        var lead = $"{Subject(x)} read {Describe.Value(read)} from {KeyText(partition)} ({When(x)})";
        var adds = partition.Ops.Where(o => o.Kind == LinKind.Add).ToList();
        var missing = adds.FirstOrDefault(a => a.Known && a.Return < x.Call && !elementTexts.Contains(Describe.Value(a.Source.Invoke.Value)));
        if (missing is not null)
        {
            return $"{lead}, which lacks {Describe.Value(missing.Source.Invoke.Value)}, added by {Subject(missing)} (op {missing.Source.Index}) before the read began.";
        }

        foreach (var element in elementTexts)
        {
            if (!adds.Any(a => a.Call < x.Return && Describe.Value(a.Source.Invoke.Value) == element))
            {
                return $"{lead}, which contains {element}, but nothing added {element} before the read returned.";
            }
        }

        var earlier = partition.Ops.Where(r => r.Kind == LinKind.Read && r.Known && r.Return < x.Call)
            .Select(r => (Read: r, Missing: r.Source.Completion!.Value.EnumerateArray().Select(Describe.Value).FirstOrDefault(e => !elementTexts.Contains(e))))
            .FirstOrDefault(r => r.Missing is not null);
        return earlier.Read is null
            ? null
            : $"{lead}, which lacks {earlier.Missing}, although {Subject(earlier.Read)} had already read it (op {earlier.Read.Source.Index}) before this read began; elements are never removed.";
    }

    private static string? Dequeue(Partition partition, LinOp x)
    {
        var enqueues = partition.Ops.Where(o => o.Kind == LinKind.Enqueue).ToList();
        var dequeues = partition.Ops.Where(o => o.Kind == LinKind.Dequeue).ToList();
        if (x.Output == LinOp.EmptyQueue)
        {
            var waiting = enqueues.FirstOrDefault(e => e.Known && e.Return < x.Call
                && !dequeues.Any(d => !ReferenceEquals(d, x) && d.Call < x.Return && (!d.Known || d.Output == e.A)));
            return waiting is null
                ? null
                : $"{Subject(x)} found {KeyText(partition)} empty ({When(x)}), but {Describe.Value(waiting.Source.Invoke.Value)} had been enqueued by {Subject(waiting)} (op {waiting.Source.Index}) before and not dequeued.";
        }

        var elementText = Describe.Value(x.Source.Completion!.Value);
        var lead = $"{Subject(x)} dequeued {elementText} from {KeyText(partition)} ({When(x)})";
        var sources = enqueues.Where(e => e.A == x.Output).ToList();
        if (sources.Count == 0)
        {
            return $"{lead}, but {elementText} was never enqueued.";
        }

        var takers = dequeues.Where(d => d.Known && d.Output == x.Output).ToList();
        if (takers.Count > sources.Count)
        {
            var taken = Describe.List(takers.Select(d => $"op {d.Source.Index} by {Describe.Actor(d.Source.Process, d.Source.Agent)}").ToList());
            return $"{lead}, but {elementText} was dequeued {takers.Count} times ({taken}) and enqueued only {(sources.Count == 1 ? "once" : $"{sources.Count} times")}: a duplicate dequeue.";
        }

        if (sources.All(e => e.Call > x.Return))
        {
            return $"{lead}, but {elementText} was enqueued only after the dequeue returned (op {sources[0].Source.Index}).";
        }

        var firstSource = sources.MinBy(e => e.Call)!;
        var ahead = enqueues.FirstOrDefault(e => e.Known && e.A != x.Output && e.Return < firstSource.Call
            && !dequeues.Any(d => d.Call < x.Return && (!d.Known || d.Output == e.A)));
        return ahead is null
            ? null
            : $"{lead}, but {Describe.Value(ahead.Source.Invoke.Value)} was enqueued before it (op {ahead.Source.Index} finished before op {firstSource.Source.Index} began) and had not been dequeued: FIFO order was broken.";
    }

    private static string Line(LinOp op, LinearizabilityModel model)
    {
        var source = op.Source;
        var end = source.Completion is { } completion ? Describe.Time(completion.Time) : "never completed";
        var note = source.Outcome != OperationType.Ok ? " (outcome unknown)"
            : !op.Known ? " (still running when the failure became certain; its result is ignored)"
            : string.Empty;
        return $"op {source.Index}: {Describe.Who(source.Process, source.Agent)} {Action(op, model)}{note} [t={Describe.Time(source.Invoke.Time)} → {end}]";
    }

    private static string Action(LinOp op, LinearizabilityModel model)
    {
        var source = op.Source;
        var input = source.Invoke.Value;
        var output = source.Completion?.Value ?? default;
        return op.Kind switch
        {
            LinKind.Write => $"wrote {Describe.Value(input)}",
            LinKind.Read => $"read {Describe.Value(output)}",
            LinKind.Cas => $"cas {Describe.Value(input[0])}→{Describe.Value(input[1])}",
            LinKind.Increment => $"{(source.F == Functions.Add ? "added" : "incremented by")} {Describe.Value(input)}",
            LinKind.Add => $"added {Describe.Value(input)}",
            LinKind.Enqueue => $"enqueued {Describe.Value(input)}",
            LinKind.Dequeue when !op.Known => "dequeued",
            LinKind.Dequeue when op.Output == LinOp.EmptyQueue => "found the queue empty",
            LinKind.Dequeue => $"dequeued {Describe.Value(output)}",
            _ => model.ToWireName(),
        };
    }

    private static string Subject(LinOp op) => Subject(op.Source);

    private static string Subject(OperationPair pair) => Describe.Who(pair.Process, pair.Agent);

    private static string When(LinOp op) => op.Known
        ? $"op {op.Source.Index}, t={Describe.Time(op.Source.Invoke.Time)}→{Describe.Time(op.Source.Completion!.Time)}"
        : $"op {op.Source.Index}, invoked at t={Describe.Time(op.Source.Invoke.Time)}";

    private static string KeyText(Partition partition) => partition.Key ?? "the object";
}
