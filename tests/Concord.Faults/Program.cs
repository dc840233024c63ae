using System.Globalization;
using System.Text;
using Concord.Faults;

// concord-faults faults [--quick] [--backend embedded|postgres|redis|all] [--duration SECONDS] [--seed N] [--clients N] [--nodes N] [--no-real-db] [--pg-idle-tx-timeout MS] [--report FILE]
// concord-faults soak [--duration SECONDS] [--samples N] [--report FILE]
var mode = args.Length > 0 && !args[0].StartsWith("--", StringComparison.Ordinal) ? args[0] : "faults";
string? Arg(string name) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
var quick = args.Contains("--quick");
var report = Arg("--report");
using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };

if (mode == "soak")
{
    var duration = TimeSpan.FromSeconds(double.Parse(Arg("--duration") ?? (quick ? "30" : "600"), CultureInfo.InvariantCulture));
    var soak = await Soak.RunAsync(new SoakOptions
    {
        Duration = duration,
        Samples = int.Parse(Arg("--samples") ?? (quick ? "10" : "20"), CultureInfo.InvariantCulture),
        Idempotency = !args.Contains("--no-idempotency"),
        Log = Console.Out,
    }, cts.Token);
    var md = Reports.Soak(soak);
    Console.WriteLine(md);
    if (report is not null) await File.WriteAllTextAsync(report, md, new UTF8Encoding(false), cts.Token);
    return soak.Passed ? 0 : 1;
}

var backends = (Arg("--backend") ?? "all") switch
{
    "all" => ["embedded", "postgres", "redis"],
    var b => b.Split(','),
};
var results = new List<FaultRunResult>();
var skipped = new List<string>();
// The suite's own PostgreSQL (5439) and Redis (6389), which the nemesis really restarts; without them (not root, tools
// missing, --no-real-db) postgres/redis run against CONCORD_PG/CONCORD_REDIS with the database outage simulated at a proxy.
PrivateDatabases? databases = null;
if (!args.Contains("--no-real-db") && backends.Any(b => b is "postgres" or "redis"))
{
    (databases, var reason) = await PrivateDatabases.StartAsync(cts.Token);
    if (reason is not null) skipped.Add($"real database restarts: {reason}; the database outage is simulated at a proxy instead");
}
foreach (var backend in backends)
{
    var connection = backend switch
    {
        "postgres" => databases?.Postgres ?? Environment.GetEnvironmentVariable("CONCORD_PG"),
        "redis" => databases?.Redis ?? Environment.GetEnvironmentVariable("CONCORD_REDIS"),
        _ => null,
    };
    // A mitigation experiment: PostgreSQL aborts a transaction whose client went silent (a frozen serve node) after MS.
    if (backend == "postgres" && Arg("--pg-idle-tx-timeout") is { } idle && connection is not null)
        connection += $";Options=-c idle_in_transaction_session_timeout={idle}";
    if (backend != "embedded" && string.IsNullOrEmpty(connection))
    {
        skipped.Add($"{backend} (set CONCORD_{(backend == "postgres" ? "PG" : "REDIS")}; scripts/ensure-deps.sh does)");
        continue;
    }
    var options = new FaultRunOptions
    {
        Backend = backend,
        Connection = connection,
        Duration = TimeSpan.FromSeconds(double.Parse(Arg("--duration") ?? (quick ? "15" : "60"), CultureInfo.InvariantCulture)),
        Clients = int.Parse(Arg("--clients") ?? "6", CultureInfo.InvariantCulture),
        Seed = int.Parse(Arg("--seed") ?? "1", CultureInfo.InvariantCulture),
        Databases = backend == "embedded" ? null : databases,
        Nodes = int.Parse(Arg("--nodes") ?? "2", CultureInfo.InvariantCulture),
        Log = Console.Out,
        // Next to the report and named after it, so a second report in the same directory keeps the first one's histories.
        HistoryPath = report is null ? null : Path.Combine(Path.GetDirectoryName(Path.GetFullPath(report))!, $"{Path.GetFileNameWithoutExtension(report)}-history-{backend}.jsonl"),
    };
    Console.WriteLine($"fault run: {backend}, {options.Duration.TotalSeconds:F0} s, {options.Clients} clients over {options.ServeNodes} serve node(s), seed {options.Seed}{(options.Databases is null ? "" : ", real database restarts")}");
    var result = await FaultRun.RunAsync(options, cts.Token);
    results.Add(result);
    foreach (var v in result.Verdicts) Console.WriteLine($"  {v.Label} {v.Property}: {v.Detail}");
}
var text = Reports.Faults(results, skipped);
Console.WriteLine(text);
if (report is not null) await File.WriteAllTextAsync(report, text, new UTF8Encoding(false), cts.Token);
return results.All(r => r.Passed) ? 0 : 1;
