namespace Concord.Lab.Checkers.Linearizability;

internal enum SearchOutcome
{
    Linearizable,
    NotLinearizable,
    Cancelled,
}

/// <summary>
/// The Wing–Gong–Lowe search with Lowe's state cache, as in Porcupine: walk the call/return events in history
/// order; at a call, try to linearize that operation now (apply it to the model, unlink its events); at a return
/// whose operation is not yet linearized, backtrack. A configuration (set of linearized operations, model state)
/// already explored is never explored again. Operations of unknown outcome have no return event, so they may be
/// linearized at any point after their call; since they never constrain later results, the search succeeds as soon
/// as every operation with a known outcome is linearized (the rest are placed at the end, or never took effect).
/// </summary>
internal static class WglSearch
{
    private const int CancellationCheckInterval = 1024;

    public static SearchOutcome Run<TModel, TState>(TModel model, IReadOnlyList<LinOp> ops, CancellationToken cancellationToken)
        where TModel : struct, ISequentialModel<TState>
        where TState : IEquatable<TState>
    {
        var n = ops.Count;
        var remaining = 0;

        // Node 0 is the head sentinel; node 1+i is the call of ops[i]; node 1+n+i its return.
        var nodeCount = 1 + (2 * n);
        var next = new int[nodeCount];
        var prev = new int[nodeCount];
        var events = new (int Position, int Node)[n + ops.Count(o => o.Known)];
        var e = 0;
        for (var i = 0; i < n; i++)
        {
            events[e++] = (ops[i].Call, 1 + i);
            if (ops[i].Known)
            {
                events[e++] = (ops[i].Return, 1 + n + i);
                remaining++;
            }
        }

        Array.Sort(events, static (x, y) => x.Position.CompareTo(y.Position));
        var last = 0;
        foreach (var (_, node) in events)
        {
            next[last] = node;
            prev[node] = last;
            last = node;
        }

        next[last] = -1;

        var bits = new ulong[(n + 63) / 64];
        ulong bitsHash = 0;
        var zobrist = new ulong[n];
        for (var i = 0; i < n; i++)
        {
            zobrist[i] = SplitMix64((ulong)i + 1);
        }

        var cache = new HashSet<CacheKey<TState>>(CacheKeyComparer<TState>.Instance);
        var calls = new Stack<(int Node, TState State)>();
        var state = model.Initial;
        var entry = next[0];
        var steps = 0;

        while (remaining > 0)
        {
            if (++steps % CancellationCheckInterval == 0 && cancellationToken.IsCancellationRequested)
            {
                return SearchOutcome.Cancelled;
            }

            if (entry != -1 && entry <= n)
            {
                // A call: try to linearize the operation here.
                var id = entry - 1;
                var op = ops[id];
                if (model.Step(state, op, out var nextState))
                {
                    bits[id >> 6] |= 1UL << id;
                    bitsHash ^= zobrist[id];
                    var probe = new CacheKey<TState>(bits, bitsHash, nextState);
                    if (!cache.Contains(probe))
                    {
                        cache.Add(new CacheKey<TState>((ulong[])bits.Clone(), bitsHash, nextState));
                        calls.Push((entry, state));
                        state = nextState;
                        if (op.Known)
                        {
                            remaining--;
                        }

                        Lift(entry, op.Known ? entry + n : -1, next, prev);
                        entry = next[0];
                        continue;
                    }

                    bits[id >> 6] &= ~(1UL << id);
                    bitsHash ^= zobrist[id];
                }

                entry = next[entry];
            }
            else
            {
                // A return of an operation not linearized yet: undo the most recent choice.
                if (calls.Count == 0)
                {
                    return SearchOutcome.NotLinearizable;
                }

                var (node, previousState) = calls.Pop();
                var id = node - 1;
                var op = ops[id];
                state = previousState;
                bits[id >> 6] &= ~(1UL << id);
                bitsHash ^= zobrist[id];
                if (op.Known)
                {
                    remaining++;
                }

                Unlift(node, op.Known ? node + n : -1, next, prev);
                entry = next[node];
            }
        }

        return SearchOutcome.Linearizable;
    }

    public static SearchOutcome Run(LinearizabilityModel model, int setElementCount, IReadOnlyList<LinOp> ops, CancellationToken cancellationToken) => model switch
    {
        LinearizabilityModel.Register or LinearizabilityModel.CasRegister => Run<RegisterModel, long>(default, ops, cancellationToken),
        LinearizabilityModel.Counter => Run<CounterModel, long>(default, ops, cancellationToken),
        LinearizabilityModel.Set => Run<SetModel, SetState>(new SetModel(setElementCount), ops, cancellationToken),
        LinearizabilityModel.Queue => Run<QueueModel, QueueState>(default, ops, cancellationToken),
        _ => throw new ArgumentOutOfRangeException(nameof(model), model, "Unknown model."),
    };

    private static void Lift(int call, int ret, int[] next, int[] prev)
    {
        next[prev[call]] = next[call];
        if (next[call] != -1)
        {
            prev[next[call]] = prev[call];
        }

        if (ret != -1)
        {
            next[prev[ret]] = next[ret];
            if (next[ret] != -1)
            {
                prev[next[ret]] = prev[ret];
            }
        }
    }

    private static void Unlift(int call, int ret, int[] next, int[] prev)
    {
        // Exact reverse of Lift (dancing links): relink the return, then the call.
        if (ret != -1)
        {
            next[prev[ret]] = ret;
            if (next[ret] != -1)
            {
                prev[next[ret]] = ret;
            }
        }

        next[prev[call]] = call;
        if (next[call] != -1)
        {
            prev[next[call]] = call;
        }
    }

    private static ulong SplitMix64(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }

    private readonly record struct CacheKey<TState>(ulong[] Bits, ulong BitsHash, TState State);

    private sealed class CacheKeyComparer<TState> : IEqualityComparer<CacheKey<TState>>
        where TState : IEquatable<TState>
    {
        public static readonly CacheKeyComparer<TState> Instance = new();

        public bool Equals(CacheKey<TState> x, CacheKey<TState> y) =>
            x.BitsHash == y.BitsHash && x.State.Equals(y.State) && x.Bits.AsSpan().SequenceEqual(y.Bits);

        public int GetHashCode(CacheKey<TState> key) =>
            (int)(key.BitsHash ^ (key.BitsHash >> 32)) ^ (key.State.GetHashCode() * -1640531535);
    }
}
