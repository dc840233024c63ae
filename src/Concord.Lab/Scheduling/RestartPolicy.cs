namespace Concord.Lab.Scheduling;

/// <summary>
/// What the scheduler does when an agent crashes (a <see cref="Chaos.FaultKind.Crash"/> fault): leave it dead, or start
/// its body again (a new incarnation, with a new history process id) after a delay, up to a number of times.
/// </summary>
/// <param name="MaxRestarts">Restarts allowed per agent per run (0 = never).</param>
/// <param name="Delay">Virtual time between the crash and the restart (a supervisor noticing and respawning).</param>
public sealed record RestartPolicy(int MaxRestarts, TimeSpan Delay)
{
    /// <summary>A crashed agent stays dead.</summary>
    public static RestartPolicy Never { get; } = new(0, TimeSpan.Zero);

    /// <summary>Restart at once, up to <paramref name="maxRestarts"/> times.</summary>
    public static RestartPolicy Immediately(int maxRestarts = 3) => new(maxRestarts, TimeSpan.Zero);

    /// <summary>Restart after <paramref name="delay"/>, up to <paramref name="maxRestarts"/> times.</summary>
    public static RestartPolicy After(TimeSpan delay, int maxRestarts = 3) => new(maxRestarts, delay);
}
