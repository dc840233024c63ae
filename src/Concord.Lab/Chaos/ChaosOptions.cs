namespace Concord.Lab.Chaos;

/// <summary>The faults the lab can inject. Each is a decision of the schedule: recorded, replayed and shrunk with it.</summary>
public enum FaultKind
{
    /// <summary>No fault.</summary>
    None,

    /// <summary>The store call is delayed by a random virtual latency before it reaches the store.</summary>
    Latency,

    /// <summary>The call fails with a transient error before it reaches the store (nothing applied).</summary>
    TransientFailure,

    /// <summary>The write is applied, then the reply is lost: the client sees a transient error (outcome unknown, history <c>info</c>).</summary>
    UnknownOutcome,

    /// <summary>The mutation is delivered twice (a retransmission); with an idempotency key the second is a replay.</summary>
    DuplicateDelivery,

    /// <summary>The backend restarts: this call and every call during the downtime fail with a transient <see cref="StoreUnavailableException"/>; acknowledged writes survive.</summary>
    BackendRestart,

    /// <summary>The agent crashes at a scheduling point (its pending work is abandoned, never resumed) and is restarted per its <see cref="Scheduling.RestartPolicy"/>.</summary>
    Crash,

    /// <summary>The agent is paused at a scheduling point (a GC pause, a stalled VM) long enough for its leases to expire.</summary>
    Pause,
}

/// <summary>Where a fault could be injected: offered to <see cref="ChaosOptions.Target"/>.</summary>
/// <param name="Agent">The agent.</param>
/// <param name="Operation">The label of its scheduling point or store call (<c>put accounts/acct-42 expect v3</c>).</param>
/// <param name="Kind">The fault being considered.</param>
public readonly record struct FaultSite(string Agent, string Operation, FaultKind Kind);

/// <summary>
/// What the chaos layer may inject, with per-call probabilities. Store faults (<see cref="Latency"/> …
/// <see cref="BackendRestart"/>) are decided by <see cref="ChaosStore"/> at every store call; agent faults
/// (<see cref="Crash"/>, <see cref="Pause"/>) by the scheduler at every scheduling point; clock skew once per agent.
/// </summary>
/// <remarks>Immutable once built; validated by <see cref="Validate"/>.</remarks>
public sealed record ChaosOptions
{
    /// <summary>No faults at all (the default).</summary>
    public static ChaosOptions None { get; } = new();

    /// <summary>Probability that a store call is delayed by <see cref="LatencyMin"/> … <see cref="LatencyMax"/>. <value>Default: 0.</value></summary>
    public double Latency { get; init; }

    /// <summary>Shortest injected latency. <value>Default: 1 ms.</value></summary>
    public TimeSpan LatencyMin { get; init; } = TimeSpan.FromMilliseconds(1);

    /// <summary>Longest injected latency. <value>Default: 500 ms.</value></summary>
    public TimeSpan LatencyMax { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Probability that a store call fails transiently before it is applied. <value>Default: 0.</value></summary>
    public double TransientFailure { get; init; }

    /// <summary>Probability that a mutation is applied but its reply lost (the caller sees a transient error). <value>Default: 0.</value></summary>
    public double UnknownOutcome { get; init; }

    /// <summary>Probability that a mutation is delivered twice. <value>Default: 0.</value></summary>
    public double DuplicateDelivery { get; init; }

    /// <summary>Probability that the backend restarts at a store call. <value>Default: 0.</value></summary>
    public double BackendRestart { get; init; }

    /// <summary>How long a restarting backend refuses calls (virtual time). <value>Default: 1 s.</value></summary>
    public TimeSpan RestartDowntime { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Probability that an agent crashes at a scheduling point. <value>Default: 0.</value></summary>
    public double Crash { get; init; }

    /// <summary>Probability that an agent is paused at a scheduling point for <see cref="PauseLength"/>. <value>Default: 0.</value></summary>
    public double Pause { get; init; }

    /// <summary>How long a pause lasts (virtual time): longer than the leases in play, so they expire. <value>Default: 60 s.</value></summary>
    public TimeSpan PauseLength { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Each agent's wall clock is offset by a random skew in ±this (durations and timers are not skewed). <value>Default: zero.</value></summary>
    public TimeSpan MaxClockSkew { get; init; }

    /// <summary>At most this many faults per run (latency included). <value>Default: unlimited.</value></summary>
    public int MaxFaults { get; init; } = int.MaxValue;

    /// <summary>Restricts where faults may be injected (for example one agent, or only puts); null allows everywhere. <value>Default: null.</value></summary>
    public Func<FaultSite, bool>? Target { get; init; }

    /// <summary>True when some store fault has a positive probability.</summary>
    public bool HasStoreFaults => Latency > 0 || TransientFailure > 0 || UnknownOutcome > 0 || DuplicateDelivery > 0 || BackendRestart > 0;

    /// <summary>True when crashes or pauses have a positive probability.</summary>
    public bool HasAgentFaults => Crash > 0 || Pause > 0;

    /// <summary>True when any fault (or skew) is enabled.</summary>
    public bool IsEnabled => HasStoreFaults || HasAgentFaults || MaxClockSkew > TimeSpan.Zero;

    /// <summary>Throws <see cref="ArgumentException"/> for probabilities outside [0, 1] (or summing past 1 per group) and negative durations.</summary>
    public void Validate()
    {
        foreach (var (name, p) in new[]
                 {
                     (nameof(Latency), Latency), (nameof(TransientFailure), TransientFailure), (nameof(UnknownOutcome), UnknownOutcome),
                     (nameof(DuplicateDelivery), DuplicateDelivery), (nameof(BackendRestart), BackendRestart), (nameof(Crash), Crash), (nameof(Pause), Pause),
                 })
        {
            if (p is < 0 or > 1 || double.IsNaN(p)) throw new ArgumentException($"{name} must be a probability in [0, 1], not {p}", name);
        }

        if (Latency + TransientFailure + UnknownOutcome + DuplicateDelivery + BackendRestart > 1) throw new ArgumentException("Store fault probabilities add up to more than 1");
        if (Crash + Pause > 1) throw new ArgumentException("Crash and Pause probabilities add up to more than 1");
        if (LatencyMin < TimeSpan.Zero || LatencyMax < LatencyMin) throw new ArgumentException("Latencies must satisfy 0 ≤ LatencyMin ≤ LatencyMax");
        if (RestartDowntime < TimeSpan.Zero || PauseLength < TimeSpan.Zero || MaxClockSkew < TimeSpan.Zero) throw new ArgumentException("Durations must not be negative");
        if (MaxFaults < 0) throw new ArgumentException("MaxFaults must not be negative", nameof(MaxFaults));
    }
}
