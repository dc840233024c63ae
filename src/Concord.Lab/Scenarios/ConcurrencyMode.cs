namespace Concord.Lab.Scenarios;

/// <summary>How the agents of a seed scenario write shared state.</summary>
public enum ConcurrencyMode
{
    /// <summary>Read the value, think, write the whole value back with a blind put: the last writer silently wins.</summary>
    Naive,

    /// <summary>Compare-and-swap with retry (<see cref="ConcordSession.UpdateAsync(string, Func{ConcordRecord?, CancellationToken, ValueTask{System.Text.Json.JsonElement?}}, UpdateOptions?, CancellationToken)"/>): a stale write conflicts and is recomputed.</summary>
    Optimistic,

    /// <summary>Atomic patch of only the part the agent owns (a field, an increment): nothing to conflict with.</summary>
    Patch,

    /// <summary>A serializable optimistic transaction over everything the decision read (keys and ranges): no write skew.</summary>
    Serializable,

    /// <summary>Work handed out as queue tasks: each task is leased by exactly one agent, and its effect commits with the ack.</summary>
    Queue,

    /// <summary>A conflict-free replicated data type (an add-wins OR-set): concurrent changes merge, none is lost.</summary>
    Crdt,
}

/// <summary>Seed derivation and think times shared by the scenarios.</summary>
internal static class ScenarioRandom
{
    /// <summary>A stable, well-mixed seed for stream <paramref name="stream"/> of a run seeded with <paramref name="seed"/> (SplitMix64 finalizer; unlike <see cref="HashCode"/>, the same in every process).</summary>
    public static int Derive(int seed, int stream)
    {
        var z = unchecked(((ulong)(uint)seed << 32 | (uint)stream) + 0x9E3779B97F4A7C15UL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        z ^= z >> 31;
        return (int)(z & int.MaxValue);
    }

    /// <summary>A whole number of milliseconds uniformly in [<paramref name="minMs"/>, <paramref name="maxMs"/>] (whole, because virtual timers have millisecond resolution).</summary>
    public static TimeSpan Milliseconds(Random random, int minMs, int maxMs) => TimeSpan.FromMilliseconds(random.Next(minMs, maxMs + 1));
}
