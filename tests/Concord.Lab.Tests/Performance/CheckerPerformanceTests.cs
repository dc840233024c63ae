using System.Diagnostics;
using System.Globalization;
using Concord.Lab.Checkers;
using Concord.Lab.Checkers.Isolation;
using Concord.Lab.Checkers.Linearizability;
using Concord.Lab.History;
using Concord.Lab.Tests.Support;

namespace Concord.Lab.Tests.Performance;

/// <summary>
/// Large histories that must complete; the times are printed, never asserted (the machine is shared).
/// Run alone with: dotnet test --project tests/Concord.Lab.Tests -- --filter-trait "Category=Performance" --show-live-output on
/// </summary>
[Trait("Category", "Performance")]
public sealed class CheckerPerformanceTests(ITestOutputHelper output)
{
    [Fact]
    public void Register_100kOperations_1000Keys_16Processes_CompletesValid()
    {
        var generated = HistoryGenerator.Registers(seed: 42, operations: 100_000, keys: 1_000, processes: 16);
        var text = HistoryWriter.Format(generated);

        var clock = Stopwatch.StartNew();
        var history = HistoryReader.Parse(text);
        var parsed = clock.Elapsed;
        var result = LinearizabilityChecker.Check(history, new LinearizabilityOptions { Model = LinearizabilityModel.Register }, TestContext.Current.CancellationToken);
        var total = clock.Elapsed;

        Assert.True(result.Verdict == Verdict.Valid, result.Explanation);
        Assert.Equal(1_000, result.Keys.Count);
        Report($"register: {history.Operations.Count:N0} events ({history.Operations.Count / 2:N0} operations), 1,000 keys, 16 processes: parse {parsed.TotalMilliseconds:F0} ms, check {(total - parsed).TotalMilliseconds:F0} ms, total {total.TotalMilliseconds:F0} ms");
    }

    [Fact]
    public void ListAppend_10kTransactions_CompletesValid()
    {
        var generated = HistoryGenerator.ListAppend(seed: 7, transactions: 10_000, keys: 100, processes: 16);
        var text = HistoryWriter.Format(generated);

        var clock = Stopwatch.StartNew();
        var history = HistoryReader.Parse(text);
        var parsed = clock.Elapsed;
        var report = IsolationChecker.Check(history, new IsolationOptions { RealTime = true, ProcessOrder = true }, TestContext.Current.CancellationToken);
        var total = clock.Elapsed;

        Assert.True(report.Verdict == Verdict.Valid, report.Explanation);
        Report($"list-append: {report.TransactionCount:N0} transactions, 100 keys, 16 processes, real-time + process edges: parse {parsed.TotalMilliseconds:F0} ms, check {(total - parsed).TotalMilliseconds:F0} ms, total {total.TotalMilliseconds:F0} ms");
    }

    [Fact]
    public void Register_100kOperations_WithOneStaleRead_IsCaughtAndExplained()
    {
        var generated = HistoryGenerator.Registers(seed: 43, operations: 100_000, keys: 1_000, processes: 16);
        var ops = generated.Operations.ToList();
        var target = ops.FindLastIndex(o => o.Type == OperationType.Ok && o.F == Functions.Read && !o.HasNullValue);
        ops[target] = new Operation { Index = ops[target].Index, Time = ops[target].Time, Process = ops[target].Process, Type = OperationType.Ok, F = Functions.Read, Key = ops[target].Key, Value = HistoryValue.Of(-1) };

        var clock = Stopwatch.StartNew();
        var result = LinearizabilityChecker.Check(new OperationHistory(HistoryMeta.Empty, ops), new LinearizabilityOptions { Model = LinearizabilityModel.Register }, TestContext.Current.CancellationToken);
        var total = clock.Elapsed;

        Assert.Equal(Verdict.Invalid, result.Verdict);
        Assert.Equal(ops[target].Index, Assert.Single(result.Keys, k => k.Verdict == Verdict.Invalid).StuckOperation);
        Report($"register with one corrupted read: check and explain {total.TotalMilliseconds:F0} ms");
    }

    private void Report(string line)
    {
        output.WriteLine(line);
        TestContext.Current.SendDiagnosticMessage(line);
        File.AppendAllText(Path.Combine(Path.GetTempPath(), "concord-lab-performance.txt"), string.Create(CultureInfo.InvariantCulture, $"{line}\n"));
    }
}
