using Concord.Crdt;
using CsCheck;

namespace Concord.Tests.Crdt;

/// <summary>The semilattice laws, for every CRDT type, over states reachable by random histories.</summary>
public sealed class CrdtLawTests
{
    private const int Iterations = 300;

    private static void Laws<T>(Func<T, string, int, int, T> mutate) where T : CrdtState, ICrdt<T>
    {
        Gen.Select(CrdtHistories.Steps, Gen.Int[0, 1000], Gen.Int[0, 1000], Gen.Int[0, 1000]).Sample((steps, i, j, k) =>
        {
            var run = CrdtHistories.Simulate(steps, mutate);
            var pool = run.States.Concat(run.Deltas).ToList();
            var a = pool[i % pool.Count];
            var b = pool[j % pool.Count];
            var c = pool[k % pool.Count];

            Assert.Equal(a.Merge(b), b.Merge(a));                           // commutative
            Assert.Equal(a.Merge(b).Merge(c), a.Merge(b.Merge(c)));         // associative
            Assert.Equal(a, a.Merge(a));                                    // idempotent
            Assert.Equal(a.Merge(b), a.Merge(b).Merge(b));                  // re-delivery changes nothing
            Assert.Equal(a.Merge(b), CrdtState.Parse<T>(a.Merge(b).ToJson())); // the encoding round-trips
        }, iter: Iterations);
    }

    private static void DeltasJoinIntoStates<T>(Func<T, string, int, int, T> mutate) where T : CrdtState, ICrdt<T>
    {
        Gen.Select(CrdtHistories.Steps, Gen.Int).Sample((steps, seed) =>
        {
            var run = CrdtHistories.Simulate(steps, mutate);
            var fullStates = run.Finals.Aggregate(T.Empty, (x, y) => x.Merge(y));
            // Every delta, in a shuffled order and pre-joined into batches, gives the same state as merging full states.
            var rng = new Random(seed);
            var shuffled = run.Deltas.OrderBy(_ => rng.Next()).ToList();
            var batched = T.Empty;
            var batch = T.Empty;
            foreach (var d in shuffled)
            {
                batch = batch.Merge(d);
                if (rng.Next(3) == 0)
                {
                    batched = batched.Merge(batch);
                    batch = T.Empty;
                }
            }
            batched = batched.Merge(batch);
            Assert.Equal(fullStates, batched);
            // And each replica's state is exactly the join of the deltas it has seen: nothing outside the deltas appears.
            Assert.All(run.Finals, f => Assert.Equal(batched, batched.Merge(f)));
        }, iter: Iterations);
    }

    [Fact] public void PNCounter_Merge_IsASemilattice() => Laws<PNCounter>(CrdtHistories.Counter);
    [Fact] public void LwwRegister_Merge_IsASemilattice() => Laws<LwwRegister>(CrdtHistories.Lww);
    [Fact] public void MVRegister_Merge_IsASemilattice() => Laws<MVRegister>(CrdtHistories.MvReg);
    [Fact] public void ORSet_Merge_IsASemilattice() => Laws<ORSet>(CrdtHistories.Set);
    [Fact] public void ORMap_Merge_IsASemilattice() => Laws<ORMap>(CrdtHistories.Map);

    [Fact] public void PNCounter_DeltasJoinedInAnyOrder_EqualFullStateMerge() => DeltasJoinIntoStates<PNCounter>(CrdtHistories.Counter);
    [Fact] public void LwwRegister_DeltasJoinedInAnyOrder_EqualFullStateMerge() => DeltasJoinIntoStates<LwwRegister>(CrdtHistories.Lww);
    [Fact] public void MVRegister_DeltasJoinedInAnyOrder_EqualFullStateMerge() => DeltasJoinIntoStates<MVRegister>(CrdtHistories.MvReg);
    [Fact] public void ORSet_DeltasJoinedInAnyOrder_EqualFullStateMerge() => DeltasJoinIntoStates<ORSet>(CrdtHistories.Set);
    [Fact] public void ORMap_DeltasJoinedInAnyOrder_EqualFullStateMerge() => DeltasJoinIntoStates<ORMap>(CrdtHistories.Map);

    [Fact]
    public void Join_DifferentTypes_Throws()
    {
        var e = Assert.Throws<CrdtTypeMismatchException>(() => PNCounter.Empty.Increment("a").Join(ORSet.Empty));
        Assert.Equal("pncounter", e.Expected);
        Assert.Equal("orset", e.Actual);
    }
}
