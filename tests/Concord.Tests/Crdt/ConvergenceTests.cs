using Concord.Crdt;
using CsCheck;

namespace Concord.Tests.Crdt;

/// <summary>
/// Replicas that exchange deltas over an unreliable network — any delivery order, duplicates, messages dropped and
/// re-sent later, deltas batched — converge to the same state once every delta has arrived.
/// </summary>
public sealed class ConvergenceTests
{
    private sealed record Message(int To, object Delta);

    private static void Converge<T>(Func<T, string, int, int, T> mutate, Action<T[], List<T>>? extra = null) where T : CrdtState, ICrdt<T>
    {
        Gen.Select(Gen.Int, Gen.Int[2, 5], Gen.Int[5, 60]).Sample((seed, replicaCount, mutations) =>
        {
            var rng = new Random(seed);
            var names = Enumerable.Range(0, replicaCount).Select(i => "r" + i).ToArray();
            var replicas = Enumerable.Repeat(T.Empty, replicaCount).ToArray();
            var unsent = Enumerable.Repeat(T.Empty, replicaCount).ToArray(); // per-replica delta batch not yet sent
            var network = new List<Message>();
            var allDeltas = new List<T>();

            void Send(int from)
            {
                for (var to = 0; to < replicaCount; to++)
                {
                    if (to == from) continue;
                    network.Add(new Message(to, unsent[from]));
                    if (rng.Next(4) == 0) network.Add(new Message(to, unsent[from])); // duplicate
                }
                unsent[from] = T.Empty;
            }

            void DeliverOne()
            {
                var i = rng.Next(network.Count);
                var m = network[i];
                network.RemoveAt(i);
                if (rng.Next(5) == 0)
                {
                    network.Add(m); // dropped: the sender times out and re-sends it later
                    return;
                }
                replicas[m.To] = replicas[m.To].Merge((T)m.Delta);
            }

            for (var step = 0; step < mutations; step++)
            {
                var r = rng.Next(replicaCount);
                var delta = mutate(replicas[r], names[r], rng.Next(1, 7), rng.Next(5));
                allDeltas.Add(delta);
                replicas[r] = replicas[r].Merge(delta);
                unsent[r] = unsent[r].Merge(delta); // deltas are batched by joining them
                if (rng.Next(3) == 0) Send(r);
                while (network.Count > 0 && rng.Next(2) == 0) DeliverOne();
            }
            for (var r = 0; r < replicaCount; r++) Send(r);
            while (network.Count > 0) DeliverOne();

            var expected = allDeltas.Aggregate(T.Empty, (x, y) => x.Merge(y));
            Assert.All(replicas, replica => Assert.Equal(expected, replica));
            extra?.Invoke(replicas, allDeltas);
        }, iter: 200);
    }

    [Fact]
    public void PNCounter_Replicas_ConvergeToTheExactTotal() =>
        Converge<PNCounter>(CrdtHistories.Counter, (replicas, deltas) =>
        {
            // Each delta carries one replica's new total; the exact sum is the per-replica maximum summed.
            long expected = deltas.SelectMany(d => d.Increments).GroupBy(p => p.Key).Sum(g => g.Max(p => p.Value))
                - deltas.SelectMany(d => d.Decrements).GroupBy(p => p.Key).Sum(g => g.Max(p => p.Value));
            Assert.All(replicas, r => Assert.Equal(expected, r.Value));
        });

    [Fact] public void LwwRegister_Replicas_Converge() => Converge<LwwRegister>(CrdtHistories.Lww);
    [Fact] public void MVRegister_Replicas_Converge() => Converge<MVRegister>(CrdtHistories.MvReg);
    [Fact] public void ORSet_Replicas_Converge() => Converge<ORSet>(CrdtHistories.Set);
    [Fact] public void ORMap_Replicas_Converge() => Converge<ORMap>(CrdtHistories.Map);
}
