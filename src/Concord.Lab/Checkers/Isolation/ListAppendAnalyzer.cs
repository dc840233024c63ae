using System.Text.Json;
using Concord.Lab.History;

namespace Concord.Lab.Checkers.Isolation;

/// <summary>
/// List-append keys: every append adds a unique element, and reads return the whole list, so the longest read
/// gives the version order of each key, and each read names exactly the version (prefix) it saw.
/// </summary>
internal static class ListAppendAnalyzer
{
    private const int MaxReportsPerKind = 20;

    public static void Analyze(IsolationContext context, IReadOnlyCollection<string> keys)
    {
        // Index the transactions touching each key once, so each key's analysis only visits its own transactions.
        var wanted = keys.ToHashSet(StringComparer.Ordinal);
        var byKey = new Dictionary<string, List<Txn>>(StringComparer.Ordinal);
        foreach (var txn in context.Txns)
        {
            foreach (var key in txn.Ops.Select(o => o.Key).Distinct(StringComparer.Ordinal))
            {
                if (wanted.Contains(key))
                {
                    if (!byKey.TryGetValue(key, out var list))
                    {
                        byKey[key] = list = [];
                    }

                    list.Add(txn);
                }
            }
        }

        foreach (var key in keys.Order(StringComparer.Ordinal))
        {
            AnalyzeKey(context, key, byKey.GetValueOrDefault(key) ?? []);
        }
    }

    private static void AnalyzeKey(IsolationContext context, string key, List<Txn> txns)
    {
        // Who appended each element; and each transaction's last append to the key (for intermediate reads).
        var writer = new Dictionary<string, Txn>(StringComparer.Ordinal);
        var lastAppend = new Dictionary<Txn, string>();
        foreach (var txn in txns)
        {
            foreach (var op in txn.Ops)
            {
                if (op.F != MicroOp.AppendName || op.Key != key)
                {
                    continue;
                }

                var element = Describe.Value(op.Value);
                if (writer.TryGetValue(element, out var other))
                {
                    throw new HistoryFormatException(
                        $"element {element} is appended to {key} twice ({other.Label} and {txn.Label}); list-append histories need unique elements per key", txn.Index);
                }

                writer[element] = txn;
                lastAppend[txn] = element;
            }
        }

        var reads = new List<(Txn Txn, List<string> Elements)>();
        foreach (var txn in txns.Where(t => t.Committed))
        {
            var ownSoFar = new HashSet<string>(StringComparer.Ordinal);
            foreach (var op in txn.Ops.Where(o => o.Key == key))
            {
                if (op.F == MicroOp.AppendName)
                {
                    ownSoFar.Add(Describe.Value(op.Value));
                    continue;
                }

                if (op.F != MicroOp.ReadName)
                {
                    continue;
                }

                var elements = Elements(op.Value, txn, key);
                var clean = CheckRead(context, key, txn, elements, writer, lastAppend, ownSoFar);
                reads.Add((txn, clean));
            }
        }

        // The version order: the longest read; every other read must be a prefix of it.
        var order = reads.Select(r => r.Elements).MaxBy(e => e.Count) ?? [];
        var incompatible = 0;
        foreach (var (txn, elements) in reads)
        {
            if (IsPrefix(elements, order))
            {
                continue;
            }

            if (incompatible++ < MaxReportsPerKind)
            {
                var longest = reads.First(r => ReferenceEquals(r.Elements, order)).Txn;
                context.Report(AnomalyType.IncompatibleOrder,
                    $"{txn.Label} read {key} as {Show(elements)}, but {longest.Label} read it as {Show(order)}: neither is a prefix of the other, so no single order of appends explains both.",
                    txn, longest);
            }
        }

        var graph = context.Graph;
        for (var i = 0; i + 1 < order.Count; i++)
        {
            if (writer.TryGetValue(order[i], out var a) && writer.TryGetValue(order[i + 1], out var b) && !a.Failed && !b.Failed)
            {
                graph.Add(a.Id, b.Id, EdgeKinds.WW, new EdgeReason(key, order[i], order[i + 1], true));
            }
        }

        // wr and rw edges, and lost updates, from each transaction's external view of the key.
        var sameVersion = new Dictionary<int, List<Txn>>();
        foreach (var (txn, elements) in reads)
        {
            if (!IsPrefix(elements, order))
            {
                continue;
            }

            var external = elements.TakeWhile(e => !ReferenceEquals(writer.GetValueOrDefault(e), txn)).ToList();
            if (external.Count > 0 && writer.TryGetValue(external[^1], out var source) && !source.Failed)
            {
                graph.Add(source.Id, txn.Id, EdgeKinds.WR, new EdgeReason(key, external[^1], string.Empty, true));
            }

            if (external.Count < order.Count && writer.TryGetValue(order[external.Count], out var next) && !next.Failed && !ReferenceEquals(next, txn))
            {
                graph.Add(txn.Id, next.Id, EdgeKinds.RW, new EdgeReason(key, external.Count == 0 ? string.Empty : external[^1], order[external.Count], true));
            }
        }

        foreach (var txn in txns.Where(t => t.Committed))
        {
            if (ReadBeforeAppend(txn, key) is { } view && lastAppend.ContainsKey(txn) && IsPrefix(view, order))
            {
                var external = view.TakeWhile(e => !ReferenceEquals(writer.GetValueOrDefault(e), txn)).Count();
                if (!sameVersion.TryGetValue(external, out var group))
                {
                    sameVersion[external] = group = [];
                }

                group.Add(txn);
            }
        }

        foreach (var (length, group) in sameVersion.Where(g => g.Value.Count > 1).OrderBy(g => g.Key))
        {
            var state = length == 0 ? "empty" : $"ending in {order[length - 1]} ({Describe.Plural(length, "element", "elements")})";
            var appended = group.Select(t => $"{t.Label} appended {Describe.List(OwnAppends(t, key))}").ToList();
            context.Report(AnomalyType.LostUpdate,
                $"{Describe.List(group.Select(t => t.Label).ToList())} all read {key} when it was {state}, and then {Describe.List(appended)}: each wrote on top of a version another had already replaced, so one update was made without seeing the other.",
                [.. group]);
        }
    }

    private static List<string> CheckRead(IsolationContext context, string key, Txn txn, List<string> elements,
        Dictionary<string, Txn> writer, Dictionary<Txn, string> lastAppend, HashSet<string> own)
    {
        var seen = new HashSet<string>(elements.Count, StringComparer.Ordinal);
        var duplicates = elements.Where(e => !seen.Add(e)).Distinct(StringComparer.Ordinal).ToList();
        if (duplicates.Count > 0)
        {
            context.Report(AnomalyType.DuplicateElements,
                $"{txn.Label} read {key} as {Show(elements)}, which contains {Describe.List(duplicates)} more than once; each element was appended once.", txn);
        }

        var garbage = elements.Where(e => !writer.ContainsKey(e)).Distinct(StringComparer.Ordinal).ToList();
        if (garbage.Count > 0)
        {
            context.Report(AnomalyType.GarbageRead,
                $"{txn.Label} read {key} as {Show(elements)}, but no transaction ever appended {Describe.List(garbage)} to {key}.", txn);
        }

        foreach (var element in seen)
        {
            if (writer.TryGetValue(element, out var source) && source.Failed && !ReferenceEquals(source, txn))
            {
                context.Report(AnomalyType.G1a,
                    $"{txn.Label} read {key} as {Show(elements)}, which includes {element}, appended by {source.Label}, a transaction that failed: it read a write that was rolled back.",
                    txn, source);
            }
        }

        var externalPart = elements.Where(e => !own.Contains(e)).ToList();
        if (externalPart.Count > 0 && writer.TryGetValue(externalPart[^1], out var last) && !ReferenceEquals(last, txn)
            && lastAppend.TryGetValue(last, out var final) && final != externalPart[^1])
        {
            context.Report(AnomalyType.G1b,
                $"{txn.Label} read {key} ending in {externalPart[^1]}, an intermediate state of {last.Label}, which went on to append {final} in the same transaction: it saw half of another transaction.",
                txn, last);
        }

        return duplicates.Count == 0 && garbage.Count == 0 ? elements : elements.Distinct(StringComparer.Ordinal).Where(writer.ContainsKey).ToList();
    }

    /// <summary>The list a committed transaction read before its first append to the key, if it read one.</summary>
    private static List<string>? ReadBeforeAppend(Txn txn, string key)
    {
        foreach (var op in txn.Ops.Where(o => o.Key == key))
        {
            if (op.F == MicroOp.AppendName)
            {
                return null;
            }

            if (op.F == MicroOp.ReadName)
            {
                return Elements(op.Value, txn, key).Distinct(StringComparer.Ordinal).ToList();
            }
        }

        return null;
    }

    private static List<string> OwnAppends(Txn txn, string key) =>
        txn.Ops.Where(o => o.F == MicroOp.AppendName && o.Key == key).Select(o => Describe.Value(o.Value)).ToList();

    internal static List<string> Elements(JsonElement value, Txn txn, string key) => value.ValueKind switch
    {
        JsonValueKind.Null or JsonValueKind.Undefined => [],
        JsonValueKind.Array => value.EnumerateArray().Select(Describe.Value).ToList(),
        _ => throw new HistoryFormatException($"{txn.Label} read {key} as {value.GetRawText()}; a list-append read returns a list", txn.Index),
    };

    private static bool IsPrefix(List<string> prefix, List<string> list)
    {
        if (prefix.Count > list.Count)
        {
            return false;
        }

        for (var i = 0; i < prefix.Count; i++)
        {
            if (prefix[i] != list[i])
            {
                return false;
            }
        }

        return true;
    }

    internal static string Show(List<string> elements) => $"[{string.Join(",", elements)}]";
}
