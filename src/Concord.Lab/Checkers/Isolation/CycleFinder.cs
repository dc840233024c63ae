using System.Text;

namespace Concord.Lab.Checkers.Isolation;

/// <summary>
/// Finds dependency cycles: strongly connected components (Tarjan) of the whole graph, then, inside each
/// component, a concrete short cycle (breadth-first search) of each shape, most specific first: G0 (ww only),
/// G1c (ww and wr, at least one wr), G-single (exactly one rw); and only if none of those exists, a G2-item cycle.
/// Cycles that need no process or real-time edge are preferred; those that do get a <c>-process</c> or
/// <c>-realtime</c> suffix.
/// </summary>
internal static class CycleFinder
{
    private const EdgeKinds Data = EdgeKinds.WW | EdgeKinds.WR | EdgeKinds.RW;

    private readonly record struct Step(int From, int To, EdgeKinds Kind);

    /// <summary>Adds cycle anomalies to the context; returns false if a search budget ran out or the token was cancelled.</summary>
    public static bool Find(IsolationContext context, EdgeKinds extras, int budgetPerComponent, CancellationToken cancellationToken)
    {
        var graph = context.Graph;
        var nodes = context.Txns.Where(t => !t.Failed).Select(t => t.Id).ToList();
        var components = graph.Components(nodes, _ => true, Data | extras);
        var levels = new List<EdgeKinds> { EdgeKinds.None };
        if ((extras & EdgeKinds.Process) != 0)
        {
            levels.Add(EdgeKinds.Process);
        }

        if ((extras & EdgeKinds.RealTime) != 0)
        {
            levels.Add(extras);
        }

        var complete = true;
        foreach (var component in components.OrderBy(c => c.Min()))
        {
            if (cancellationToken.IsCancellationRequested)
            {
                return false;
            }

            var members = component.ToHashSet();
            var budget = budgetPerComponent;
            var found = false;
            foreach (var (type, mask, required) in new[]
            {
                (AnomalyType.G0, EdgeKinds.WW, EdgeKinds.WW),
                (AnomalyType.G1c, EdgeKinds.WW | EdgeKinds.WR, EdgeKinds.WR),
            })
            {
                foreach (var extra in levels)
                {
                    if (CycleThrough(graph, members, mask | extra, required, ref budget, cancellationToken) is { } cycle)
                    {
                        Report(context, type, cycle);
                        found = true;
                        break;
                    }
                }
            }

            foreach (var extra in levels)
            {
                if (SingleAntiDependency(graph, members, EdgeKinds.WW | EdgeKinds.WR | extra, ref budget, cancellationToken) is { } cycle)
                {
                    Report(context, AnomalyType.GSingle, cycle);
                    found = true;
                    break;
                }
            }

            if (!found && CycleThrough(graph, members, Data | extras, EdgeKinds.RW, ref budget, cancellationToken) is { } any)
            {
                var antiDependencies = any.Count(s => s.Kind == EdgeKinds.RW);
                Report(context, antiDependencies >= 2 ? AnomalyType.G2Item : AnomalyType.GSingle, any);
            }

            if (budget <= 0 || cancellationToken.IsCancellationRequested)
            {
                complete = false;
            }
        }

        return complete;
    }

    /// <summary>A cycle over <paramref name="mask"/> edges that uses at least one edge of kind <paramref name="required"/>.</summary>
    private static List<Step>? CycleThrough(DependencyGraph graph, HashSet<int> members, EdgeKinds mask, EdgeKinds required, ref int budget, CancellationToken cancellationToken)
    {
        foreach (var sub in graph.Components(members, members.Contains, mask))
        {
            var inSub = sub.ToHashSet();
            foreach (var a in sub.Order())
            {
                foreach (var b in graph.Out(a))
                {
                    if (!inSub.Contains(b) || (graph.KindsOf(a, b) & mask & required) == 0)
                    {
                        continue;
                    }

                    // a and b share a component, so b reaches a: the path closes a cycle through this edge.
                    var parent = graph.Reach(b, mask, inSub.Contains, ref budget, cancellationToken);
                    if (parent.ContainsKey(a))
                    {
                        var cycle = new List<Step> { new(a, b, Pick(graph.KindsOf(a, b) & mask & required)) };
                        cycle.AddRange(PathSteps(graph, parent, b, a, mask));
                        return cycle;
                    }

                    return null; // only when the budget ran out
                }
            }
        }

        return null;
    }

    /// <summary>A cycle made of one rw edge a→b and a path b⇝a without rw edges.</summary>
    private static List<Step>? SingleAntiDependency(DependencyGraph graph, HashSet<int> members, EdgeKinds pathMask, ref int budget, CancellationToken cancellationToken)
    {
        var sourcesByTarget = new SortedDictionary<int, List<int>>();
        foreach (var a in members)
        {
            foreach (var b in graph.Out(a))
            {
                if (members.Contains(b) && (graph.KindsOf(a, b) & EdgeKinds.RW) != 0)
                {
                    if (!sourcesByTarget.TryGetValue(b, out var list))
                    {
                        sourcesByTarget[b] = list = [];
                    }

                    list.Add(a);
                }
            }
        }

        foreach (var (b, sources) in sourcesByTarget)
        {
            if (budget <= 0 || cancellationToken.IsCancellationRequested)
            {
                return null;
            }

            var parent = graph.Reach(b, pathMask, members.Contains, ref budget, cancellationToken);
            foreach (var a in sources.Order())
            {
                if (parent.ContainsKey(a))
                {
                    var cycle = new List<Step> { new(a, b, EdgeKinds.RW) };
                    cycle.AddRange(PathSteps(graph, parent, b, a, pathMask));
                    return cycle;
                }
            }
        }

        return null;
    }

    private static List<Step> PathSteps(DependencyGraph graph, Dictionary<int, int> parent, int from, int to, EdgeKinds mask)
    {
        var nodes = new List<int>();
        for (var node = to; node != -1; node = parent[node])
        {
            nodes.Add(node);
            if (node == from)
            {
                break;
            }
        }

        nodes.Reverse();
        var steps = new List<Step>(nodes.Count);
        for (var i = 0; i + 1 < nodes.Count; i++)
        {
            steps.Add(new Step(nodes[i], nodes[i + 1], Pick(graph.KindsOf(nodes[i], nodes[i + 1]) & mask)));
        }

        return steps;
    }

    /// <summary>The most informative kind of an edge, anti-dependencies last (so cycles count as few rw edges as possible).</summary>
    private static EdgeKinds Pick(EdgeKinds kinds) =>
        (kinds & EdgeKinds.WW) != 0 ? EdgeKinds.WW
        : (kinds & EdgeKinds.WR) != 0 ? EdgeKinds.WR
        : (kinds & EdgeKinds.Process) != 0 ? EdgeKinds.Process
        : (kinds & EdgeKinds.RealTime) != 0 ? EdgeKinds.RealTime
        : EdgeKinds.RW;

    private static void Report(IsolationContext context, AnomalyType type, List<Step> cycle)
    {
        var suffix = cycle.Any(s => s.Kind == EdgeKinds.RealTime) ? "-realtime"
            : cycle.Any(s => s.Kind == EdgeKinds.Process) ? "-process"
            : string.Empty;
        var name = Anomaly.NameOf(type) + suffix;
        var txns = context.Txns;
        var edges = cycle.Select(s => new DependencyEdge(txns[s.From].Index, txns[s.To].Index, ToPublic(s.Kind), EdgeText(context, s))).ToList();
        var text = new StringBuilder();
        var path = string.Join(" → ", cycle.Select(s => txns[s.From].Label).Append(txns[cycle[0].From].Label));
        text.Append($"{Gloss(type)}{(suffix.Length == 0 ? string.Empty : suffix == "-realtime" ? " (using real-time order)" : " (using process order)")}: {path}.");
        for (var i = 0; i < edges.Count; i++)
        {
            text.Append($"\n  {i + 1}. {edges[i].Explanation}{(i == edges.Count - 1 ? "." : ";")}");
        }

        text.Append($"\n  So {txns[cycle[0].From].Label} would have to come before itself: no serial order of these transactions exists.");
        var involved = cycle.Select(s => txns[s.From].Index).Distinct().Order().ToList();
        context.Anomalies.Add(new Anomaly(type, name, involved, text.ToString(), edges));
    }

    private static string EdgeText(IsolationContext context, Step step)
    {
        var a = context.Txns[step.From];
        var b = context.Txns[step.To];
        if (step.Kind == EdgeKinds.Process)
        {
            return $"{a.Label} and then {b.Label} ran on process {a.Pair.Process}, in that order";
        }

        if (step.Kind == EdgeKinds.RealTime)
        {
            return $"{a.Label} committed (t={Describe.Time(a.Pair.Completion!.Time)}) before {b.Label} began (t={Describe.Time(b.Pair.Invoke.Time)})";
        }

        var r = context.Graph.ReasonOf(step.From, step.To, step.Kind);
        if (r.IsList)
        {
            return step.Kind switch
            {
                EdgeKinds.WW => $"{a.Label} appended {r.From} to {r.Key}, and {b.Label} appended {r.To} right after it (ww)",
                EdgeKinds.WR => $"{b.Label} read {r.Key} ending in {r.From}, which {a.Label} appended (wr)",
                _ => $"{a.Label} read {r.Key} {(r.From.Length == 0 ? "while it was empty" : $"ending in {r.From}")}, missing {r.To}, which {b.Label} appended next (rw)",
            };
        }

        var seen = r.From == "0" ? $"{r.Key} while it was absent (version 0)" : $"version {r.From} of {r.Key}";
        return step.Kind switch
        {
            EdgeKinds.WW => $"{a.Label} wrote version {r.From} of {r.Key}, which {b.Label} replaced with version {r.To} (ww)",
            EdgeKinds.WR => $"{b.Label} read version {r.From} of {r.Key}, written by {a.Label} (wr)",
            _ => $"{a.Label} read {seen}, which {b.Label} then replaced with version {r.To} (rw)",
        };
    }

    private static DependencyKind ToPublic(EdgeKinds kind) => kind switch
    {
        EdgeKinds.WW => DependencyKind.WW,
        EdgeKinds.WR => DependencyKind.WR,
        EdgeKinds.RW => DependencyKind.RW,
        EdgeKinds.Process => DependencyKind.Process,
        _ => DependencyKind.RealTime,
    };

    private static string Gloss(AnomalyType type) => type switch
    {
        AnomalyType.G0 => "Write cycle, the transactions overwrote each other in a circle",
        AnomalyType.G1c => "Circular information flow, each transaction saw or overwrote the next one's writes",
        AnomalyType.GSingle => "Read skew, a cycle with exactly one anti-dependency",
        _ => "Write skew, a cycle with two or more anti-dependencies",
    };
}
