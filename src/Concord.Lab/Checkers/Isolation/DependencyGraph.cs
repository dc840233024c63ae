namespace Concord.Lab.Checkers.Isolation;

[Flags]
internal enum EdgeKinds : byte
{
    None = 0,
    WW = 1,
    WR = 2,
    RW = 4,
    Process = 8,
    RealTime = 16,
}

/// <summary>Why an edge exists: the key and the two values (elements or versions) it connects.</summary>
internal readonly record struct EdgeReason(string Key, string From, string To, bool IsList);

/// <summary>A directed graph over transactions (dense ids), with the kinds of dependency on each edge.</summary>
internal sealed class DependencyGraph
{
    private readonly List<int>[] _out;
    private readonly Dictionary<long, EdgeData> _edges = new(MixingComparer.Instance);

    public DependencyGraph(int nodeCount)
    {
        _out = new List<int>[nodeCount];
        for (var i = 0; i < nodeCount; i++)
        {
            _out[i] = [];
        }
    }

    public int NodeCount => _out.Length;

    public int EdgeCount => _edges.Count;

    public void Add(int from, int to, EdgeKinds kind, EdgeReason reason = default)
    {
        if (from == to)
        {
            return;
        }

        var id = Id(from, to);
        if (!_edges.TryGetValue(id, out var data))
        {
            data = new EdgeData();
            _edges[id] = data;
            _out[from].Add(to);
        }

        if ((data.Kinds & kind) == 0)
        {
            data.Kinds |= kind;
            data.Reasons[Slot(kind)] = reason;
        }
    }

    public List<int> Out(int node) => _out[node];

    public EdgeKinds KindsOf(int from, int to) => _edges.TryGetValue(Id(from, to), out var data) ? data.Kinds : EdgeKinds.None;

    public EdgeReason ReasonOf(int from, int to, EdgeKinds kind) => _edges[Id(from, to)].Reasons[Slot(kind)];

    /// <summary>Non-trivial strongly connected components (Tarjan, iterative) of the subgraph induced by <paramref name="member"/> over edges of <paramref name="mask"/>.</summary>
    public List<List<int>> Components(IEnumerable<int> nodes, Func<int, bool> member, EdgeKinds mask)
    {
        var index = new Dictionary<int, int>();
        var low = new Dictionary<int, int>();
        var onStack = new HashSet<int>();
        var stack = new Stack<int>();
        var result = new List<List<int>>();
        var counter = 0;
        var work = new Stack<(int Node, int Next)>();
        foreach (var root in nodes)
        {
            if (index.ContainsKey(root))
            {
                continue;
            }

            work.Push((root, 0));
            index[root] = low[root] = counter++;
            stack.Push(root);
            onStack.Add(root);
            while (work.Count > 0)
            {
                var (node, next) = work.Pop();
                var successors = _out[node];
                var descended = false;
                while (next < successors.Count)
                {
                    var successor = successors[next++];
                    if (!member(successor) || (KindsOf(node, successor) & mask) == 0)
                    {
                        continue;
                    }

                    if (!index.ContainsKey(successor))
                    {
                        work.Push((node, next));
                        work.Push((successor, 0));
                        index[successor] = low[successor] = counter++;
                        stack.Push(successor);
                        onStack.Add(successor);
                        descended = true;
                        break;
                    }

                    if (onStack.Contains(successor))
                    {
                        low[node] = Math.Min(low[node], index[successor]);
                    }
                }

                if (descended)
                {
                    continue;
                }

                if (low[node] == index[node])
                {
                    var component = new List<int>();
                    int popped;
                    do
                    {
                        popped = stack.Pop();
                        onStack.Remove(popped);
                        component.Add(popped);
                    }
                    while (popped != node);

                    if (component.Count > 1)
                    {
                        result.Add(component);
                    }
                }

                if (work.Count > 0)
                {
                    var parent = work.Peek().Node;
                    low[parent] = Math.Min(low[parent], low[node]);
                }
            }
        }

        return result;
    }

    /// <summary>
    /// Breadth-first search from <paramref name="from"/> over edges of <paramref name="mask"/> inside <paramref name="member"/>;
    /// returns the parent map of reached nodes (the start maps to -1). Decrements <paramref name="budget"/> per visit and stops at 0.
    /// </summary>
    public Dictionary<int, int> Reach(int from, EdgeKinds mask, Func<int, bool> member, ref int budget, CancellationToken cancellationToken)
    {
        var parent = new Dictionary<int, int> { [from] = -1 };
        var queue = new Queue<int>();
        queue.Enqueue(from);
        while (queue.Count > 0 && budget > 0 && !cancellationToken.IsCancellationRequested)
        {
            var node = queue.Dequeue();
            budget--;
            foreach (var successor in _out[node])
            {
                if (!parent.ContainsKey(successor) && member(successor) && (KindsOf(node, successor) & mask) != 0)
                {
                    parent[successor] = node;
                    queue.Enqueue(successor);
                }
            }
        }

        return parent;
    }

    private static long Id(int from, int to) => ((long)from << 32) | (uint)to;

    private static int Slot(EdgeKinds kind) => kind switch
    {
        EdgeKinds.WW => 0,
        EdgeKinds.WR => 1,
        EdgeKinds.RW => 2,
        EdgeKinds.Process => 3,
        _ => 4,
    };

    /// <summary>Edge ids pack (from, to); the default long hash (low ^ high) would collide for every pair with the same XOR.</summary>
    private sealed class MixingComparer : IEqualityComparer<long>
    {
        public static readonly MixingComparer Instance = new();

        public bool Equals(long x, long y) => x == y;

        public int GetHashCode(long value)
        {
            var x = (ulong)value * 0x9E3779B97F4A7C15UL;
            return (int)(x >> 32) ^ (int)x;
        }
    }

    private sealed class EdgeData
    {
        public EdgeKinds Kinds;
        public readonly EdgeReason[] Reasons = new EdgeReason[5];
    }
}
