using Concord.Lab.History;

namespace Concord.Lab.Checkers.Isolation;

/// <summary>
/// Internal consistency: inside one committed transaction, a read of a key must agree with the transaction's own
/// earlier reads and writes of that key (a register read returns the last value read or written; a list read
/// extends the last list read by exactly the transaction's own appends since).
/// </summary>
internal static class InternalAnalyzer
{
    public static void Analyze(IsolationContext context, IReadOnlySet<string> listKeys)
    {
        foreach (var txn in context.Txns.Where(t => t.Committed))
        {
            foreach (var group in txn.Ops.GroupBy(o => o.Key, StringComparer.Ordinal))
            {
                var problem = listKeys.Contains(group.Key) ? CheckList(txn, group.Key, group) : CheckRegister(group.Key, group);
                if (problem is not null)
                {
                    context.Report(AnomalyType.Internal, $"{txn.Label} {problem}", txn);
                }
            }
        }
    }

    private static string? CheckRegister(string key, IEnumerable<MicroOp> ops)
    {
        string? expected = null;
        var fromWrite = false;
        foreach (var op in ops)
        {
            var value = Describe.Value(op.Value);
            if (op.F == MicroOp.WriteName)
            {
                expected = value;
                fromWrite = true;
            }
            else if (op.F == MicroOp.ReadName)
            {
                if (expected is not null && value != expected)
                {
                    return fromWrite
                        ? $"wrote {expected} to {key} and then read {value} from it in the same transaction."
                        : $"read {expected} from {key} and then {value} in the same transaction, without writing it in between.";
                }

                expected = value;
                fromWrite = false;
            }
        }

        return null;
    }

    private static string? CheckList(Txn txn, string key, IEnumerable<MicroOp> ops)
    {
        List<string>? expected = null;
        var ownAppends = new List<string>();
        foreach (var op in ops)
        {
            if (op.F == MicroOp.AppendName)
            {
                var element = Describe.Value(op.Value);
                if (expected is not null)
                {
                    expected.Add(element);
                }
                else
                {
                    ownAppends.Add(element);
                }
            }
            else if (op.F == MicroOp.ReadName)
            {
                var read = ListAppendAnalyzer.Elements(op.Value, txn, key);
                if (expected is not null && !read.SequenceEqual(expected))
                {
                    return $"read {key} as {ListAppendAnalyzer.Show(read)}, but its own earlier read and appends imply {ListAppendAnalyzer.Show(expected)}.";
                }

                if (expected is null && ownAppends.Count > 0 && (read.Count < ownAppends.Count || !read[^ownAppends.Count..].SequenceEqual(ownAppends)))
                {
                    return $"appended {Describe.List(ownAppends)} to {key} and then read it as {ListAppendAnalyzer.Show(read)}, which does not end with its own appends.";
                }

                expected = read;
                ownAppends.Clear();
            }
        }

        return null;
    }
}
