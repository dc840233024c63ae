using System.Globalization;
using Concord.Lab.History;

namespace Concord.Lab.Checkers.Isolation;

/// <summary>
/// Read-write register keys. Concord records exact versions: each write records the version it created and each
/// read the version it saw (0 = the key was absent), so the version order, and with it every ww, wr and rw edge,
/// is known exactly. Without versions, a read is traced to its writer by value (values must then be unique per key),
/// and no ww or rw edges can be inferred for it.
/// </summary>
internal static class RegisterAnalyzer
{
    private sealed class WriteRecord
    {
        public required Txn Txn { get; init; }

        public required string Value { get; init; }

        public required bool IsFinal { get; init; }

        public long? Version { get; set; }
    }

    public static void Analyze(IsolationContext context, IReadOnlyCollection<string> keys)
    {
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

        var unversionedReads = 0;
        foreach (var key in keys.Order(StringComparer.Ordinal))
        {
            unversionedReads += AnalyzeKey(context, key, byKey.GetValueOrDefault(key) ?? []);
        }

        if (unversionedReads > 0)
        {
            context.Notes.Add(string.Create(CultureInfo.InvariantCulture,
                $"{unversionedReads} register read(s) carried no version and were traced to their writer by value only; anti-dependencies (rw) of those reads were not inferred."));
        }
    }

    private static int AnalyzeKey(IsolationContext context, string key, List<Txn> txns)
    {
        var byValue = new Dictionary<string, List<WriteRecord>>(StringComparer.Ordinal);
        var byVersion = new SortedDictionary<long, WriteRecord>();
        foreach (var txn in txns)
        {
            var writes = txn.Ops.Select((op, i) => (op, i)).Where(x => x.op.F == MicroOp.WriteName && x.op.Key == key).ToList();
            for (var w = 0; w < writes.Count; w++)
            {
                var op = writes[w].op;
                var record = new WriteRecord { Txn = txn, Value = Describe.Value(op.Value), IsFinal = w == writes.Count - 1, Version = txn.Committed ? op.Version : null };
                if (!byValue.TryGetValue(record.Value, out var list))
                {
                    byValue[record.Value] = list = [];
                }

                list.Add(record);
                if (record.Version is { } version && record.IsFinal)
                {
                    Claim(context, key, byVersion, record, version);
                }
            }
        }

        // A read that names both value and version also tells us the version of a write whose commit we did not see.
        var reads = ExternalReads(txns, key).ToList();
        foreach (var (_, op) in reads)
        {
            if (op.Version is { } version && version > 0 && !byVersion.ContainsKey(version)
                && byValue.TryGetValue(Describe.Value(op.Value), out var candidates) && candidates.Count == 1 && candidates[0].Version is null && !candidates[0].Txn.Failed)
            {
                candidates[0].Version = version;
                byVersion[version] = candidates[0];
            }
        }

        var graph = context.Graph;
        WriteRecord? previous = null;
        foreach (var (version, record) in byVersion)
        {
            if (previous is not null)
            {
                graph.Add(previous.Txn.Id, record.Txn.Id, EdgeKinds.WW, new EdgeReason(key, previous.Version!.Value.ToString(CultureInfo.InvariantCulture), version.ToString(CultureInfo.InvariantCulture), false));
            }

            previous = record;
        }

        var versions = byVersion.Keys.ToArray();
        var unversioned = 0;
        var sameVersion = new Dictionary<long, List<Txn>>();
        foreach (var (txn, op) in reads)
        {
            var value = Describe.Value(op.Value);
            long? seen = op.Version;
            WriteRecord? source = null;
            if (value == "null" && (seen ?? 0) == 0)
            {
                seen = 0;
            }
            else if (seen is { } version && byVersion.TryGetValue(version, out var versioned))
            {
                if (versioned.Value != value)
                {
                    context.Report(AnomalyType.GarbageRead,
                        $"{txn.Label} read version {version} of {key} as {value}, but version {version} was written as {versioned.Value} by {versioned.Txn.Label}.",
                        txn, versioned.Txn);
                    continue;
                }

                source = versioned;
            }
            else if (byValue.TryGetValue(value, out var candidates))
            {
                if (candidates.Count > 1)
                {
                    unversioned++;
                    continue; // ambiguous without a version
                }

                source = candidates[0];
                seen ??= source.Version;
            }
            else
            {
                var what = seen is { } v ? $"version {v} of {key} as {value}" : $"{value} from {key}";
                context.Report(AnomalyType.GarbageRead, $"{txn.Label} read {what}, but no transaction ever wrote {value} to {key}.", txn);
                continue;
            }

            if (seen is null)
            {
                unversioned++;
            }

            if (source is not null)
            {
                if (source.Txn.Failed)
                {
                    context.Report(AnomalyType.G1a,
                        $"{txn.Label} read {value} from {key}, written by {source.Txn.Label}, a transaction that failed: it read a write that was rolled back.",
                        txn, source.Txn);
                    continue;
                }

                if (!source.IsFinal)
                {
                    var final = byValue.Values.SelectMany(l => l).First(r => ReferenceEquals(r.Txn, source.Txn) && r.IsFinal);
                    context.Report(AnomalyType.G1b,
                        $"{txn.Label} read {value} from {key}, an intermediate value of {source.Txn.Label}, which went on to write {final.Value} in the same transaction: it saw half of another transaction.",
                        txn, source.Txn);
                    continue;
                }

                graph.Add(source.Txn.Id, txn.Id, EdgeKinds.WR, new EdgeReason(key, Show(seen), string.Empty, false));
            }

            if (seen is { } observed)
            {
                var position = Array.BinarySearch(versions, observed);
                var following = position >= 0 ? position + 1 : ~position;
                if (following < versions.Length && byVersion[versions[following]].Txn is var next && !ReferenceEquals(next, txn))
                {
                    graph.Add(txn.Id, next.Id, EdgeKinds.RW, new EdgeReason(key, observed.ToString(CultureInfo.InvariantCulture), versions[following].ToString(CultureInfo.InvariantCulture), false));
                }

                if (txn.Ops.Any(o => o.F == MicroOp.WriteName && o.Key == key))
                {
                    if (!sameVersion.TryGetValue(observed, out var group))
                    {
                        sameVersion[observed] = group = [];
                    }

                    group.Add(txn);
                }
            }
        }

        foreach (var (observed, group) in sameVersion.Where(g => g.Value.Count > 1).OrderBy(g => g.Key))
        {
            context.Report(AnomalyType.LostUpdate, LostUpdateText(key, observed, group, byVersion), [.. group]);
        }

        return unversioned;
    }

    private static string LostUpdateText(string key, long observed, List<Txn> group, SortedDictionary<long, WriteRecord> byVersion)
    {
        var created = group
            .Select(t => (Txn: t, Version: byVersion.FirstOrDefault(kv => ReferenceEquals(kv.Value.Txn, t) && kv.Key > observed).Key))
            .OrderBy(x => x.Version == 0 ? long.MaxValue : x.Version)
            .ToList();
        var based = observed == 0 ? $"{key} while it was absent (version 0)" : $"version {observed} of {key}";
        if (created.Count == 2 && created.All(c => c.Version != 0))
        {
            var (first, second) = (created[0], created[1]);
            return $"{second.Txn.Actor} overwrote {based} with version {second.Version}, but {first.Txn.Actor} had already replaced version {observed} with version {first.Version}: "
                + $"{first.Txn.Label} and {second.Txn.Label} both read {based} and both wrote it, so {first.Txn.Actor}'s update is lost.";
        }

        var writes = created.Select(c => c.Version == 0 ? $"{c.Txn.Label} wrote it" : $"{c.Txn.Label} wrote version {c.Version}").ToList();
        return $"{Describe.List(group.Select(t => t.Label).ToList())} all read {based}, then {Describe.List(writes)}: each overwrote a version it never saw, so all but the last update are lost.";
    }

    private static void Claim(IsolationContext context, string key, SortedDictionary<long, WriteRecord> byVersion, WriteRecord record, long version)
    {
        if (byVersion.TryGetValue(version, out var other) && !ReferenceEquals(other.Txn, record.Txn))
        {
            context.Report(AnomalyType.DuplicateElements,
                $"{other.Txn.Label} and {record.Txn.Label} both committed version {version} of {key} (writing {other.Value} and {record.Value}): a version is created once.",
                other.Txn, record.Txn);
            return;
        }

        byVersion[version] = record;
    }

    /// <summary>Reads by committed transactions made before their own first write of the key.</summary>
    private static IEnumerable<(Txn Txn, MicroOp Op)> ExternalReads(List<Txn> txns, string key)
    {
        foreach (var txn in txns.Where(t => t.Committed))
        {
            foreach (var op in txn.Ops.Where(o => o.Key == key))
            {
                if (op.F == MicroOp.WriteName)
                {
                    break;
                }

                if (op.F == MicroOp.ReadName)
                {
                    yield return (txn, op);
                    break; // later reads must agree with this one; InternalAnalyzer checks that
                }
            }
        }
    }

    private static string Show(long? version) => version?.ToString(CultureInfo.InvariantCulture) ?? "?";
}
