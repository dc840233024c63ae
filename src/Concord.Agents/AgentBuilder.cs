using Concord.Coordination.Streams;
using Microsoft.Extensions.AI;

namespace Concord.Agents;

/// <summary>Handles one queue task. Return normally to ack it (with its effects); throw to have it retried.</summary>
public delegate Task AgentTaskHandler(AgentTaskContext context, CancellationToken cancellationToken);

/// <summary>Handles one stream event. Return normally to move past it; throw to have it retried.</summary>
public delegate Task AgentEventHandler(AgentEventContext context, CancellationToken cancellationToken);

/// <summary>Runs once when the runtime starts (a producer, a planner, a poller).</summary>
public delegate Task AgentStartHandler(AgentContext context, CancellationToken cancellationToken);

/// <summary>Declares what one agent does: the queues it consumes, the streams it follows, what it runs at start.</summary>
/// <remarks>Configure before the runtime starts; not thread-safe.</remarks>
public sealed class AgentBuilder
{
    internal AgentBuilder(AgentIdentity identity) => Identity = identity;

    /// <summary>The agent.</summary>
    public AgentIdentity Identity { get; }

    internal int MaxConcurrency { get; private set; } = 1;

    internal List<(string Queue, AgentTaskHandler Handler)> TaskHandlers { get; } = [];

    internal List<EventSubscription> EventHandlers { get; } = [];

    internal List<AgentStartHandler> StartHandlers { get; } = [];

    internal Func<AgentContext, IChatClient>? ChatClientFactory { get; private set; }

    /// <summary>
    /// At most <paramref name="maxConcurrency"/> of this agent's tasks are handled at once, over all its queues (the agent
    /// runs that many workers). <value>Default: 1.</value>
    /// </summary>
    public AgentBuilder WithConcurrency(int maxConcurrency)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxConcurrency, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxConcurrency, 1000);
        MaxConcurrency = maxConcurrency;
        return this;
    }

    /// <summary>Consumes <paramref name="queue"/>: each task is leased by one worker of one agent, handled, and acked.</summary>
    public AgentBuilder OnTask(string queue, AgentTaskHandler handler)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(queue);
        ArgumentNullException.ThrowIfNull(handler);
        if (TaskHandlers.Exists(h => h.Queue == queue)) throw new ArgumentException($"Agent '{Identity.Id}' already handles queue '{queue}'", nameof(queue));
        TaskHandlers.Add((queue, handler));
        return this;
    }

    /// <summary>
    /// Follows the streams <paramref name="filter"/> selects, in order, from the stored checkpoint of consumer group
    /// <paramref name="group"/> (default <c>{agent id}.{n}</c>); a new group starts at the first event unless
    /// <paramref name="startFromEnd"/>.
    /// </summary>
    public AgentBuilder OnEvent(StreamFilter filter, AgentEventHandler handler, string? group = null, bool startFromEnd = false)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentNullException.ThrowIfNull(handler);
        EventHandlers.Add(new EventSubscription(filter, group ?? $"{Identity.Id}.{EventHandlers.Count}", handler, startFromEnd));
        return this;
    }

    /// <summary>Follows one stream (see <see cref="OnEvent(StreamFilter, AgentEventHandler, string?, bool)"/>).</summary>
    public AgentBuilder OnEvent(string stream, AgentEventHandler handler, string? group = null, bool startFromEnd = false) =>
        OnEvent(StreamFilter.ForStream(stream), handler, group, startFromEnd);

    /// <summary>Runs <paramref name="handler"/> once when the runtime starts.</summary>
    public AgentBuilder OnStart(AgentStartHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        StartHandlers.Add(handler);
        return this;
    }

    /// <summary>
    /// Gives the agent a chat client (created once, from its context, e.g. a <see cref="Chat.SimulatedChatClient"/> seeded
    /// from <see cref="AgentContext.Random"/> or a real model's client); <see cref="AgentContext.ChatClient"/> wraps it with the
    /// agent's Concord tools.
    /// </summary>
    public AgentBuilder WithChatClient(Func<AgentContext, IChatClient> factory)
    {
        ArgumentNullException.ThrowIfNull(factory);
        ChatClientFactory = factory;
        return this;
    }
}

internal sealed record EventSubscription(StreamFilter Filter, string Group, AgentEventHandler Handler, bool StartFromEnd);

/// <summary>What happened, in a <see cref="AgentJournalEntry"/>.</summary>
public enum AgentJournalKind
{
    /// <summary>A start handler began.</summary>
    Started,

    /// <summary>A task was handled and acked (with its effects).</summary>
    TaskCompleted,

    /// <summary>A handler threw: the agent crashed on this task, was restarted, and the task went back to its queue.</summary>
    TaskFailed,

    /// <summary>A task used its last attempt and went to the queue's dead letters.</summary>
    TaskDeadLettered,

    /// <summary>The lease was lost before the ack (it expired and someone else took the task): nothing was applied.</summary>
    LeaseLost,

    /// <summary>The runtime stopped while the task ran: it was given back to the queue.</summary>
    TaskReturned,

    /// <summary>An event was handled.</summary>
    EventHandled,

    /// <summary>An event handler threw; the event will be retried.</summary>
    EventFailed,

    /// <summary>An event failed on every attempt and was dead-lettered.</summary>
    EventDeadLettered,

    /// <summary>A start handler threw.</summary>
    StartFailed,

    /// <summary>A note from the agent (<see cref="AgentContext.Log"/>).</summary>
    Note,
}

/// <summary>One line of the runtime's journal.</summary>
/// <param name="At">Time on the runtime's clock.</param>
/// <param name="Agent">Agent id.</param>
/// <param name="Kind">What happened.</param>
/// <param name="Message">Details in words.</param>
/// <param name="Queue">Queue (or stream) involved, if any.</param>
/// <param name="TaskId">Task (or event) id, if any.</param>
/// <param name="Attempt">Attempt number, if any.</param>
public sealed record AgentJournalEntry(DateTimeOffset At, string Agent, AgentJournalKind Kind, string Message, string? Queue = null, string? TaskId = null, int Attempt = 0);

/// <summary>Counters of one agent.</summary>
/// <param name="Agent">Agent id.</param>
/// <param name="Completed">Tasks handled and acked.</param>
/// <param name="Failed">Handler failures (crashes) on tasks; each returned the task to its queue.</param>
/// <param name="DeadLettered">Tasks dead-lettered after their last attempt.</param>
/// <param name="LeasesLost">Tasks whose lease was lost before the ack.</param>
/// <param name="Events">Events handled.</param>
/// <param name="EventFailures">Event handler failures.</param>
/// <param name="MaxInFlight">Most tasks the agent handled at once.</param>
public sealed record AgentStats(string Agent, int Completed, int Failed, int DeadLettered, int LeasesLost, int Events, int EventFailures, int MaxInFlight);
