using System.Text.Json;
using Concord.Crdt;
using CsCheck;

namespace Concord.Tests.Crdt;

/// <summary>
/// Reachable CRDT states for property tests: random histories of mutations and state exchanges between three
/// replicas. Arbitrary JSON would include states no replica can produce (a dot reused with two values), which the
/// laws do not promise anything about.
/// </summary>
internal static class CrdtHistories
{
    public static readonly string[] Replicas = ["a", "b", "c"];

    /// <summary>One step: replica index, what to do (kind 0 = pull another replica's state), an argument, another replica.</summary>
    public readonly record struct Step(int Replica, int Kind, int Arg, int Other)
    {
        public override string ToString() => Kind == 0 ? $"{Replicas[Replica]}<-{Replicas[Other]}" : $"{Replicas[Replica]}:{Kind}/{Arg}";
    }

    public static readonly Gen<Step[]> Steps =
        Gen.Select(Gen.Int[0, 2], Gen.Int[0, 6], Gen.Int[0, 4], Gen.Int[0, 2], static (r, k, a, o) => new Step(r, k, a, o)).Array[1, 40];

    public sealed record Run<T>(List<T> States, List<T> Deltas, T[] Finals);

    public static Run<T> Simulate<T>(Step[] steps, Func<T, string, int, int, T> mutate) where T : CrdtState, ICrdt<T>
    {
        var replicas = new[] { T.Empty, T.Empty, T.Empty };
        var states = new List<T> { T.Empty };
        var deltas = new List<T>();
        foreach (var s in steps)
        {
            if (s.Kind == 0)
            {
                replicas[s.Replica] = replicas[s.Replica].Merge(replicas[s.Other]);
            }
            else
            {
                var delta = mutate(replicas[s.Replica], Replicas[s.Replica], s.Kind, s.Arg);
                deltas.Add(delta);
                replicas[s.Replica] = replicas[s.Replica].Merge(delta);
            }
            states.Add(replicas[s.Replica]);
        }
        return new Run<T>(states, deltas, replicas);
    }

    public static JsonElement J(int i) => JsonSerializer.SerializeToElement(i);

    // ---- mutators per type: (state, replica, kind 1..6, arg) → delta

    public static PNCounter Counter(PNCounter s, string r, int kind, int arg) =>
        kind % 2 == 0 ? s.Increment(r, arg) : s.Decrement(r, arg + 1);

    public static LwwRegister Lww(LwwRegister s, string r, int kind, int arg) =>
        // Small timestamp steps so that concurrent sets often tie on the timestamp and the replica id decides.
        s.Set(J(arg * 10 + kind), r, s.Timestamp + 1 + (arg % 2));

    public static MVRegister MvReg(MVRegister s, string r, int kind, int arg) =>
        kind == 6 ? s.Clear() : s.Assign(r, J(arg));

    public static ORSet Set(ORSet s, string r, int kind, int arg) => kind switch
    {
        1 or 2 or 3 => s.Add(r, J(arg)),
        4 or 5 => s.Remove(J(arg)),
        _ => s.Clear(),
    };

    public static ORMap Map(ORMap s, string r, int kind, int arg) => kind switch
    {
        1 => s.Update<PNCounter>(r, "n" + (arg % 2), c => c.Increment(r, arg + 1)),
        2 => s.Update<ORSet>(r, "tags", t => arg % 3 == 0 ? t.Remove(J(arg % 2)) : t.Add(r, J(arg % 2))),
        3 => s.Update<ORMap>(r, "inner", m => m.Update<MVRegister>(r, "x", v => v.Assign(r, J(arg)))),
        4 => s.Update<LwwRegister>(r, "n0", l => l.Set(J(arg), r, l.Timestamp + 1)), // same name, another type
        5 => s.Remove("n" + (arg % 2)),
        _ => s.Remove(arg % 2 == 0 ? "tags" : "inner"),
    };
}
