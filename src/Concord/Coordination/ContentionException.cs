namespace Concord.Coordination;

/// <summary>
/// A coordination operation lost its compare-and-swap race more often than its configured limit (other clients kept
/// changing the same records). Nothing was applied by the failed attempt; retrying later usually succeeds.
/// </summary>
public sealed class ContentionException(string operation, int attempts)
    : ConcordException($"{operation} lost {attempts} compare-and-swap races in a row; retry later")
{
    /// <summary>The operation that gave up.</summary>
    public string Operation { get; } = operation;

    /// <summary>Attempts made.</summary>
    public int Attempts { get; } = attempts;

    /// <inheritdoc />
    public override bool IsTransient => true;

    /// <inheritdoc />
    public override string Code => "contention";
}

/// <summary>
/// A queue holds <see cref="Queues.QueueServiceOptions.MaxTasks"/> unfinished tasks, so a prepared enqueue was refused
/// (<see cref="Queues.IQueueService.EnqueueAsync"/> returns <see cref="Queues.EnqueueStatus.QueueFull"/> instead).
/// Transient: it clears as consumers ack tasks.
/// </summary>
public sealed class QueueFullException(string queue, long tasks, int limit)
    : ConcordException($"Queue '{queue}' holds {tasks} unfinished tasks, its limit is {limit}; retry after consumers drain it")
{
    /// <summary>The queue.</summary>
    public string Queue { get; } = queue;

    /// <summary>Unfinished tasks counted (dead letters included).</summary>
    public long Tasks { get; } = tasks;

    /// <summary>The limit (<see cref="Queues.QueueServiceOptions.MaxTasks"/>).</summary>
    public int Limit { get; } = limit;

    /// <inheritdoc />
    public override bool IsTransient => true;

    /// <inheritdoc />
    public override string Code => "queue-full";
}
