using System.Diagnostics;

namespace Concord.Benchmarks.Load;

/// <summary>
/// Warm-up → measure → stop phases shared by the workers of one run. Workers reset their counters when they first
/// see <see cref="Measuring"/> and stop when they see <see cref="Stopped"/>; the window is timed by the controller,
/// so a worker preempted at a transition under-counts a little rather than over-counting.
/// </summary>
internal sealed class Phases
{
    public const int WarmingUp = 0;
    public const int Measuring = 1;
    public const int Stopped = 2;
    private int _phase;

    public int Current => Volatile.Read(ref _phase);

    /// <summary>Runs the warm-up, then the measured window; returns the window's length in seconds.</summary>
    public double Drive(TimeSpan warmup, TimeSpan duration, Action? atStart = null, Action? atEnd = null)
    {
        Thread.Sleep(warmup);
        var started = Stopwatch.GetTimestamp();
        Volatile.Write(ref _phase, Measuring);
        atStart?.Invoke();
        Thread.Sleep(duration);
        Volatile.Write(ref _phase, Stopped);
        atEnd?.Invoke();
        return Stopwatch.GetElapsedTime(started).TotalSeconds;
    }
}

/// <summary>What one worker counted in the measured window.</summary>
internal struct WorkerCounts
{
    public long Successes;
    public long Attempts;
    private bool _measuring;

    /// <summary>Call after each operation; false when the worker should stop.</summary>
    public bool Record(Phases phases, long attempts)
    {
        var phase = phases.Current;
        if (phase == Phases.Stopped) return false;
        if (phase == Phases.Measuring)
        {
            if (!_measuring)
            {
                // The operation straddled the start of the window: do not count it.
                _measuring = true;
                return true;
            }
            Successes++;
            Attempts += attempts;
        }
        return true;
    }
}
