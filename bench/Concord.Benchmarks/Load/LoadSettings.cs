namespace Concord.Benchmarks.Load;

/// <summary>Knobs of one load run; <see cref="Quick"/> shrinks everything to a smoke test of a few seconds.</summary>
public sealed record LoadSettings(bool Quick, int Runs, TimeSpan ContentionDuration, TimeSpan DurableDuration, TimeSpan Warmup, int MemoryKeys, string WorkDirectory)
{
    public static LoadSettings Create(bool quick, int? runs, string? workDirectory)
    {
        var dir = workDirectory ?? Path.Combine(Path.GetTempPath(), $"concord-bench-{Environment.ProcessId}");
        return quick
            ? new LoadSettings(true, runs ?? 1, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(30), 20_000, dir)
            : new LoadSettings(false, runs ?? 3, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2.5), TimeSpan.FromMilliseconds(300), 1_000_000, dir);
    }
}
