using System.Text.Json;
using Concord.Agents.Tools;
using Concord.Coordination.Locks;
using Concord.Coordination.Queues;
using Concord.Coordination.Streams;
using Microsoft.Extensions.AI;

namespace Concord.Agents;

/// <summary>
/// Everything one agent works with, all carrying its identity: a <see cref="ConcordSession"/> (writes are recorded as the
/// agent's and carry its causal contexts), the queues, streams and locks, the clock, seeded randomness, Concord tools for
/// a model, and an optional chat client.
/// </summary>
/// <remarks>Thread-safe: the flows of one agent share it.</remarks>
public class AgentContext
{
    private readonly AgentRuntime _runtime;
    private readonly Lazy<IReadOnlyList<AIFunction>> _tools;
    private readonly Lazy<IChatClient?> _chat;

    internal AgentContext(AgentRuntime runtime, AgentIdentity identity, ConcordSession session, IRandomizer random, Func<AgentContext, IChatClient>? chatFactory)
    {
        _runtime = runtime;
        Identity = identity;
        Session = session;
        Random = random;
        _tools = new Lazy<IReadOnlyList<AIFunction>>(() => ConcordTools.Create(Session, new ConcordToolsOptions { Queues = Queues, Streams = Streams, Locks = Locks }));
        _chat = new Lazy<IChatClient?>(() => chatFactory?.Invoke(this).WithConcordTools(Tools));
    }

    /// <summary>Copy constructor for the per-task and per-event contexts.</summary>
    private protected AgentContext(AgentContext agent)
    {
        ArgumentNullException.ThrowIfNull(agent);
        _runtime = agent._runtime;
        Identity = agent.Identity;
        Session = agent.Session;
        Random = agent.Random;
        _tools = agent._tools;
        _chat = agent._chat;
    }

    /// <summary>The agent.</summary>
    public AgentIdentity Identity { get; }

    /// <summary>The agent's session on the runtime's namespace (agent id = <see cref="AgentIdentity.Id"/>).</summary>
    public ConcordSession Session { get; }

    /// <summary>The runtime.</summary>
    public AgentRuntime Runtime => _runtime;

    /// <summary>The runtime's clock: wait only through it (<see cref="DelayAsync"/>) so the agent runs in virtual time too.</summary>
    public TimeProvider Time => _runtime.Time;

    /// <summary>Seeded randomness of this agent (derived from the runtime's seed and the agent id).</summary>
    public IRandomizer Random { get; }

    /// <summary>Queues (enqueues through it wake the consuming agents at once).</summary>
    public IQueueService Queues => _runtime.Queues;

    /// <summary>Streams (appends through it wake the subscribed agents at once).</summary>
    public IStreamService Streams => _runtime.Streams;

    /// <summary>Locks (leases with fencing tokens).</summary>
    public ILockService Locks => _runtime.Locks;

    /// <summary>Concord tools bound to this agent's session, for a model (<see cref="ConcordTools.Create"/>).</summary>
    public IReadOnlyList<AIFunction> Tools => _tools.Value;

    /// <summary>
    /// The agent's chat client with <see cref="Tools"/> attached and invoked automatically, when the agent was given one
    /// (<see cref="AgentBuilder.WithChatClient"/>); null otherwise.
    /// </summary>
    public IChatClient? ChatClient => _chat.Value;

    /// <summary>Hands work to the agents consuming <paramref name="queue"/> (recorded as written by this agent).</summary>
    public ValueTask<EnqueueResult> EnqueueAsync(string queue, JsonElement payload, EnqueueOptions? options = null, CancellationToken cancellationToken = default) =>
        Queues.EnqueueAsync(Session.Namespace, queue, payload, (options ?? new EnqueueOptions()) with { Agent = Identity.Id }, cancellationToken);

    /// <summary>Serializes <paramref name="payload"/> and hands it to <paramref name="queue"/>.</summary>
    public ValueTask<EnqueueResult> EnqueueAsync<T>(string queue, T payload, EnqueueOptions? options = null, CancellationToken cancellationToken = default) =>
        EnqueueAsync(queue, JsonSerializer.SerializeToElement(payload, JsonDefaults.Web), options, cancellationToken);

    /// <summary>Publishes one event to <paramref name="stream"/> (no expected version), waking the agents subscribed to it.</summary>
    public ValueTask<AppendResult> PublishAsync<T>(string stream, string type, T data, CancellationToken cancellationToken = default) =>
        Streams.AppendAsync(Session.Namespace, stream, [EventData.From(type, data)], ExpectedVersion.Any, new AppendOptions { Agent = Identity.Id }, cancellationToken);

    /// <summary>Waits on the runtime's clock ("thinking", pacing). Completes at once for zero.</summary>
    public Task DelayAsync(TimeSpan delay, CancellationToken cancellationToken = default) =>
        delay <= TimeSpan.Zero ? Task.CompletedTask : Task.Delay(delay, Time, cancellationToken);

    /// <summary>
    /// Sends <paramref name="prompt"/> to <see cref="ChatClient"/> (tools invoked automatically until the model answers) and
    /// returns the final response.
    /// </summary>
    /// <exception cref="InvalidOperationException">The agent has no chat client.</exception>
    public Task<ChatResponse> AskAsync(string prompt, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var client = ChatClient ?? throw new InvalidOperationException($"Agent '{Identity.Id}' has no chat client; give it one with AgentBuilder.WithChatClient");
        return client.GetResponseAsync(prompt, options, cancellationToken);
    }

    /// <summary>Appends an entry to the runtime's journal, attributed to this agent.</summary>
    public void Log(string message) => _runtime.Record(Identity.Id, AgentJournalKind.Note, message);
}

/// <summary>The context of one queue task being handled: the agent's context plus the lease and the task's effects.</summary>
/// <remarks>Not thread-safe: one handler invocation uses it.</remarks>
public sealed class AgentTaskContext : AgentContext
{
    private readonly List<TxnOp> _effects = [];

    internal AgentTaskContext(AgentContext agent, QueueLease lease) : base(agent) => Lease = lease;

    /// <summary>The lease (task id, payload, attempt, deadline).</summary>
    public QueueLease Lease { get; private set; }

    /// <summary>The queue the task came from.</summary>
    public string Queue => Lease.Queue;

    /// <summary>The task id.</summary>
    public string TaskId => Lease.TaskId;

    /// <summary>The task's payload.</summary>
    public JsonElement Payload => Lease.Payload;

    /// <summary>1 on the first attempt, 2 on the first retry, …</summary>
    public int Attempt => Lease.Attempt;

    /// <summary>Deserializes <see cref="Payload"/>.</summary>
    public T? PayloadAs<T>() => Lease.Payload.Deserialize<T>(JsonDefaults.Web);

    /// <summary>
    /// An idempotency key unique to this task (and <paramref name="step"/>), the same on every attempt: writes made with it
    /// before a crash are replayed, not repeated, when the task is retried.
    /// </summary>
    public string IdempotencyKey(string step = "") => $"task:{Lease.Queue}:{Lease.TaskId}{(step.Length == 0 ? "" : ":" + step)}";

    /// <summary>The effects added so far.</summary>
    public IReadOnlyList<TxnOp> Effects => _effects;

    /// <summary>
    /// Adds a write to commit in the same transaction as the task's ack, after the handler returns: the task completes
    /// and its effects apply exactly once, or neither happens (then the task is retried).
    /// </summary>
    public void AddEffect(TxnOp op)
    {
        ArgumentNullException.ThrowIfNull(op);
        _effects.Add(op);
    }

    /// <summary>Pushes the lease's deadline to now + <paramref name="visibility"/> (default: the runtime's visibility timeout).</summary>
    /// <returns>False when the lease was already lost (the task belongs to someone else now: stop working on it).</returns>
    public async ValueTask<bool> ExtendLeaseAsync(TimeSpan? visibility = null, CancellationToken cancellationToken = default)
    {
        var result = await Queues.ExtendAsync(Lease, visibility ?? Runtime.Options.VisibilityTimeout, cancellationToken).ConfigureAwait(false);
        if (result.Lease is { } lease) Lease = lease;
        return result.IsExtended;
    }
}

/// <summary>The context of one stream event being handled.</summary>
/// <remarks>Not thread-safe: one handler invocation uses it.</remarks>
public sealed class AgentEventContext : AgentContext
{
    private readonly List<TxnOp> _effects = [];

    internal AgentEventContext(AgentContext agent, RecordedEvent recordedEvent, string group, int attempt) : base(agent)
    {
        Event = recordedEvent;
        Group = group;
        Attempt = attempt;
    }

    /// <summary>The event.</summary>
    public RecordedEvent Event { get; }

    /// <summary>The consumer group whose checkpoint tracks this handler.</summary>
    public string Group { get; }

    /// <summary>1 on the first attempt, 2 on the first retry, …</summary>
    public int Attempt { get; }

    /// <summary>The effects added so far.</summary>
    public IReadOnlyList<TxnOp> Effects => _effects;

    /// <summary>
    /// Adds a write to commit with a handled-marker for (group, event id) after the handler returns, so an event delivered
    /// again (after a crash, before the checkpoint was stored) applies its effects once.
    /// </summary>
    public void AddEffect(TxnOp op)
    {
        ArgumentNullException.ThrowIfNull(op);
        _effects.Add(op);
    }
}
