using System.Globalization;
using System.Text;

namespace Concord.Faults;

/// <summary>Markdown summaries for docs/reliability.md.</summary>
public static class Reports
{
    public static string Faults(IReadOnlyList<FaultRunResult> results, IReadOnlyList<string> skipped)
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.AppendLine("| backend | serve nodes | database faults | seed | duration | ops | register ops (unknown) | txns ok / failed / unknown | increments acked / unknown | queue: enqueued / acked / stale receipts | creates acked | faults injected | verdict |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in results)
        {
            var faults = string.Join(", ", r.Faults.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => $"{f.Key}×{f.Value}"));
            var db = r.Options.Backend == "embedded" ? "—" : r.Options.Databases is null ? "proxy cut only" : "real restarts";
            sb.AppendLine(inv, $"| {r.Options.Backend} | {r.Options.ServeNodes} | {db} | {r.Options.Seed} | {r.Elapsed.TotalSeconds:F0} s | {r.TotalOps} | {r.RegisterOps} ({r.RegisterInfo}) | {r.TxnOk} / {r.TxnFail} / {r.TxnInfo} | {r.IncrementsAcked} / {r.IncrementsUnknown} | {r.Enqueued} / {r.Acks} / {r.StaleReceipts} | {r.UniqueWritesAcked} | {faults} ({r.FaultCount}) | {(r.Passed ? "PASS" : "FAIL")} |");
        }
        sb.AppendLine();
        sb.AppendLine("| backend | " + string.Join(" | ", Properties) + " |");
        sb.AppendLine("|---|" + string.Concat(Properties.Select(_ => "---|")));
        foreach (var r in results)
            sb.AppendLine("| " + r.Options.Backend + " | " + string.Join(" | ", Properties.Select(p => r.Verdicts.Where(v => v.Property == p).Select(v => v.Label).FirstOrDefault() ?? "—")) + " |");
        sb.AppendLine();
        foreach (var r in results)
        {
            sb.AppendLine(inv, $"**{r.Options.Backend}**");
            foreach (var v in r.Verdicts) sb.AppendLine(inv, $"- {v.Label} {v.Property}: {v.Detail}");
            if (!r.Errors.IsEmpty)
                sb.AppendLine(inv, $"- client-side errors seen (retried or recorded as unknown): {string.Join(", ", r.Errors.OrderByDescending(e => e.Value).Select(e => $"{e.Key}×{e.Value}"))}");
            sb.AppendLine();
        }
        foreach (var s in skipped) sb.AppendLine(inv, $"- skipped: {s}");
        return sb.ToString();
    }

    private static readonly string[] Properties =
    [
        "linearizable registers", "serializable transactions", "strict serializable transactions (real-time order)",
        "exactly-once idempotent increments", "exactly-once queue effects", "no acknowledged write lost", "fences honoured",
        "a frozen node does not stall the others",
    ];

    public static string Soak(SoakResult r)
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.AppendLine("| t | ops (cumulative) | errors | RSS MiB | open fds | p50 ms | p99 ms |");
        sb.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var s in r.Samples)
            sb.AppendLine(inv, $"| {s.At.TotalSeconds:F0} s | {s.Ops} | {s.Errors} | {s.RssMiB:F1} | {s.Handles} | {s.P50Ms:F2} | {s.P99Ms:F2} |");
        sb.AppendLine();
        sb.AppendLine(inv, $"Second-half slopes: RSS {r.RssSlopeMiBPerMinute:F2} MiB/min (limit {r.Options.MaxRssSlopeMiBPerMinute}), open fds {r.HandleSlopePerMinute:F2}/min (limit {r.Options.MaxHandleSlopePerMinute}); p99 drift (last/first of second half) ×{r.P99DriftRatio:F2}. Verdict: {(r.Passed ? "PASS" : "FAIL — " + string.Join("; ", r.Failures))}");
        return sb.ToString();
    }
}
