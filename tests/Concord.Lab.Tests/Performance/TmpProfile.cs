using System.Diagnostics;
using Concord.Lab.Checkers.Isolation;
using Concord.Lab.History;
using Concord.Lab.Tests.Support;

namespace Concord.Lab.Tests.Performance;

[Trait("Category", "Profile")]
public sealed class TmpProfile
{
    [Fact]
    public void Profile()
    {
        var history = HistoryGenerator.ListAppend(seed: 7, transactions: 10_000, keys: 100, processes: 16);
        var lines = new List<string>();
        var clock = Stopwatch.StartNew();
        var txns = history.Pairs.Select((p, i) => new Txn { Id = i, Pair = p, Ops = MicroOp.ParseList(p.Completion!.Value) }).ToList();
        lines.Add($"build {clock.ElapsedMilliseconds}"); clock.Restart();
        var context = new IsolationContext(txns);
        var keys = txns.SelectMany(t => t.Ops).Select(o => o.Key).ToHashSet();
        ListAppendAnalyzer.Analyze(context, keys);
        lines.Add($"list {clock.ElapsedMilliseconds}"); clock.Restart();
        InternalAnalyzer.Analyze(context, keys);
        lines.Add($"internal {clock.ElapsedMilliseconds}"); clock.Restart();
        CycleFinder.Find(context, EdgeKinds.None, 1000000, TestContext.Current.CancellationToken);
        lines.Add($"cycles {clock.ElapsedMilliseconds} edges {context.Graph.EdgeCount}"); clock.Restart();
        var rt = typeof(IsolationChecker).GetMethod("AddRealTimeOrder", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!;
        rt.Invoke(null, [context, history]);
        lines.Add($"rt-edges {clock.ElapsedMilliseconds} edges {context.Graph.EdgeCount}"); clock.Restart();
        CycleFinder.Find(context, EdgeKinds.RealTime, 1000000, TestContext.Current.CancellationToken);
        lines.Add($"cycles-rt {clock.ElapsedMilliseconds}"); clock.Restart();
        IsolationChecker.Check(history, null, TestContext.Current.CancellationToken);
        lines.Add($"full-plain {clock.ElapsedMilliseconds}"); clock.Restart();
        IsolationChecker.Check(history, new IsolationOptions { RealTime = true }, TestContext.Current.CancellationToken);
        lines.Add($"full-rt {clock.ElapsedMilliseconds}"); clock.Restart();
        File.WriteAllLines("/tmp/profile.txt", lines);
    }
}
