using System.Diagnostics;
using Concord.Lab.Checkers;
using Concord.Lab.Checkers.Isolation;
using Concord.Lab.Checkers.Linearizability;
using Concord.Lab.History;
using Concord.Lab.Tests.Support;

namespace Concord.Benchmarks.Load;

/// <summary>
/// <c>load lab</c>: how the lab's checkers scale with history size, on valid generated histories (the generator of
/// tests/Concord.Lab.Tests, linked in): the linearizability checker on register histories (1,000 keys, 16 processes)
/// and the isolation checker on list-append transactions (100 keys, 16 processes, real-time and process edges).
/// Parse and check are timed separately; every history must check valid.
/// </summary>
internal static class LabLoad
{
    public static readonly int[] RegisterOps = [1_000, 10_000, 30_000, 100_000];
    public static readonly int[] Transactions = [300, 1_000, 3_000, 10_000];

    public static List<CurvePoint> Run(LoadSettings settings, Action<string> log)
    {
        var points = new List<CurvePoint>();
        foreach (var ops in settings.Quick ? [1_000, 3_000] : RegisterOps)
        {
            var parse = new PointBuilder("lab-register", "parse", ops);
            var check = new PointBuilder("lab-register", "check", ops);
            for (var run = 0; run < settings.Runs; run++)
            {
                var text = HistoryWriter.Format(HistoryGenerator.Registers(seed: 42 + run, operations: ops, keys: 1_000, processes: 16));
                var clock = Stopwatch.StartNew();
                var history = HistoryReader.Parse(text);
                var parsed = clock.Elapsed.TotalMilliseconds;
                var result = LinearizabilityChecker.Check(history, new LinearizabilityOptions { Model = LinearizabilityModel.Register });
                var checkedMs = clock.Elapsed.TotalMilliseconds - parsed;
                if (result.Verdict != Verdict.Valid) throw new InvalidOperationException($"generated register history checked {result.Verdict}: {result.Explanation}");
                parse.Add("ms", parsed);
                check.Add("ms", checkedMs);
                log($"lab register {ops,7:N0} ops run {run + 1}: parse {parsed,8:0} ms, check {checkedMs,8:0} ms");
            }
            points.Add(parse.Build());
            points.Add(check.Build());
        }
        foreach (var txns in settings.Quick ? [100, 300] : Transactions)
        {
            var parse = new PointBuilder("lab-txn", "parse", txns);
            var check = new PointBuilder("lab-txn", "check", txns);
            for (var run = 0; run < settings.Runs; run++)
            {
                var text = HistoryWriter.Format(HistoryGenerator.ListAppend(seed: 7 + run, transactions: txns, keys: 100, processes: 16));
                var clock = Stopwatch.StartNew();
                var history = HistoryReader.Parse(text);
                var parsed = clock.Elapsed.TotalMilliseconds;
                var report = IsolationChecker.Check(history, new IsolationOptions { RealTime = true, ProcessOrder = true });
                var checkedMs = clock.Elapsed.TotalMilliseconds - parsed;
                if (report.Verdict != Verdict.Valid) throw new InvalidOperationException($"generated list-append history checked {report.Verdict}: {report.Explanation}");
                parse.Add("ms", parsed);
                check.Add("ms", checkedMs);
                log($"lab txn {txns,7:N0} transactions run {run + 1}: parse {parsed,8:0} ms, check {checkedMs,8:0} ms");
            }
            points.Add(parse.Build());
            points.Add(check.Build());
        }
        return points;
    }
}
