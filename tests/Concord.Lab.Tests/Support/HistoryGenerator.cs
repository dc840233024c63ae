using System.Text.Json;
using Concord.Lab.History;

namespace Concord.Lab.Tests.Support;

/// <summary>
/// Generates linearizable (and strictly serializable) histories by simulation: each operation gets an invocation,
/// a linearization point and a completion in time; effects are applied in linearization-point order.
/// </summary>
internal static class HistoryGenerator
{
    private sealed record Slot(int Process, long Invoke, long Point, long Complete);

    /// <summary>Register operations (reads and writes of unique values) over <paramref name="keys"/> keys.</summary>
    public static OperationHistory Registers(int seed, int operations, int keys, int processes, double writeRatio = 0.5)
    {
        var random = new Random(seed);
        var slots = Slots(random, operations, processes);
        var state = new Dictionary<string, long>();
        var ops = new (string Key, bool IsWrite, long Value)[slots.Count];
        var order = Enumerable.Range(0, slots.Count).OrderBy(i => slots[i].Point).ToArray();
        var nextValue = 1L;
        var plan = slots.Select(_ => (Key: $"k{random.Next(keys)}", IsWrite: random.NextDouble() < writeRatio)).ToArray();
        foreach (var i in order)
        {
            var (key, isWrite) = plan[i];
            if (isWrite)
            {
                state[key] = nextValue;
                ops[i] = (key, true, nextValue++);
            }
            else
            {
                ops[i] = (key, false, state.GetValueOrDefault(key));
            }
        }

        return Assemble(slots, i => (ops[i].IsWrite ? Functions.Write : Functions.Read, ops[i].Key,
            ops[i].IsWrite ? JsonSerializer.SerializeToElement(ops[i].Value) : default,
            ops[i].IsWrite || ops[i].Value != 0 ? JsonSerializer.SerializeToElement(ops[i].Value) : HistoryValue.Null));
    }

    /// <summary>List-append transactions of 1–4 micro-ops over <paramref name="keys"/> keys.</summary>
    public static OperationHistory ListAppend(int seed, int transactions, int keys, int processes)
    {
        var random = new Random(seed);
        var slots = Slots(random, transactions, processes);
        var lists = new Dictionary<string, List<long>>();
        var nextElement = 1L;
        var plans = slots.Select(_ => Enumerable.Range(0, random.Next(1, 5))
            .Select(_ => (Key: $"x{random.Next(keys)}", Append: random.NextDouble() < 0.5)).ToList()).ToArray();
        var invokes = new JsonElement[slots.Count];
        var completes = new JsonElement[slots.Count];
        foreach (var i in Enumerable.Range(0, slots.Count).OrderBy(i => slots[i].Point))
        {
            var invoke = new List<MicroOp>();
            var complete = new List<MicroOp>();
            foreach (var (key, append) in plans[i])
            {
                if (!lists.TryGetValue(key, out var list))
                {
                    lists[key] = list = [];
                }

                if (append)
                {
                    var element = JsonSerializer.SerializeToElement(nextElement);
                    list.Add(nextElement++);
                    invoke.Add(MicroOp.Append(key, element));
                    complete.Add(MicroOp.Append(key, element));
                }
                else
                {
                    invoke.Add(MicroOp.Read(key));
                    complete.Add(MicroOp.Read(key, JsonSerializer.SerializeToElement(list)));
                }
            }

            invokes[i] = MicroOp.ToJson(invoke);
            completes[i] = MicroOp.ToJson(complete);
        }

        return Assemble(slots, i => (Functions.Txn, null, invokes[i], completes[i]));
    }

    private static List<Slot> Slots(Random random, int count, int processes)
    {
        var slots = new List<Slot>(count);
        var clock = new long[processes];
        for (var i = 0; i < count; i++)
        {
            var process = random.Next(processes);
            var invoke = clock[process] + random.Next(1, 1_000);
            var point = invoke + random.Next(1, 5_000);
            var complete = point + random.Next(1, 5_000);
            clock[process] = complete;
            slots.Add(new Slot(process, invoke, point, complete));
        }

        return slots;
    }

    private static OperationHistory Assemble(List<Slot> slots, Func<int, (string F, string? Key, JsonElement Input, JsonElement Output)> describe)
    {
        var events = new List<(long Time, int Order, int Slot, bool IsInvoke)>(slots.Count * 2);
        for (var i = 0; i < slots.Count; i++)
        {
            events.Add((slots[i].Invoke, 1, i, true));
            events.Add((slots[i].Complete, 0, i, false));
        }

        // Times are per-process clocks, so distinct processes can tie; a completion sorts before an invocation at the same time.
        events.Sort((a, b) => a.Time != b.Time ? a.Time.CompareTo(b.Time) : a.Order.CompareTo(b.Order));
        var operations = new List<Operation>(events.Count);
        foreach (var (time, _, slot, isInvoke) in events)
        {
            var (f, key, input, output) = describe(slot);
            operations.Add(new Operation
            {
                Index = operations.Count,
                Time = time,
                Process = slots[slot].Process,
                Type = isInvoke ? OperationType.Invoke : OperationType.Ok,
                F = f,
                Key = key,
                Value = isInvoke ? input : output,
            });
        }

        return new OperationHistory(HistoryMeta.Empty, operations);
    }
}
