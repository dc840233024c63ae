namespace Concord.Lab.Checkers.Linearizability;

/// <summary>
/// Shrinks a non-linearizable key to a small window that is still not linearizable on its own, using only
/// steps that keep the conclusion sound (if the window cannot be linearized, neither can the whole history):
/// <list type="number">
/// <item>cut the history at the earliest completion after which it can no longer be linearized (operations still
/// running at the cut keep their effect but lose their result);</item>
/// <item>remove operations that only observe (reads, dequeues that found the queue empty), and operations that
/// only write a value no remaining operation observes (register writes and CAS, set adds, enqueues);
/// counter increments and dequeues that returned an element are always kept.</item>
/// </list>
/// Removals are tried oldest first, in halving chunks (delta debugging), within a budget of searches.
/// </summary>
internal static class Shrinker
{
    public sealed record Result(IReadOnlyList<LinOp> Window, LinOp? Stuck, bool Complete);

    public static Result Shrink(Partition partition, LinearizabilityModel model, int maxSearches, CancellationToken cancellationToken)
    {
        var searches = 0;
        bool? IsInvalid(IReadOnlyList<LinOp> ops)
        {
            if (searches >= maxSearches || cancellationToken.IsCancellationRequested)
            {
                return null;
            }

            searches++;
            return WglSearch.Run(model, partition.SetElementCount, ops, cancellationToken) switch
            {
                SearchOutcome.NotLinearizable => true,
                SearchOutcome.Linearizable => false,
                _ => null,
            };
        }

        // 1. Earliest failing prefix, by binary search over completion positions (failure is monotone in the prefix).
        var returns = partition.Ops.Where(o => o.Known).Select(o => o.Return).Order().ToArray();
        int lo = 0, hi = returns.Length - 1;
        var complete = true;
        while (lo < hi)
        {
            var mid = lo + ((hi - lo) / 2);
            var verdict = IsInvalid(Prefix(partition.Ops, returns[mid]));
            if (verdict is null)
            {
                complete = false;
                break;
            }

            if (verdict.Value)
            {
                hi = mid;
            }
            else
            {
                lo = mid + 1;
            }
        }

        if (returns.Length == 0)
        {
            return new Result(partition.Ops, null, false);
        }

        var cut = returns[hi];
        var current = Prefix(partition.Ops, cut);
        var stuck = current.First(o => o.Known && o.Return == cut);
        if (!complete)
        {
            return new Result(current, stuck, false);
        }

        // 2. Sound removals, oldest first, in halving chunks, until nothing more can go.
        var changed = true;
        while (changed)
        {
            changed = false;
            var live = current.ToHashSet();
            var candidates = current.Where(o => !ReferenceEquals(o, stuck) && MayEverBeRemoved(o, model))
                .OrderBy(o => o.Known ? o.Return : o.Call).ToList();
            for (var chunk = Math.Max(1, candidates.Count / 2); chunk >= 1; chunk /= 2)
            {
                for (var start = 0; start < candidates.Count; start += chunk)
                {
                    var set = candidates.Skip(start).Take(chunk).Where(live.Contains).ToHashSet();
                    if (set.Count == 0 || !CanRemoveTogether(current, set, model))
                    {
                        continue;
                    }

                    var trial = current.Where(o => !set.Contains(o)).ToList();
                    var verdict = IsInvalid(trial);
                    if (verdict is null)
                    {
                        return new Result(current, stuck, false);
                    }

                    if (verdict.Value)
                    {
                        current = trial;
                        live.ExceptWith(set);
                        changed = true;
                    }
                }

                if (chunk == 1)
                {
                    break;
                }
            }
        }

        return new Result(current, stuck, true);
    }

    /// <summary>The history up to and including position <paramref name="cut"/>; operations still running there lose their result.</summary>
    internal static List<LinOp> Prefix(IReadOnlyList<LinOp> ops, int cut)
    {
        var result = new List<LinOp>();
        foreach (var op in ops)
        {
            if (op.Call > cut)
            {
                continue;
            }

            if (!op.Known || op.Return <= cut)
            {
                result.Add(op);
            }
            else if (!op.IsPureObserver)
            {
                result.Add(op.WithUnknownOutcome());
            }
        }

        return result;
    }

    private static bool MayEverBeRemoved(LinOp op, LinearizabilityModel model) => op.IsPureObserver || op.Kind switch
    {
        LinKind.Write or LinKind.Cas or LinKind.Add or LinKind.Enqueue => true,
        _ => false,
    };

    /// <summary>
    /// True when the operations in <paramref name="set"/> can be removed one after another, each step sound:
    /// observers go first, then writers whose value no remaining operation observes.
    /// </summary>
    private static bool CanRemoveTogether(List<LinOp> current, HashSet<LinOp> set, LinearizabilityModel model)
    {
        var observations = new Dictionary<long, int>();
        var unknownDequeues = 0;
        foreach (var op in current)
        {
            foreach (var value in Observes(op, model))
            {
                observations[value] = observations.GetValueOrDefault(value) + 1;
            }

            if (op.Kind == LinKind.Dequeue && !op.Known)
            {
                unknownDequeues++;
            }
        }

        var pending = set.ToList();
        while (pending.Count > 0)
        {
            var progress = false;
            for (var i = pending.Count - 1; i >= 0; i--)
            {
                var op = pending[i];
                if (!RemovableNow(op, model, observations, unknownDequeues))
                {
                    continue;
                }

                foreach (var value in Observes(op, model))
                {
                    observations[value]--;
                }

                pending.RemoveAt(i);
                progress = true;
            }

            if (!progress)
            {
                return false;
            }
        }

        return true;
    }

    private static bool RemovableNow(LinOp op, LinearizabilityModel model, Dictionary<long, int> observations, int unknownDequeues)
    {
        if (op.IsPureObserver)
        {
            return true;
        }

        long written;
        switch (op.Kind)
        {
            case LinKind.Write: written = op.A; break;
            case LinKind.Cas: written = op.B; break;
            case LinKind.Add: written = op.A; break;
            case LinKind.Enqueue when unknownDequeues == 0: written = op.A; break;
            default: return false;
        }

        // An operation that observes the value it writes (cas 3→3) does not keep itself alive.
        var own = Observes(op, model).Count(v => v == written);
        return observations.GetValueOrDefault(written) - own <= 0;
    }

    private static IEnumerable<long> Observes(LinOp op, LinearizabilityModel model)
    {
        switch (op.Kind)
        {
            case LinKind.Read when model == LinearizabilityModel.Set:
                foreach (var element in op.Observed!.Elements())
                {
                    yield return element;
                }

                break;
            case LinKind.Read when model != LinearizabilityModel.Counter:
                yield return op.Output;
                break;
            case LinKind.Cas:
                yield return op.A;
                break;
            case LinKind.Dequeue when op.Known && op.Output != LinOp.EmptyQueue:
                yield return op.Output;
                break;
        }
    }
}
