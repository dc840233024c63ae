using System.Diagnostics;

namespace Concord.Benchmarks;

/// <summary>
/// <c>spin get|put|patch|dict-get|dict-put [--seconds N] [--retain REVISIONS] [--alloc]</c>: runs one <see cref="PointOpsBenchmarks"/> operation in a tight loop and prints
/// ns/op and allocated bytes/op — a target to attach a profiler to (<c>perf record</c> with
/// <c>DOTNET_PerfMapEnabled=1</c>, dotnet-trace) and a quick before/after check that needs no BenchmarkDotNet run.
/// </summary>
internal static class SpinCommand
{
    public static int Run(string[] args)
    {
        double seconds = 5;
        var alloc = false;
        var bench = new PointOpsBenchmarks();
        for (var i = 1; i < args.Length; i += 2)
        {
            if (args[i] == "--alloc")
            {
                alloc = true;
                i--;
                continue;
            }
            if (i + 1 >= args.Length)
            {
                Console.Error.WriteLine($"option {args[i]} needs a value");
                return 2;
            }
            switch (args[i])
            {
                case "--seconds": seconds = double.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture); break;
                case "--retain": bench.RetainedRevisions = long.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture); break;
                default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
            }
        }
        bench.Setup();
        Func<object?> operation = args.FirstOrDefault() switch
        {
            "get" => bench.Get_Concord_GetAsync,
            "put" => bench.Put_Concord_PutAsync_ExpectVersion,
            "patch" => bench.Patch_Concord_PatchAsync_Increment,
            "dict-get" => bench.Get_ConcurrentDictionary_TryGetValue,
            "dict-put" => bench.Put_ConcurrentDictionary_AddOrUpdate,
            _ => null!,
        };
        if (operation is null)
        {
            Console.Error.WriteLine("usage: spin get|put|patch|dict-get|dict-put [--seconds N] [--retain REVISIONS] [--alloc]");
            return 2;
        }
        // Warm up past tiered compilation, then measure in rounds so a noisy neighbour shows as spread.
        var warmup = Stopwatch.StartNew();
        while (warmup.Elapsed.TotalSeconds < Math.Min(1, seconds / 5)) operation();
        var rounds = new List<double>();
        using var sampler = alloc ? new AllocationSampler() : null;
        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        long total = 0;
        // CPU time (all threads, GC included) is far less disturbed by a busy machine than wall time.
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var pauseBefore = GC.GetTotalPauseDuration();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < seconds)
        {
            var round = Stopwatch.StartNew();
            for (var i = 0; i < 10_000; i++) operation();
            rounds.Add(round.Elapsed.TotalNanoseconds / 10_000);
            total += 10_000;
        }
        var allocated = (GC.GetAllocatedBytesForCurrentThread() - allocatedBefore) / (double)total;
        var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalNanoseconds / total;
        var pause = (GC.GetTotalPauseDuration() - pauseBefore).TotalNanoseconds / total;
        bench.Cleanup();
        if (sampler is not null)
        {
            foreach (var (type, share) in sampler.Top(30)) Console.WriteLine($"  {share,6:P1}  {allocated * share,6:0} B/op  {type}");
        }
        Console.WriteLine($"{args[0]}: median {Load.Stats.Median(rounds):0.0} ns/op (min {rounds.Min():0.0}, max {rounds.Max():0.0}) over {total:N0} ops, {cpu:0.0} ns/op of CPU, {pause:0.0} ns/op in GC pauses, {allocated:0} B/op allocated, gen0/1/2 = {GC.CollectionCount(0)}/{GC.CollectionCount(1)}/{GC.CollectionCount(2)}");
        return 0;
    }
}
