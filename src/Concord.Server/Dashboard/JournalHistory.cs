using System.Text.Json;
using Concord.Lab.History;

namespace Concord.Server.Dashboard;

/// <summary>
/// Turns a journal window into a lab history of register operations — one register per key, whose value is the revision
/// of the write that produced the current version (null when absent) — so the linearizability checker can judge it and
/// <c>concord check</c> can read it (<c>GET /dashboard/api/ns/{ns}/history.jsonl</c>).
/// </summary>
/// <remarks>
/// <para>The window is cut so that nothing included can depend on something left out:</para>
/// <list type="bullet">
/// <item>Operations still in flight have no known result. Let T be the earliest start among them: operations that
/// completed before T are included; those that started before T but completed after it are included as invocations
/// only (a write of unknown outcome); the rest are left for a later check.</item>
/// <item>Keys whose history began before the window (older entries evicted from the ring, or data older than the server)
/// get a synthetic initial write of the value they had when the window began; reads that started before the newest
/// evicted entry completed are dropped, since they may have seen an older value.</item>
/// <item>Idempotent replays (no new effect), errors with unknown effect and keys written with a TTL (expiry changes them
/// without an operation) are left out; the notes say so.</item>
/// </list>
/// <para>Thread-safe: pure function of the snapshot.</para>
/// </remarks>
internal static class JournalHistory
{
    private const long NsPerMs = 1_000_000;

    private sealed class Op
    {
        public required string Key;
        public required string F;
        public required string Agent;
        public required double Start;
        public double? End;
        public OperationType Outcome = OperationType.Ok;
        public long? Value;
        public long? Version;
        public long? Revision;
        public bool Synthetic;
    }

    public static (OperationHistory History, IReadOnlyList<string> Notes) Build(JournalSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var notes = new List<string>();
        var cut = snapshot.InFlightStarts.Count > 0 ? snapshot.InFlightStarts.Min() : double.PositiveInfinity;
        var ops = new List<Op>();
        var excluded = new HashSet<string>(StringComparer.Ordinal);
        var deferred = 0;
        var replays = 0;

        foreach (var e in snapshot.Entries)
        {
            if (e.Start >= cut)
            {
                deferred++;
                continue;
            }
            var complete = e.End < cut;
            if (e.Replayed)
            {
                replays++;
                continue;
            }
            switch (e.Op)
            {
                case "read" when e.Key is not null && e.Outcome is "ok" or "absent":
                    if (!complete || e.Start < snapshot.EvictedEnd) continue;
                    ops.Add(new Op { Key = e.Key, F = Functions.Read, Agent = e.Agent, Start = e.Start, End = e.End, Value = e.Outcome == "ok" ? e.Revision : null, Version = e.Version, Revision = e.Revision });
                    break;
                case "put" or "patch" or "delete" when e.Key is not null:
                    if (e.Expires) excluded.Add(e.Key);
                    if (e.Outcome == "error")
                    {
                        excluded.Add(e.Key);
                        continue;
                    }
                    ops.Add(new Op
                    {
                        Key = e.Key, F = Functions.Write, Agent = e.Agent, Start = e.Start, End = complete ? e.End : null,
                        Outcome = e.Outcome == "ok" ? OperationType.Ok : OperationType.Fail,
                        Value = e.Outcome == "ok" && e.Op != "delete" ? e.Revision : null,
                        Version = e.Outcome == "ok" ? e.Version : null,
                        Revision = e.Outcome == "ok" ? e.Revision : null,
                    });
                    break;
                case "txn" when e.Parts is { } parts && e.Outcome is "ok" or "else":
                    foreach (var part in parts)
                    {
                        if (part.Op == "read")
                        {
                            if (!complete || e.Start < snapshot.EvictedEnd) continue;
                            ops.Add(new Op { Key = part.Key, F = Functions.Read, Agent = e.Agent, Start = e.Start, End = e.End, Value = part.Version == 0 ? null : part.Revision, Version = part.Version, Revision = part.Revision });
                        }
                        else
                        {
                            ops.Add(new Op
                            {
                                Key = part.Key, F = Functions.Write, Agent = e.Agent, Start = e.Start, End = complete ? e.End : null,
                                Value = part.Op == "delete" ? null : part.Revision, Version = part.Version, Revision = part.Revision,
                            });
                        }
                    }
                    break;
                case "txn" when e.Outcome == "error":
                    notes.Add($"A transaction by {e.Agent} failed with an error at {e.End:0.###} ms; its effect, if any, is not in the history.");
                    break;
            }
        }

        if (excluded.Count > 0)
        {
            ops.RemoveAll(o => excluded.Contains(o.Key));
            notes.Add($"{Plural(excluded.Count, "key was", "keys were")} left out (written with a TTL, or a write failed with an unknown effect).");
        }
        if (replays > 0) notes.Add($"{Plural(replays, "idempotent replay was", "idempotent replays were")} left out (no new effect).");
        if (deferred > 0) notes.Add($"{Plural(deferred, "operation", "operations")} newer than the oldest operation still in flight will be checked next time.");

        AddInitialValues(ops, snapshot, notes);
        return (ToHistory(snapshot.Ns, ops), notes);
    }

    /// <summary>Gives keys that existed before the window a synthetic initial write of the value they had when it began.</summary>
    private static void AddInitialValues(List<Op> ops, JournalSnapshot snapshot, List<string> notes)
    {
        var synthetic = new List<Op>();
        foreach (var group in ops.GroupBy(o => o.Key, StringComparer.Ordinal))
        {
            long? initial = null;
            var known = false;
            if (snapshot.Baselines.TryGetValue(group.Key, out var baseline))
            {
                initial = baseline.Revision;
                known = true;
            }
            else
            {
                // Values read that no write in the window produced can only be the value from before the window.
                var written = group.Where(o => o.F == Functions.Write && o.Value is not null).Select(o => o.Value!.Value).ToHashSet();
                var orphans = group.Where(o => o.F == Functions.Read && o.Value is { } v && !written.Contains(v)).Select(o => o.Value!.Value).Distinct().ToList();
                if (orphans.Count == 1 && (written.Count == 0 || orphans[0] < written.Min()))
                {
                    initial = orphans[0];
                    known = true;
                }
            }
            if (!known || initial is null) continue;
            var firstStart = group.Min(o => o.Start);
            var end = snapshot.Baselines.ContainsKey(group.Key) ? Math.Max(snapshot.EvictedEnd, 0) : firstStart;
            synthetic.Add(new Op
            {
                Key = group.Key, F = Functions.Write, Agent = "(before the window)", Start = Math.Min(0, firstStart) - 1, End = end,
                Value = initial, Synthetic = true,
            });
        }
        if (synthetic.Count > 0)
        {
            ops.AddRange(synthetic);
            notes.Add($"{Plural(synthetic.Count, "key starts", "keys start")} from the value it had before the journal's window.");
        }
    }

    private static OperationHistory ToHistory(string ns, List<Op> ops)
    {
        // Processes: each agent gets as many as it had operations in flight at once (Jepsen: one operation per process).
        var processes = new Dictionary<string, List<double>>(StringComparer.Ordinal);
        var processIds = new Dictionary<(string Agent, int Slot), int>();
        var events = new List<(double Time, int Order, Op Op, int Process, bool Completion)>();
        foreach (var op in ops.OrderBy(o => o.Start))
        {
            int process;
            if (op.Synthetic)
            {
                process = processIds.Count + 1;
                processIds[(op.Agent + "#" + process, 0)] = process;
            }
            else
            {
                if (!processes.TryGetValue(op.Agent, out var busyUntil)) processes[op.Agent] = busyUntil = [];
                var slot = busyUntil.FindIndex(t => t < op.Start);
                if (slot < 0)
                {
                    slot = busyUntil.Count;
                    busyUntil.Add(0);
                }
                busyUntil[slot] = op.End ?? double.PositiveInfinity;
                if (!processIds.TryGetValue((op.Agent, slot), out process)) processIds[(op.Agent, slot)] = process = processIds.Count + 1;
            }
            // Equal times: invocations first, so touching operations count as concurrent (never a false real-time order).
            events.Add((op.Start, 0, op, process, false));
            if (op.End is { } end) events.Add((end, 1, op, process, true));
        }
        events.Sort((a, b) => a.Time != b.Time ? a.Time.CompareTo(b.Time) : a.Order.CompareTo(b.Order));
        var origin = events.Count > 0 ? events[0].Time : 0;
        var operations = new List<Operation>(events.Count);
        foreach (var (time, _, op, process, completion) in events)
        {
            var value = op.F == Functions.Read && !completion ? HistoryValue.Null : Value(op.Value);
            operations.Add(new Operation
            {
                Index = operations.Count,
                Time = (long)((time - origin) * NsPerMs),
                Process = process,
                Type = completion ? op.Outcome : OperationType.Invoke,
                F = op.F,
                Agent = op.Agent,
                Key = op.Key,
                Value = value,
                Version = completion && op.Outcome == OperationType.Ok ? op.Version : null,
                Revision = completion && op.Outcome == OperationType.Ok ? op.Revision : null,
            });
        }
        var meta = new HistoryMeta { Workload = $"concord server journal, namespace {ns}", Model = "register" };
        return new OperationHistory(meta, operations);
    }

    private static JsonElement Value(long? revision) => revision is { } r ? HistoryValue.Of(r) : HistoryValue.Null;

    private static string Plural(int n, string one, string many) => $"{n} {(n == 1 ? one : many)}";
}
