using System.Globalization;
using System.Text;
using Concord.Benchmarks.Load;

namespace Concord.Benchmarks.Report;

/// <summary>
/// Renders the curve suites (<see cref="CurveResults"/>) as markdown sections and SVG charts: CAS against
/// concurrency and contention for Concord and every peer, the etcd figures, the strategy goodput chart with advice
/// derived from the measured data, and the lab checkers' scaling.
/// </summary>
internal static class CurvesReport
{
    /// <summary>Series order = colour order in every chart.</summary>
    public static readonly string[] PeerOrder = ["Concord embedded", "Concord memory", "Concord HTTP", "ConcurrentDictionary", "SQLite", "PostgreSQL", "Redis", "etcd"];

    /// <summary>The Concord configuration each peer is compared with, and why.</summary>
    public static readonly (string Peer, string Concord, string Why)[] Counterparts =
    [
        ("ConcurrentDictionary", "Concord memory", "both in process, in memory"),
        ("SQLite", "Concord embedded", "both in process, fsync before acknowledging, same disk"),
        ("PostgreSQL", "Concord HTTP", "both servers on loopback, fsync before acknowledging"),
        ("Redis", "Concord HTTP", "both servers on loopback (Redis acknowledges before its fsync, see its settings)"),
        ("etcd", "Concord HTTP", "both servers on loopback, fsync before acknowledging"),
    ];

    public static readonly string[] StrategyOrder = ["optimistic", "lock", "patch", "queue"];

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Writes the charts into <paramref name="imgDirectory"/> and returns the markdown; image links are <paramref name="imgLink"/>/name.svg.</summary>
    public static string Render(CurveResults curves, string imgDirectory, string imgLink)
    {
        Directory.CreateDirectory(imgDirectory);
        var md = new StringBuilder();
        void Chart(string file, string svg, string alt)
        {
            File.WriteAllText(Path.Combine(imgDirectory, file), svg);
            md.AppendLine($"![{alt}]({imgLink}/{file})");
            md.AppendLine();
        }
        AppendCas(md, curves, Chart);
        AppendEtcd(md, curves);
        AppendGoodput(md, curves, Chart);
        AppendLab(md, curves, Chart);
        if (curves.Notes.Count > 0)
        {
            md.AppendLine("Not measured in this run:");
            md.AppendLine();
            foreach (var n in curves.Notes) md.AppendLine($"- {n}");
            md.AppendLine();
        }
        return md.ToString();
    }

    /// <summary>Headline ratios for the top of the page (empty when the suites did not run).</summary>
    public static IEnumerable<string> Headlines(CurveResults curves)
    {
        var top = curves.Points.Where(p => p.Suite == "cas-clients").Select(p => p.X).DefaultIfEmpty(double.NaN).Max();
        foreach (var (peer, concord, _) in Counterparts)
        {
            var c = Find(curves, "cas-clients", concord, top);
            var p = Find(curves, "cas-clients", peer, top);
            if (c is null || p is null) continue;
            yield return $"CAS at {top:0} clients, {concord} ÷ {peer}: **{Ratio(c.Median("ops/s"), p.Median("ops/s"))}** ({Num(c.Median("ops/s"))} vs {Num(p.Median("ops/s"))} CAS/s)";
        }
        var embedded = Find(curves, "cas-clients", "Concord embedded", top);
        var etcd = Find(curves, "cas-clients", "etcd", top);
        if (embedded is not null && etcd is not null)
            yield return $"CAS at {top:0} clients, Concord embedded (in process) ÷ etcd: **{Ratio(embedded.Median("ops/s"), etcd.Median("ops/s"))}**";
        foreach (var (suite, what, concord) in new[] { ("txn4", "4-key transaction", "Concord HTTP"), ("txn4", "4-key transaction", "Concord embedded"), ("lock", "lock acquire → release", "Concord embedded"), ("lease", "lease renewal", "Concord embedded") })
        {
            var xs = curves.Points.Where(p => p.Suite == suite && p.Series == "etcd").Select(p => p.X).ToList();
            if (xs.Count == 0) continue;
            var x = xs.Max();
            var c = Find(curves, suite, concord, x);
            var e = Find(curves, suite, "etcd", x);
            if (c is not null && e is not null)
                yield return $"{char.ToUpperInvariant(what[0])}{what[1..]} at {x:0} clients, {concord} ÷ etcd: **{Ratio(c.Median("ops/s"), e.Median("ops/s"))}**";
        }
        var keys = curves.Points.Where(p => p.Suite.StartsWith("goodput-", StringComparison.Ordinal)).Select(p => int.Parse(p.Suite["goodput-".Length..], Inv)).Distinct().Order().ToList();
        if (keys.Count > 0)
        {
            var hot = keys[0];
            var agents = curves.Points.Where(p => p.Suite == $"goodput-{hot}").Max(p => p.X);
            var best = StrategyOrder.Select(s => (s, v: Find(curves, $"goodput-{hot}", s, agents)?.Median("ops/s") ?? double.NaN)).Where(t => double.IsFinite(t.v)).OrderByDescending(t => t.v).ToList();
            if (best.Count > 0)
                yield return $"Goodput on {hot} hot key{(hot == 1 ? "" : "s")} with {agents:0} agents: " + string.Join(", ", best.Select(b => $"{b.s} {Num(b.v)}/s")) + $" (every run verified: {(AllVerified(curves) ? "yes" : "**no**")})";
        }
    }

    private static bool AllVerified(CurveResults curves) =>
        curves.Points.Where(p => p.Metrics.ContainsKey("verified")).All(p => p.Metrics["verified"].All(v => v == 1));

    // ------------------------------------------------------------------ CAS vs peers

    private static void AppendCas(StringBuilder md, CurveResults curves, Action<string, string, string> chart)
    {
        var byClients = curves.Points.Where(p => p.Suite == "cas-clients").ToList();
        if (byClients.Count == 0) return;
        var series = Order(byClients.Select(p => p.Series).Distinct(), PeerOrder);
        var clients = byClients.Select(p => p.X).Distinct().Order().ToList();
        md.AppendLine("## Compare-and-swap: Concord and its peers against concurrency and contention");
        md.AppendLine();
        md.AppendLine("One logical update = read a counter, write it back + 1 expecting what was read, retry a lost race. Every subject");
        md.AppendLine("runs the same loop with its own primitives, in the same process, with runs interleaved point by point (each point:");
        md.AppendLine($"{curves.Runs} runs of {curves.Peers.GetValueOrDefault("timing:peers", "0.8 s after 0.2 s of warm-up")}; median, min–max in brackets). Clients are async tasks on one process;");
        md.AppendLine("throughput counts updates completed in the window, latency is per update (call to return, retries included).");
        md.AppendLine();
        md.AppendLine("| subject | what runs |");
        md.AppendLine("|---|---|");
        foreach (var s in series)
            md.AppendLine($"| {s} | {curves.Peers.GetValueOrDefault("desc:" + s, "")} |");
        md.AppendLine();
        md.AppendLine("Ratios compare each peer with the Concord configuration that does the same job:");
        md.AppendLine();
        foreach (var (peer, concord, why) in Counterparts.Where(c => series.Contains(c.Peer)))
            md.AppendLine($"- {peer} ↔ {concord}: {why}.");
        md.AppendLine();

        md.AppendLine("What the subjects do not have in common, to read the ratios by: ConcurrentDictionary keeps no versions, history,");
        md.AppendLine("change feed or durability; Redis here acknowledges before its fsync (`appendfsync everysec`), so a crash can lose");
        md.AppendLine("the last second; SQLite, PostgreSQL, etcd and Concord embedded/HTTP acknowledge after an fsync. `Concord HTTP` pays");
        md.AppendLine("for JSON over HTTP/1.1 and an idempotency record per write (the client's default); the in-process subjects pay for");
        md.AppendLine("no network at all, so \"Concord embedded ÷ server\" rows say what embedding saves, not that one engine is faster.");
        md.AppendLine();
        md.AppendLine($"### Against concurrency ({PeersLoad.SpreadKeys:N0} keys, low contention)");
        md.AppendLine();
        chart("cas-throughput-vs-clients.svg",
            SvgChart.Render("CAS throughput vs clients (1,000 keys)", "clients", "updates/s", clients, Lines(byClients, series, "ops/s"), logY: true, PeerOrder),
            "CAS throughput against clients for Concord and each peer");
        chart("cas-latency-p50-vs-clients.svg",
            SvgChart.Render("CAS latency p50 vs clients (1,000 keys)", "clients", "p50 latency (ms)", clients, Lines(byClients, series, "p50 ms"), logY: true, PeerOrder),
            "CAS median latency against clients");
        chart("cas-latency-p99-vs-clients.svg",
            SvgChart.Render("CAS latency p99 vs clients (1,000 keys)", "clients", "p99 latency (ms)", clients, Lines(byClients, series, "p99 ms"), logY: true, PeerOrder),
            "CAS 99th percentile latency against clients");
        AppendSeriesTable(md, byClients, series, clients, "clients", "updates/s");
        AppendRatioTable(md, byClients, series, clients, "clients");
        AppendLatencyTable(md, byClients, series, clients, "clients");

        var byKeys = curves.Points.Where(p => p.Suite == "cas-keys").ToList();
        if (byKeys.Count > 0)
        {
            // Rising contention left to right: many keys → one key.
            var keys = byKeys.Select(p => p.X).Distinct().OrderDescending().ToList();
            md.AppendLine($"### Against contention ({PeersLoad.ContentionClients} clients on fewer and fewer hot keys)");
            md.AppendLine();
            chart("cas-throughput-vs-hot-keys.svg",
                SvgChart.Render($"CAS throughput vs hot keys ({PeersLoad.ContentionClients} clients; contention rises →)", "hot keys", "updates/s", keys, Lines(byKeys, series, "ops/s"), logY: true, PeerOrder),
                "CAS throughput against the number of hot keys");
            AppendSeriesTable(md, byKeys, series, keys, "hot keys", "updates/s");
            AppendRatioTable(md, byKeys, series, keys, "hot keys");
            md.AppendLine("Failed attempts per successful update (a lost race costs a re-read and a retry):");
            md.AppendLine();
            md.AppendLine("| subject | " + string.Join(" | ", keys.Select(k => $"{k:0} hot key{(k == 1 ? "" : "s")}")) + " |");
            md.AppendLine("|---|" + string.Concat(keys.Select(_ => "---|")));
            foreach (var s in series)
                md.AppendLine($"| {s} | " + string.Join(" | ", keys.Select(k => Find(byKeys, s, k) is { } p ? p.Median("wasted/success").ToString("0.00", Inv) : "—")) + " |");
            md.AppendLine();
        }
    }

    private static void AppendSeriesTable(StringBuilder md, List<CurvePoint> points, IReadOnlyList<string> series, IReadOnlyList<double> xs, string xName, string unit)
    {
        md.AppendLine($"Throughput ({unit}; median, min–max):");
        md.AppendLine();
        md.AppendLine($"| subject | " + string.Join(" | ", xs.Select(x => Label(x, xName))) + " |");
        md.AppendLine("|---|" + string.Concat(xs.Select(_ => "---:|")));
        foreach (var s in series)
            md.AppendLine($"| {s} | " + string.Join(" | ", xs.Select(x => Find(points, s, x) is { } p ? Cell(p, "ops/s") : "—")) + " |");
        md.AppendLine();
    }

    private static void AppendRatioTable(StringBuilder md, List<CurvePoint> points, IReadOnlyList<string> series, IReadOnlyList<double> xs, string xName)
    {
        var rows = Counterparts.Where(c => series.Contains(c.Peer) && series.Contains(c.Concord)).ToList();
        if (rows.Count == 0) return;
        md.AppendLine("Ratios, Concord ÷ peer, on throughput (> 1: Concord does more updates per second):");
        md.AppendLine();
        md.AppendLine($"| ratio | " + string.Join(" | ", xs.Select(x => Label(x, xName))) + " |");
        md.AppendLine("|---|" + string.Concat(xs.Select(_ => "---:|")));
        foreach (var (peer, concord, _) in rows)
            md.AppendLine($"| {concord} ÷ {peer} | " + string.Join(" | ", xs.Select(x => Ratio(Find(points, concord, x)?.Median("ops/s") ?? double.NaN, Find(points, peer, x)?.Median("ops/s") ?? double.NaN))) + " |");
        if (series.Contains("Concord embedded"))
        {
            foreach (var peer in series.Where(s => !s.StartsWith("Concord", StringComparison.Ordinal) && s != "ConcurrentDictionary" && rows.All(r => r.Concord != "Concord embedded" || r.Peer != s)))
                md.AppendLine($"| Concord embedded ÷ {peer} | " + string.Join(" | ", xs.Select(x => Ratio(Find(points, "Concord embedded", x)?.Median("ops/s") ?? double.NaN, Find(points, peer, x)?.Median("ops/s") ?? double.NaN))) + " |");
        }
        md.AppendLine();
    }

    private static void AppendLatencyTable(StringBuilder md, List<CurvePoint> points, IReadOnlyList<string> series, IReadOnlyList<double> xs, string xName)
    {
        md.AppendLine("Latency per update, p50 / p99 in ms (median over runs):");
        md.AppendLine();
        md.AppendLine($"| subject | " + string.Join(" | ", xs.Select(x => Label(x, xName))) + " |");
        md.AppendLine("|---|" + string.Concat(xs.Select(_ => "---:|")));
        foreach (var s in series)
            md.AppendLine($"| {s} | " + string.Join(" | ", xs.Select(x => Find(points, s, x) is { } p ? $"{Ms(p.Median("p50 ms"))} / {Ms(p.Median("p99 ms"))}" : "—")) + " |");
        md.AppendLine();
    }

    // ------------------------------------------------------------------ etcd

    private static void AppendEtcd(StringBuilder md, CurveResults curves)
    {
        var txn = curves.Points.Where(p => p.Suite == "txn4").ToList();
        var locks = curves.Points.Where(p => p.Suite == "lock").ToList();
        var leases = curves.Points.Where(p => p.Suite == "lease").ToList();
        if (txn.Count + locks.Count + leases.Count == 0) return;
        md.AppendLine("## Transactions, locks and leases: Concord and etcd");
        md.AppendLine();
        md.AppendLine($"etcd: {curves.Peers.GetValueOrDefault("etcd", "not measured")}, Debian's `etcd-server` package, one member started by `scripts/bench.sh` on");
        md.AppendLine("127.0.0.1 with its data directory under /tmp (its default: fsync of the WAL before acknowledging), stopped at the end.");
        md.AppendLine("It is driven through its gRPC API (dotnet-etcd's generated stubs on Grpc.Net.Client, HTTP/2). Ratio = Concord ÷ etcd.");
        md.AppendLine();
        if (txn.Count > 0)
        {
            md.AppendLine("**Multi-key transaction**: read 4 random keys of 1,000, then write all 4 (+1) only if none changed — Concord");
            md.AppendLine("`TransactAsync` with four `Expect.Version` puts; etcd `Txn` comparing the four `mod_revision`s → four `Put`s.");
            md.AppendLine();
            AppendPairTable(md, txn, "clients", "txn/s", ["Concord embedded", "Concord memory", "Concord HTTP"], "etcd");
        }
        if (locks.Count > 0)
        {
            md.AppendLine("**Lock acquire → release** on one shared lock (every cycle is a hand-off when clients > 1): Concord");
            md.AppendLine("`StoreLockService` on the durable engine (FIFO wait, a fencing token per grant, 30 s lease) vs etcd's Lock/Unlock");
            md.AppendLine("with a 60 s lease per client.");
            md.AppendLine();
            AppendPairTable(md, locks, "clients", "grants/s", ["Concord embedded"], "etcd");
        }
        if (leases.Count > 0)
        {
            md.AppendLine("**Lease renewal**, each client renewing its own lease back to back: Concord `Lease.RenewAsync` (a durable write");
            md.AppendLine("to the lock record) vs etcd `LeaseKeepAlive` on an open stream (held in the leader's memory, not written to its WAL).");
            md.AppendLine();
            AppendPairTable(md, leases, "clients", "renewals/s", ["Concord embedded"], "etcd");
        }
    }

    private static void AppendPairTable(StringBuilder md, List<CurvePoint> points, string xName, string unit, string[] concords, string peer)
    {
        var xs = points.Select(p => p.X).Distinct().Order().ToList();
        var present = concords.Where(c => points.Any(p => p.Series == c)).ToList();
        md.AppendLine($"| {xName} | " + string.Join(" | ", present.Select(c => $"{c} {unit} (p50 / p99 ms)")) + $" | {peer} {unit} (p50 / p99 ms) | " + string.Join(" | ", present.Select(c => $"{c} ÷ {peer}")) + " |");
        md.AppendLine("|---:|" + string.Concat(present.Select(_ => "---:|")) + "---:|" + string.Concat(present.Select(_ => "---:|")));
        foreach (var x in xs)
        {
            var p = Find(points, peer, x);
            var cells = present.Select(c => Find(points, c, x) is { } cp ? $"{Cell(cp, "ops/s")} ({Ms(cp.Median("p50 ms"))} / {Ms(cp.Median("p99 ms"))})" : "—");
            var ratios = present.Select(c => Ratio(Find(points, c, x)?.Median("ops/s") ?? double.NaN, p?.Median("ops/s") ?? double.NaN));
            md.AppendLine($"| {x:0} | " + string.Join(" | ", cells) + $" | {(p is null ? "—" : $"{Cell(p, "ops/s")} ({Ms(p.Median("p50 ms"))} / {Ms(p.Median("p99 ms"))})")} | " + string.Join(" | ", ratios) + " |");
        }
        md.AppendLine();
    }

    // ------------------------------------------------------------------ goodput

    private static void AppendGoodput(StringBuilder md, CurveResults curves, Action<string, string, string> chart)
    {
        var points = curves.Points.Where(p => p.Suite.StartsWith("goodput-", StringComparison.Ordinal)).ToList();
        if (points.Count == 0) return;
        var keySets = points.Select(p => int.Parse(p.Suite["goodput-".Length..], Inv)).Distinct().OrderDescending().ToList();
        var agents = points.Select(p => p.X).Distinct().Order().ToList();
        var maxAgents = agents[^1];
        var think = curves.Peers.GetValueOrDefault("think", "2");
        md.AppendLine("## Which strategy to pick: goodput of optimistic, lock, patch and queue as contention rises");
        md.AppendLine();
        md.AppendLine($"N agents each repeat one logical update — add 1 to the counter of a record picked at random from a shared set —");
        md.AppendLine($"with a think time of {think} ms (`Task.Delay`; about twice that on this machine's timer), on the durable embedded engine:");
        md.AppendLine();
        md.AppendLine("- **optimistic**: `ConcordSession.UpdateAsync` — read, think on the value read, compare-and-swap; a lost race");
        md.AppendLine("  thinks again after the session's default backoff (10 ms base, full jitter, 10 attempts, then the update gives up).");
        md.AppendLine("- **lock**: `StoreLockService.AcquireAsync` on the record's lock (FIFO wait, lease, fencing token) → read → think →");
        md.AppendLine("  `PutAsync(Expect.Fenced(lease.Fence))` → release.");
        md.AppendLine("- **patch**: think (not on a read value) → `IncrementAsync(\"/n\")`: the store applies the change atomically.");
        md.AppendLine($"- **queue**: think → enqueue the intent on the record's partition of a task queue (up to {GoodputLoad.MaxConsumers} partitions, one");
        md.AppendLine("  consumer each) and wait until it is applied; the consumer leases it, reads the record and acks with the write as");
        md.AppendLine("  the ack's effect (one transaction: the task is done exactly when the write is in).");
        md.AppendLine();
        md.AppendLine("Patch and queue only fit updates that can be stated without the value read (an increment, an append, \"set field");
        md.AppendLine("X\", an intent another worker carries out); optimistic and lock fit any read-think-write. **Goodput** = logical updates");
        md.AppendLine("applied per second (not attempts); **wasted** = thinks thrown away per applied update (lost races). Both come from");
        md.AppendLine("counters read at the window's edges, so updates still retrying when it closes are not left out. **Verified**: after");
        md.AppendLine("every run the counters are summed and compared with the updates the agents saw applied; a mismatch fails the command.");
        md.AppendLine($"Each point: {curves.Runs} runs of {curves.Peers.GetValueOrDefault("timing:goodput", "0.6 s after 0.15 s of warm-up")}, strategies interleaved; median, min–max in brackets.");
        md.AppendLine();

        var contention = keySets.Select(k => (double)k).ToList();
        chart("goodput-vs-contention.svg",
            SvgChart.Render($"Goodput vs contention ({maxAgents:0} agents; contention rises →)", "records in the shared set (hot keys)", "applied updates/s",
                contention, StrategyOrder.Select(s => new ChartSeries(s, [.. keySets.Select(k => Find(points, $"goodput-{k}", s, maxAgents)).OfType<CurvePoint>().Select(p => (double.Parse(p.Suite["goodput-".Length..], Inv), p.Median("ops/s"), p.Min("ops/s"), p.Max("ops/s")))])).ToList(),
                logY: true, StrategyOrder),
            "Goodput of the four strategies against contention");
        foreach (var k in keySets)
        {
            var suite = $"goodput-{k}";
            chart($"goodput-vs-agents-{k}-keys.svg",
                SvgChart.Render($"Goodput vs agents, {k} hot key{(k == 1 ? "" : "s")}", "agents", "applied updates/s", agents,
                    Lines([.. points.Where(p => p.Suite == suite)], StrategyOrder, "ops/s"), logY: true, StrategyOrder),
                $"Goodput against agents on {k} hot key{(k == 1 ? "" : "s")}");
        }
        foreach (var k in keySets)
        {
            var suite = $"goodput-{k}";
            md.AppendLine($"**{k} hot key{(k == 1 ? "" : "s")}** — goodput in updates/s (wasted thinks per update; p50 latency of an update):");
            md.AppendLine();
            md.AppendLine("| strategy | " + string.Join(" | ", agents.Select(a => $"{a:0} agent{(a == 1 ? "" : "s")}")) + " | verified |");
            md.AppendLine("|---|" + string.Concat(agents.Select(_ => "---:|")) + "---|");
            foreach (var s in StrategyOrder)
            {
                var cells = agents.Select(a => Find(points, suite, s, a) is { } p ? $"{Cell(p, "ops/s")} ({p.Median("wasted/success"):0.00}; {Ms(p.Median("p50 ms"))} ms)" : "—");
                var verified = points.Where(p => p.Suite == suite && p.Series == s).All(p => p.Metrics.TryGetValue("verified", out var v) && v.All(x => x == 1));
                md.AppendLine($"| {s} | " + string.Join(" | ", cells) + $" | {(verified ? "yes" : "**NO**")} |");
            }
            md.AppendLine();
        }
        AppendAdvice(md, points, keySets, maxAgents);
    }

    /// <summary>The advice, worded from the measured medians (the numbers quoted are this run's).</summary>
    private static void AppendAdvice(StringBuilder md, List<CurvePoint> points, List<int> keySets, double agents)
    {
        double G(int keys, string s) => Find(points, $"goodput-{keys}", s, agents)?.Median("ops/s") ?? double.NaN;
        double W(int keys, string s) => Find(points, $"goodput-{keys}", s, agents)?.Median("wasted/success") ?? double.NaN;
        var hot = keySets.Min();
        var cold = keySets.Max();
        md.AppendLine("### Which to pick (from this run's figures)");
        md.AppendLine();
        var ranking = StrategyOrder.Select(s => (s, v: G(hot, s))).Where(t => double.IsFinite(t.v)).OrderByDescending(t => t.v).ToList();
        md.AppendLine($"With {agents:0} agents on {hot} hot key{(hot == 1 ? "" : "s")} the order is " + string.Join(" > ", ranking.Select(r => $"{r.s} ({Num(r.v)}/s)")) + ";");
        var coldRanking = StrategyOrder.Select(s => (s, v: G(cold, s))).Where(t => double.IsFinite(t.v)).OrderByDescending(t => t.v).ToList();
        md.AppendLine($"on {cold} keys it is " + string.Join(" > ", coldRanking.Select(r => $"{r.s} ({Num(r.v)}/s)")) + ".");
        md.AppendLine();
        md.AppendLine($"1. **If the change can be stated without the value read, use a patch.** It never conflicts and never waits for");
        md.AppendLine($"   another agent's think: {Ratio(G(hot, "patch"), G(hot, "optimistic"))} the goodput of optimistic and {Ratio(G(hot, "patch"), G(hot, "lock"))} that of a lock on {hot} hot key{(hot == 1 ? "" : "s")}, {Ratio(G(cold, "patch"), G(cold, "optimistic"))} of optimistic on {cold}.");
        md.AppendLine($"2. **If it must read, think, then write:** on {cold} keys optimistic does {Ratio(G(cold, "optimistic"), G(cold, "lock"))} the goodput of a lock,");
        md.AppendLine($"   wasting {W(cold, "optimistic"):0.00} thinks per update; on {hot} hot key{(hot == 1 ? "" : "s")} it does {Ratio(G(hot, "optimistic"), G(hot, "lock"))} and wastes {W(hot, "optimistic"):0.00} thinks per update.");
        bool Overlap(int keys, string a, string b) =>
            Find(points, $"goodput-{keys}", a, agents) is { } pa && Find(points, $"goodput-{keys}", b, agents) is { } pb
            && pa.Min("ops/s") <= pb.Max("ops/s") && pb.Min("ops/s") <= pa.Max("ops/s");
        var ties = keySets.Where(k => Overlap(k, "optimistic", "lock")).Order().ToList();
        if (ties.Count > 0)
            md.AppendLine($"   On {string.Join(" and ", ties)} key{(ties.Count == 1 && ties[0] == 1 ? "" : "s")} their min–max ranges overlap: a tie on this machine.");
        var crossover = keySets.OrderDescending().FirstOrDefault(k => G(k, "lock") > G(k, "optimistic") && !Overlap(k, "optimistic", "lock"));
        if (crossover != 0)
            md.AppendLine($"   The lock overtakes optimistic at {crossover} key{(crossover == 1 ? "" : "s")} for {agents:0} agents: below that, take the lock — a lost race throws away a whole think (with an LLM in the loop, tokens and seconds), the lock makes agents wait in line instead.");
        else
            md.AppendLine($"   The lock never clearly beat optimistic here: its hand-off (release, wake the next waiter, grant) costs durable writes on top of\n   the think, while optimistic's losers back off and retry. But optimistic's waste grows with contention, and every lost race throws\n   away a whole think: with an LLM in the loop that is tokens and seconds, not milliseconds. Where a wasted think costs more than\n   waiting in line, take the lock; its latency grows with the queue of waiters (p50 in the tables above).");
        md.AppendLine($"3. **A queue** serialises per partition like a lock, without holding anything while the agent thinks: {Ratio(G(hot, "queue"), G(hot, "lock"))} of the lock's goodput on {hot} hot key{(hot == 1 ? "" : "s")}, {Ratio(G(cold, "queue"), G(cold, "lock"))} on {cold}.");
        md.AppendLine("   It pays for an enqueue, a lease and an ack per update, and fits work that can be handed over (the agent states an");
        md.AppendLine("   intent, a worker applies it) or needs retries and dead letters.");
        md.AppendLine();
    }

    // ------------------------------------------------------------------ lab

    private static void AppendLab(StringBuilder md, CurveResults curves, Action<string, string, string> chart)
    {
        var reg = curves.Points.Where(p => p.Suite == "lab-register").ToList();
        var txn = curves.Points.Where(p => p.Suite == "lab-txn").ToList();
        if (reg.Count + txn.Count == 0) return;
        md.AppendLine("## Lab checkers: history size against check time");
        md.AppendLine();
        md.AppendLine("Valid histories from the lab tests' generator (see [lab.md](lab.md)), Release build: the linearizability checker on");
        md.AppendLine("register histories (1,000 keys, 16 processes, half reads), the isolation checker on list-append transactions (100 keys,");
        md.AppendLine($"16 processes, real-time and process-order edges). Parse = JSONL to history, check = the checker. Median of {curves.Runs} runs (seeds differ).");
        md.AppendLine();
        foreach (var (suite, label, unit, file) in new[] { ("lab-register", "linearizability (register)", "operations", "lab-linearizability-scaling.svg"), ("lab-txn", "isolation (list-append)", "transactions", "lab-isolation-scaling.svg") })
        {
            var pts = curves.Points.Where(p => p.Suite == suite).ToList();
            if (pts.Count == 0) continue;
            var xs = pts.Select(p => p.X).Distinct().Order().ToList();
            chart(file, SvgChart.Render($"Lab checker: {label}", $"history size ({unit})", "time (ms)", xs, Lines(pts, ["check", "parse"], "ms"), logY: true), $"Check time against history size, {label}");
            md.AppendLine($"| {label}: {unit} | parse ms | check ms | check µs per {unit[..^1]} |");
            md.AppendLine("|---:|---:|---:|---:|");
            foreach (var x in xs)
            {
                var parse = Find(pts, "parse", x);
                var check = Find(pts, "check", x);
                md.AppendLine($"| {x:N0} | {(parse is null ? "—" : Cell(parse, "ms"))} | {(check is null ? "—" : Cell(check, "ms"))} | {(check is null ? "—" : (check.Median("ms") * 1000 / x).ToString("0.0", Inv))} |");
            }
            md.AppendLine();
        }
    }

    // ------------------------------------------------------------------ helpers

    /// <summary>"1 client", "16 clients", "1 hot key", "256 hot keys".</summary>
    private static string Label(double x, string plural) =>
        x == 1 && plural.EndsWith('s') ? $"1 {plural[..^1]}" : $"{x:0} {plural}";

    private static List<string> Order(IEnumerable<string> names, IReadOnlyList<string> order) =>
        [.. names.OrderBy(n => order.Contains(n) ? order.ToList().IndexOf(n) : int.MaxValue).ThenBy(n => n, StringComparer.Ordinal)];

    private static List<ChartSeries> Lines(List<CurvePoint> points, IReadOnlyList<string> series, string metric) =>
        [.. series.Where(s => points.Any(p => p.Series == s)).Select(s => new ChartSeries(s, [.. points.Where(p => p.Series == s).Select(p => (p.X, p.Median(metric), p.Min(metric), p.Max(metric)))]))];

    private static CurvePoint? Find(IEnumerable<CurvePoint> points, string series, double x) =>
        points.FirstOrDefault(p => p.Series == series && Math.Abs(p.X - x) < 1e-9);

    private static CurvePoint? Find(IEnumerable<CurvePoint> points, string suite, string series, double x) =>
        points.FirstOrDefault(p => p.Suite == suite && p.Series == series && Math.Abs(p.X - x) < 1e-9);

    private static CurvePoint? Find(CurveResults curves, string suite, string series, double x) => Find(curves.Points, suite, series, x);

    private static string Cell(CurvePoint p, string metric) => $"{Num(p.Median(metric))} ({Num(p.Min(metric))}–{Num(p.Max(metric))})";

    public static string Ratio(double a, double b) => double.IsFinite(a) && double.IsFinite(b) && b > 0 ? (a / b) switch
    {
        >= 100 => (a / b).ToString("N0", Inv) + "×",
        >= 10 => (a / b).ToString("0.0", Inv) + "×",
        _ => (a / b).ToString("0.00", Inv) + "×",
    } : "—";

    public static string Num(double value) => !double.IsFinite(value) ? "—" : value switch
    {
        >= 100 => value.ToString("N0", Inv),
        >= 10 => value.ToString("0.0", Inv),
        _ => value.ToString("0.00", Inv),
    };

    private static string Ms(double ms) => !double.IsFinite(ms) ? "—" : ms switch
    {
        >= 100 => ms.ToString("0", Inv),
        >= 1 => ms.ToString("0.0", Inv),
        >= 0.01 => ms.ToString("0.00", Inv),
        _ => ms.ToString("0.000", Inv),
    };
}
