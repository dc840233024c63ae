using System.Text.Json;
using Concord.Lab.Checkers;
using Concord.Lab.Checkers.Linearizability;
using Concord.Lab.History;
using Concord.Lab.Tests.Support;
using CsCheck;

namespace Concord.Lab.Tests.Checkers.Linearizability;

public sealed class LinearizabilityPropertyTests
{
    private static readonly LinearizabilityOptions CasRegister = new() { Model = LinearizabilityModel.CasRegister };

    [Fact]
    public void Check_RandomSequentialHistoryOfACorrectRegister_IsAlwaysLinearizable()
    {
        // (process, key, kind: 0 read / 1 write / 2 cas, value)
        var ops = Gen.Select(Gen.Int[0, 3], Gen.Int[0, 2], Gen.Int[0, 2], Gen.Int[0, 4]).List[0, 60];
        ops.Sample(plan =>
        {
            var state = new Dictionary<string, int>();
            var builder = new HistoryBuilder();
            foreach (var (process, keyIndex, kind, value) in plan)
            {
                var key = $"k{keyIndex}";
                var current = state.TryGetValue(key, out var v) ? v : (int?)null;
                switch (kind)
                {
                    case 0:
                        builder.Read(process, key, current is null ? HistoryValue.Null : current);
                        break;
                    case 1:
                        builder.Write(process, key, value);
                        state[key] = value;
                        break;
                    default:
                        var expected = value % 2 == 0 && current is not null ? current : value;
                        builder.Invoke(process, Functions.Cas, key, new int?[] { expected, value + 10 });
                        if (expected == current)
                        {
                            builder.Ok(process);
                            state[key] = value + 10;
                        }
                        else
                        {
                            builder.Fail(process);
                        }

                        break;
                }
            }

            var result = LinearizabilityChecker.Check(builder.Build(), CasRegister, TestContext.Current.CancellationToken);
            Assert.True(result.Verdict == Verdict.Valid, result.Explanation);
        });
    }

    [Fact]
    public void Check_RandomConcurrentLinearizableHistory_IsValid_AndACorruptedReadIsCaughtWithASoundWindow()
    {
        Gen.Select(Gen.Int[0, 100_000], Gen.Int[10, 120], Gen.Int[2, 6]).Sample((seed, operations, processes) =>
        {
            var token = TestContext.Current.CancellationToken;
            var history = HistoryGenerator.Registers(seed, operations, keys: 2, processes);
            var valid = LinearizabilityChecker.Check(history, new LinearizabilityOptions { Model = LinearizabilityModel.Register }, token);
            Assert.True(valid.Verdict == Verdict.Valid, valid.Explanation);

            // Corrupt the last completed read: it now returns a value nobody wrote.
            var ops = history.Operations.ToList();
            var target = ops.FindLastIndex(o => o.Type == OperationType.Ok && o.F == Functions.Read);
            if (target < 0)
            {
                return;
            }

            ops[target] = new Operation { Index = ops[target].Index, Time = ops[target].Time, Process = ops[target].Process, Type = OperationType.Ok, F = Functions.Read, Key = ops[target].Key, Value = JsonSerializer.SerializeToElement(-1) };
            var corrupted = new OperationHistory(HistoryMeta.Empty, ops);
            var result = LinearizabilityChecker.Check(corrupted, new LinearizabilityOptions { Model = LinearizabilityModel.Register }, token);

            Assert.Equal(Verdict.Invalid, result.Verdict);
            var key = Assert.Single(result.Keys, k => k.Verdict == Verdict.Invalid);
            Assert.Equal(ops[target].Index, key.StuckOperation);
            Assert.Contains(ops[target].Index, key.Window);

            // Soundness: the window, on its own, is already not linearizable.
            var windowOps = corrupted.Operations.Where(o => o.Key == key.Key).ToList();
            var keep = corrupted.Pairs.Where(p => key.Window.Contains(p.Index)).SelectMany(p => new[] { p.Invoke, p.Completion }).OfType<Operation>().ToHashSet();
            var window = new OperationHistory(HistoryMeta.Empty, windowOps.Where(keep.Contains).ToList());
            Assert.Equal(Verdict.Invalid, LinearizabilityChecker.Check(window, new LinearizabilityOptions { Model = LinearizabilityModel.Register, ExplainFailures = false }, token).Verdict);
        }, iter: 60);
    }
}
