using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Exporters.Json;
using BenchmarkDotNet.Running;
using Concord.Benchmarks;
using Concord.Benchmarks.Load;
using Concord.Benchmarks.Report;

// dotnet run -c Release --project bench/Concord.Benchmarks -- [BenchmarkDotNet args]   micro-benchmarks (PointOpsBenchmarks)
//                                                           -- load contention|durable|memory|all [--quick]   load figures
//                                                           -- otel [--ops N] [--rounds R]   tracing overhead (docs/benchmarks-otel.md)
//                                                           -- load backends [--md FILE]   PostgreSQL/Redis figures (scripts/bench-backends.sh)
//                                                           -- load streams   ReadAll on the native event log vs the per-stream merge (docs/backends.md)
//                                                           -- report-backends LOAD.json OUT.md   re-renders docs/benchmarks-backends.md
//                                                           -- report --load FILE --bdn DIR --out FILE   docs/benchmarks.md
//                                                           -- spin get|put|patch [--seconds N] [--retain N]   a loop to profile
return args switch
{
    ["load", .. var rest] => LoadCommand.Run(rest),
    ["report", .. var rest] => ReportCommand.Run(rest),
    ["spin", .. var rest] => SpinCommand.Run(rest),
    ["otel", .. var rest] => Concord.Benchmarks.Otel.OtelOverhead.Run(rest),
    ["report-backends", var load, var output] => BackendsReport.Write(load, output),
    _ => RunBenchmarkDotNet(args),
};

static int RunBenchmarkDotNet(string[] args)
{
    // The generated benchmark project rebuilds Concord and its dependencies: on a busy shared machine that takes longer than the default 2 minutes.
    var config = DefaultConfig.Instance.AddExporter(JsonExporter.Brief).WithBuildTimeout(TimeSpan.FromMinutes(10));
    var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
    return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
}
