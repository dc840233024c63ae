using Concord.Coordination.Locks;
using Concord.Coordination.Queues;
using Concord.Coordination.Streams;

namespace Concord.Agents;

/// <summary>Settings of an <see cref="AgentRuntime"/>. Plain options with documented defaults, validated when the runtime is created.</summary>
public sealed record AgentRuntimeOptions
{
    /// <summary>
    /// The clock every wait goes through: handler think times, idle waits, retry backoff, lease deadlines. Give the runtime a
    /// virtual clock (the lab's <c>VirtualTimeProvider</c>) to run agents deterministically in virtual time.
    /// <value>Default: <see cref="TimeProvider.System"/>.</value>
    /// </summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Seed of every agent's randomness (<see cref="AgentContext.Random"/>, session jitter). <value>Default: 0.</value></summary>
    public int Seed { get; init; }

    /// <summary>Queue service. <value>Default: a <see cref="StoreQueueService"/> over the runtime's store and clock.</value></summary>
    public IQueueService? Queues { get; init; }

    /// <summary>Stream service. <value>Default: a <see cref="StoreStreamService"/> over the runtime's store and clock.</value></summary>
    public IStreamService? Streams { get; init; }

    /// <summary>Lock service. <value>Default: a <see cref="StoreLockService"/> over the runtime's store and clock.</value></summary>
    public ILockService? Locks { get; init; }

    /// <summary>
    /// How long a leased task stays invisible to other consumers. A handler that runs longer must call
    /// <see cref="AgentTaskContext.ExtendLeaseAsync"/>, or its task is handed to another worker and its ack is refused.
    /// <value>Default: 60 s.</value>
    /// </summary>
    public TimeSpan VisibilityTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Longest idle wait before a worker looks at its queues again even though nothing told it to. Work produced through the
    /// runtime wakes workers at once; this is the safety net for work produced elsewhere. <value>Default: 5 s.</value>
    /// </summary>
    public TimeSpan IdlePollInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Backoff before a failed task or event is tried again; doubles per attempt. <value>Default: 1 s.</value></summary>
    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Upper bound of one retry backoff. <value>Default: 30 s.</value></summary>
    public TimeSpan RetryMaxDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Attempts of one stream event before it is dead-lettered (appended to <c>dead-letters/{agent}</c> and skipped).
    /// Queue tasks use their queue's maximum attempts instead. <value>Default: 5.</value>
    /// </summary>
    public int MaxEventAttempts { get; init; } = 5;

    /// <summary>Events read per page by event handlers. <value>Default: 64.</value></summary>
    public int EventPageSize { get; init; } = 64;

    /// <summary>
    /// Finish <see cref="AgentRuntime.RunAsync"/> (and every flow of <see cref="AgentRuntime.CreateFlows"/>) once no agent has
    /// anything to do: every start handler returned, every worker is idle with no delayed or in-flight task in its queues,
    /// and every event handler has caught up. For closed systems (tests, the lab, batch jobs) where all work is produced by
    /// the runtime's own agents. <value>Default: false (run until cancelled or <see cref="AgentRuntime.Stop"/>).</value>
    /// </summary>
    public bool StopWhenIdle { get; init; }

    /// <summary>
    /// In <see cref="AgentRuntime.RunAsync"/>, also watch the store for tasks and events produced by other processes and wake
    /// the agents at once. Not part of <see cref="AgentRuntime.CreateFlows"/> (a watch is not a timer, so it would break a
    /// deterministic scheduler). <value>Default: true.</value>
    /// </summary>
    public bool WatchForExternalWork { get; init; } = true;

    internal void Validate()
    {
        ArgumentNullException.ThrowIfNull(TimeProvider);
        if (VisibilityTimeout <= TimeSpan.Zero || VisibilityTimeout > TimeSpan.FromHours(12)) throw new ArgumentException("VisibilityTimeout must be between 0 and 12 hours", nameof(VisibilityTimeout));
        if (IdlePollInterval <= TimeSpan.Zero) throw new ArgumentException("IdlePollInterval must be positive", nameof(IdlePollInterval));
        if (RetryBaseDelay < TimeSpan.Zero || RetryMaxDelay < RetryBaseDelay) throw new ArgumentException("Retry delays must satisfy 0 ≤ RetryBaseDelay ≤ RetryMaxDelay");
        if (MaxEventAttempts < 1) throw new ArgumentException("MaxEventAttempts must be at least 1", nameof(MaxEventAttempts));
        if (EventPageSize is < 1 or > 10_000) throw new ArgumentException("EventPageSize must be between 1 and 10000", nameof(EventPageSize));
    }

    /// <summary>The backoff before attempt <paramref name="attempt"/> + 1.</summary>
    internal TimeSpan RetryDelay(int attempt)
    {
        var ms = RetryBaseDelay.TotalMilliseconds * Math.Pow(2, Math.Clamp(attempt - 1, 0, 30));
        return TimeSpan.FromMilliseconds(Math.Min(ms, RetryMaxDelay.TotalMilliseconds));
    }
}
