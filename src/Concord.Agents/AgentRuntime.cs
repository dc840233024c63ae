using System.Diagnostics;
using System.Text.Json;
using Concord.Agents.Runtime;
using Concord.Coordination.Locks;
using Concord.Coordination.Queues;
using Concord.Coordination.Streams;

namespace Concord.Agents;

/// <summary>
/// Runs many agents concurrently against one Concord namespace (embedded engine, or a server through the HTTP client).
/// Agents hand work to each other through queue tasks and stream events; each agent has an identity that flows into its
/// session, causal contexts and traces; each has a concurrency limit; a handler that throws is a crash: the agent is
/// restarted and the task goes back to its queue (or, after its last attempt, to the dead letters).
/// </summary>
/// <remarks>
/// <para>
/// The runtime is a set of <em>flows</em>: per agent, one per start handler, <c>MaxConcurrency</c> workers sharing its
/// queues, and one per stream subscription. A flow waits only on timers of <see cref="AgentRuntimeOptions.TimeProvider"/>:
/// an idle worker sleeps on a doorbell timer that an enqueue through the runtime re-arms for "now" (event-driven, not
/// polling), a thinking handler sleeps on <see cref="AgentContext.DelayAsync"/>. No thread, timer or <c>Task.Run</c> of its
/// own: <see cref="CreateFlows"/> hands the flows to any driver, so the same agent system runs in real time
/// (<see cref="RunAsync"/>) or deterministically in the lab's virtual time (<c>VirtualTimeProvider.RunAsync(runtime.CreateFlows())</c>),
/// where it can be race-tested.
/// </para>
/// <para>
/// Delivery is at-least-once, effects exactly-once when the handler uses them: effects added with
/// <see cref="AgentTaskContext.AddEffect"/> commit in one transaction with the task's ack, and writes made with
/// <see cref="AgentTaskContext.IdempotencyKey"/> replay on retries.
/// </para>
/// <para>Thread-safe. Configure agents before the runtime starts; it runs once.</para>
/// </remarks>
public sealed class AgentRuntime
{
    private readonly Lock _gate = new();
    private readonly List<AgentBuilder> _builders = [];
    private readonly Dictionary<string, AgentState> _agents = new(StringComparer.Ordinal);
    private readonly List<Flow> _flows = [];
    private readonly Dictionary<string, List<Flow>> _queueFlows = new(StringComparer.Ordinal);
    private readonly List<(StreamFilter Filter, Flow Flow)> _eventFlows = [];
    private readonly List<AgentJournalEntry> _journal = [];
    private readonly IQueueService _rawQueues;
    private readonly IStreamService _rawStreams;
    private int _active;
    private bool _started;
    private bool _stopping;

    /// <summary>Creates a runtime for namespace <paramref name="ns"/> of <paramref name="store"/>.</summary>
    public AgentRuntime(IConcordStore store, string ns, AgentRuntimeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentException.ThrowIfNullOrWhiteSpace(ns);
        Options = options ?? new AgentRuntimeOptions();
        Options.Validate();
        Store = store;
        Namespace = ns;
        _rawQueues = Options.Queues ?? new StoreQueueService(store, new QueueServiceOptions { TimeProvider = Time });
        _rawStreams = Options.Streams ?? new StoreStreamService(store, new StreamServiceOptions { TimeProvider = Time });
        Queues = new NotifyingQueueService(_rawQueues, this);
        Streams = new NotifyingStreamService(_rawStreams, this);
        Locks = Options.Locks ?? new StoreLockService(store, Time);
    }

    /// <summary>The store.</summary>
    public IConcordStore Store { get; }

    /// <summary>The namespace every agent works in.</summary>
    public string Namespace { get; }

    /// <summary>The settings.</summary>
    public AgentRuntimeOptions Options { get; }

    /// <summary>The clock.</summary>
    public TimeProvider Time => Options.TimeProvider;

    /// <summary>Queues; enqueues, nacks and acks through it wake the consuming agents at once.</summary>
    public IQueueService Queues { get; }

    /// <summary>Streams; appends through it wake the subscribed agents at once.</summary>
    public IStreamService Streams { get; }

    /// <summary>Locks.</summary>
    public ILockService Locks { get; }

    /// <summary>The agents, in the order they were added.</summary>
    public IReadOnlyList<AgentIdentity> Agents
    {
        get
        {
            lock (_gate) return [.. _builders.Select(b => b.Identity)];
        }
    }

    /// <summary>True once <see cref="Stop"/> was called or <see cref="AgentRuntimeOptions.StopWhenIdle"/> found nothing left to do.</summary>
    public bool IsStopping
    {
        get
        {
            lock (_gate) return _stopping;
        }
    }

    /// <summary>Everything that happened, in order.</summary>
    public IReadOnlyList<AgentJournalEntry> Journal
    {
        get
        {
            lock (_gate) return [.. _journal];
        }
    }

    /// <summary>Adds an agent; configure it with the returned builder before the runtime starts.</summary>
    public AgentBuilder AddAgent(AgentIdentity identity)
    {
        ArgumentNullException.ThrowIfNull(identity);
        identity.Validate();
        lock (_gate)
        {
            if (_started) throw new InvalidOperationException("Agents must be added before the runtime starts");
            if (_builders.Exists(b => b.Identity.Id == identity.Id)) throw new ArgumentException($"An agent with id '{identity.Id}' was already added", nameof(identity));
            var builder = new AgentBuilder(identity);
            _builders.Add(builder);
            return builder;
        }
    }

    /// <summary>Adds an agent by id (and display name).</summary>
    public AgentBuilder AddAgent(string id, string? name = null, string? description = null) => AddAgent(new AgentIdentity(id, name, description));

    /// <summary>The context of agent <paramref name="agentId"/> (available once the runtime started).</summary>
    public AgentContext GetContext(string agentId)
    {
        lock (_gate)
        {
            return _agents.TryGetValue(agentId, out var agent) ? agent.Context : throw new KeyNotFoundException($"No started agent with id '{agentId}'");
        }
    }

    /// <summary>Counters of every agent, in the order they were added.</summary>
    public IReadOnlyList<AgentStats> GetStats()
    {
        lock (_gate) return [.. _builders.Where(b => _agents.ContainsKey(b.Identity.Id)).Select(b => _agents[b.Identity.Id].Stats())];
    }

    /// <summary>
    /// Starts the runtime and returns its flows, for a driver to run: each completes when the runtime stops. Use this to
    /// run the agents under a deterministic scheduler (the lab's <c>VirtualTimeProvider.RunAsync</c>); otherwise call
    /// <see cref="RunAsync"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The runtime was already started, or an agent has nothing to do.</exception>
    public IReadOnlyList<Func<CancellationToken, Task>> CreateFlows()
    {
        lock (_gate)
        {
            if (_started) throw new InvalidOperationException("The runtime was already started; it runs once");
            _started = true;
            var result = new List<Func<CancellationToken, Task>>();
            foreach (var builder in _builders)
            {
                if (builder.TaskHandlers.Count == 0 && builder.EventHandlers.Count == 0 && builder.StartHandlers.Count == 0)
                    throw new InvalidOperationException($"Agent '{builder.Identity.Id}' handles no queue, no stream and has no start handler");
                var agent = new AgentState(this, builder);
                _agents[builder.Identity.Id] = agent;
                foreach (var start in builder.StartHandlers)
                {
                    var flow = NewFlow(agent);
                    result.Add(ct => RunStartAsync(flow, start, ct));
                }
                if (builder.TaskHandlers.Count > 0)
                {
                    for (var slot = 0; slot < builder.MaxConcurrency; slot++)
                    {
                        var flow = NewFlow(agent);
                        foreach (var (queue, _) in builder.TaskHandlers)
                        {
                            if (!_queueFlows.TryGetValue(queue, out var list)) _queueFlows[queue] = list = [];
                            list.Add(flow);
                        }
                        var first = slot;
                        result.Add(ct => RunWorkerAsync(flow, first, ct));
                    }
                }
                foreach (var subscription in builder.EventHandlers)
                {
                    var flow = NewFlow(agent);
                    _eventFlows.Add((subscription.Filter, flow));
                    result.Add(ct => RunEventsAsync(flow, subscription, ct));
                }
            }
            return result;
        }
    }

    /// <summary>
    /// Runs every agent in real time until <paramref name="cancellationToken"/> is cancelled, <see cref="Stop"/> is called,
    /// or (with <see cref="AgentRuntimeOptions.StopWhenIdle"/>) nothing is left to do. On cancellation, tasks being handled
    /// are given back to their queues. Also watches the store for work produced elsewhere
    /// (<see cref="AgentRuntimeOptions.WatchForExternalWork"/>).
    /// </summary>
    public async Task RunAsync(CancellationToken cancellationToken = default)
    {
        var flows = CreateFlows();
        using var stopWatch = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var watch = Options.WatchForExternalWork ? WatchExternalWorkAsync(stopWatch.Token) : Task.CompletedTask;
        try
        {
            await Task.WhenAll(flows.Select(f => f(cancellationToken))).ConfigureAwait(false);
        }
        finally
        {
            await stopWatch.CancelAsync().ConfigureAwait(false);
            await watch.ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Stops gracefully: handlers running now finish (and ack), then every flow ends; queued tasks stay queued for the next run.
    /// </summary>
    public void Stop()
    {
        List<Flow> flows;
        lock (_gate)
        {
            if (_stopping) return;
            _stopping = true;
            flows = [.. _flows];
        }
        foreach (var flow in flows) flow.Bell.Ring();
    }

    // ------------------------------------------------------------------ flows

    private Flow NewFlow(AgentState agent)
    {
        // Caller holds _gate.
        var flow = new Flow(agent, new Doorbell(Time));
        _flows.Add(flow);
        _active++;
        return flow;
    }

    private async Task RunStartAsync(Flow flow, AgentStartHandler handler, CancellationToken cancellationToken)
    {
        var agent = flow.Agent;
        try
        {
            Record(agent.Identity.Id, AgentJournalKind.Started, "started");
            await handler(agent.Context, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A start handler is not retried: it is the agent's own code, not a task someone handed it.
            Record(agent.Identity.Id, AgentJournalKind.StartFailed, $"start handler failed: {Describe(e)}");
        }
        finally
        {
            Done(flow);
        }
    }

    private async Task RunWorkerAsync(Flow flow, int slot, CancellationToken cancellationToken)
    {
        var agent = flow.Agent;
        var handlers = agent.Builder.TaskHandlers;
        var next = slot % handlers.Count;
        try
        {
            while (!cancellationToken.IsCancellationRequested && !IsStopping)
            {
                QueueLease? lease = null;
                var handlerIndex = 0;
                DateTimeOffset? wake = null;
                // Round-robin over the agent's queues, starting after the last one served, so no queue starves.
                for (var i = 0; i < handlers.Count && lease is null; i++)
                {
                    var index = (next + i) % handlers.Count;
                    var result = await _rawQueues.LeaseAsync(Namespace, handlers[index].Queue, agent.Identity.Id, Options.VisibilityTimeout,
                        TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
                    if (result.Lease is not null)
                    {
                        lease = result.Lease;
                        handlerIndex = index;
                        next = (index + 1) % handlers.Count;
                    }
                    else if (result.NextVisibleAt is { } at && (wake is null || at < wake))
                    {
                        wake = at;
                    }
                }
                if (lease is not null)
                {
                    await HandleTaskAsync(agent, handlers[handlerIndex].Handler, lease, cancellationToken).ConfigureAwait(false);
                    continue;
                }
                if (!await IdleAsync(flow, wake, cancellationToken).ConfigureAwait(false)) break;
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            Done(flow);
        }
    }

    private async Task HandleTaskAsync(AgentState agent, AgentTaskHandler handler, QueueLease lease, CancellationToken cancellationToken)
    {
        var id = agent.Identity.Id;
        var context = new AgentTaskContext(agent.Context, lease);
        using var activity = AgentTelemetry.StartInvoke(agent.Identity, lease.Queue, lease.TaskId, lease.Attempt, isStream: false);
        agent.Enter();
        try
        {
            await handler(context, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping, not failing: give the task back at once for the next run or another worker.
            await _rawQueues.NackAsync(context.Lease, "the agent was stopped while handling the task", TimeSpan.Zero, CancellationToken.None).ConfigureAwait(false);
            Record(id, AgentJournalKind.TaskReturned, "stopped while handling the task; it went back to the queue", lease.Queue, lease.TaskId, lease.Attempt);
            AgentTelemetry.Finish(activity, agent.Identity, "returned");
            OnQueueChanged(lease.Queue);
            return;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            await FailTaskAsync(agent, context, $"{Describe(e)}", activity, e).ConfigureAwait(false);
            return;
        }
        finally
        {
            agent.Exit();
        }

        // The ack commits the handler's effects in the same transaction: both or neither. Not cancellable: the work is done.
        var ack = await Queues.AckAsync(context.Lease, context.Effects, CancellationToken.None).ConfigureAwait(false);
        switch (ack.Status)
        {
            case AckStatus.Acked:
                agent.Count(s => s.Completed++);
                Record(id, AgentJournalKind.TaskCompleted, context.Effects.Count == 0 ? "done" : $"done; {context.Effects.Count} effect(s) committed with the ack",
                    lease.Queue, lease.TaskId, lease.Attempt);
                AgentTelemetry.Finish(activity, agent.Identity, "completed");
                break;
            case AckStatus.StaleReceipt:
                agent.Count(s => s.LeasesLost++);
                Record(id, AgentJournalKind.LeaseLost, $"the lease was lost before the ack ({ack.Message}); nothing was applied, the task's new holder will do it",
                    lease.Queue, lease.TaskId, lease.Attempt);
                AgentTelemetry.Finish(activity, agent.Identity, "lease_lost");
                break;
            default:
                await FailTaskAsync(agent, context, $"an effect's expectation failed ({ack.Conflict?.Conflict}: {ack.Message}); nothing was applied", activity, null).ConfigureAwait(false);
                break;
        }
    }

    private async Task FailTaskAsync(AgentState agent, AgentTaskContext context, string reason, Activity? activity, Exception? error)
    {
        var lease = context.Lease;
        var delay = Options.RetryDelay(lease.Attempt);
        var nack = await Queues.NackAsync(lease, reason, delay, CancellationToken.None).ConfigureAwait(false);
        var id = agent.Identity.Id;
        switch (nack.Status)
        {
            case NackStatus.Requeued:
                agent.Count(s => s.Failed++);
                Record(id, AgentJournalKind.TaskFailed,
                    $"crashed on attempt {lease.Attempt} of {lease.MaxAttempts}: {reason}; restarted, the task went back to the queue (visible again in {delay.TotalSeconds:0.###} s)",
                    lease.Queue, lease.TaskId, lease.Attempt);
                AgentTelemetry.Finish(activity, agent.Identity, "failed", error);
                break;
            case NackStatus.DeadLettered:
                agent.Count(s =>
                {
                    s.Failed++;
                    s.DeadLettered++;
                });
                Record(id, AgentJournalKind.TaskDeadLettered, $"crashed on its last attempt ({lease.Attempt} of {lease.MaxAttempts}): {reason}; the task went to the dead letters",
                    lease.Queue, lease.TaskId, lease.Attempt);
                AgentTelemetry.Finish(activity, agent.Identity, "dead_lettered", error);
                break;
            default:
                agent.Count(s =>
                {
                    s.Failed++;
                    s.LeasesLost++;
                });
                Record(id, AgentJournalKind.LeaseLost, $"crashed ({reason}) after its lease was lost; the task's new holder will do it", lease.Queue, lease.TaskId, lease.Attempt);
                AgentTelemetry.Finish(activity, agent.Identity, "lease_lost", error);
                break;
        }
    }

    private async Task RunEventsAsync(Flow flow, EventSubscription subscription, CancellationToken cancellationToken)
    {
        var agent = flow.Agent;
        try
        {
            var position = await _rawStreams.GetCheckpointAsync(Namespace, subscription.Group, cancellationToken).ConfigureAwait(false)
                ?? (subscription.StartFromEnd ? await _rawStreams.GetEndPositionAsync(Namespace, cancellationToken).ConfigureAwait(false) : StreamPosition.Start);
            while (!cancellationToken.IsCancellationRequested && !IsStopping)
            {
                var events = await _rawStreams.ReadAllAsync(Namespace, position, Options.EventPageSize, subscription.Filter, ReadDirection.Forward, cancellationToken).ConfigureAwait(false);
                if (events.Count == 0)
                {
                    if (!await IdleAsync(flow, null, cancellationToken).ConfigureAwait(false)) break;
                    continue;
                }
                foreach (var recorded in events)
                {
                    await HandleEventAsync(agent, subscription, recorded, cancellationToken).ConfigureAwait(false);
                    position = recorded.Position;
                    await _rawStreams.SaveCheckpointAsync(Namespace, subscription.Group, position, cancellationToken).ConfigureAwait(false);
                    if (IsStopping) break;
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            Done(flow);
        }
    }

    private async Task HandleEventAsync(AgentState agent, EventSubscription subscription, RecordedEvent recorded, CancellationToken cancellationToken)
    {
        var id = agent.Identity.Id;
        for (var attempt = 1; ; attempt++)
        {
            var context = new AgentEventContext(agent.Context, recorded, subscription.Group, attempt);
            using var activity = AgentTelemetry.StartInvoke(agent.Identity, recorded.Stream, recorded.Id, attempt, isStream: true);
            string? failure = null;
            Exception? error = null;
            try
            {
                await subscription.Handler(context, cancellationToken).ConfigureAwait(false);
                if (context.Effects.Count > 0)
                {
                    var handled = await _rawStreams.HandleOnceAsync(Namespace, subscription.Group, recorded, context.Effects, CancellationToken.None).ConfigureAwait(false);
                    if (handled.Status == HandleStatus.EffectConflict) failure = $"an effect's expectation failed ({handled.Conflict?.Conflict}); nothing was applied";
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw; // the checkpoint was not stored: the event is delivered again next run
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                failure = Describe(e);
                error = e;
            }
            if (failure is null)
            {
                agent.Count(s => s.Events++);
                Record(id, AgentJournalKind.EventHandled, $"handled {recorded.Type}", recorded.Stream, recorded.Id, attempt);
                AgentTelemetry.Finish(activity, agent.Identity, "completed");
                return;
            }
            agent.Count(s => s.EventFailures++);
            if (attempt >= Options.MaxEventAttempts)
            {
                Record(id, AgentJournalKind.EventDeadLettered, $"{recorded.Type} failed on all {attempt} attempts ({failure}); dead-lettered and skipped", recorded.Stream, recorded.Id, attempt);
                AgentTelemetry.Finish(activity, agent.Identity, "dead_lettered", error);
                await DeadLetterEventAsync(agent, recorded, failure).ConfigureAwait(false);
                return;
            }
            var delay = Options.RetryDelay(attempt);
            Record(id, AgentJournalKind.EventFailed, $"crashed on {recorded.Type} (attempt {attempt} of {Options.MaxEventAttempts}): {failure}; restarted, retrying in {delay.TotalSeconds:0.###} s",
                recorded.Stream, recorded.Id, attempt);
            AgentTelemetry.Finish(activity, agent.Identity, "failed", error);
            await agent.Context.DelayAsync(delay, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task DeadLetterEventAsync(AgentState agent, RecordedEvent recorded, string reason)
    {
        var data = JsonSerializer.SerializeToElement(new { stream = recorded.Stream, version = recorded.Version, eventId = recorded.Id, type = recorded.Type, data = recorded.Data, reason }, JsonDefaults.Web);
        // Deterministic event id: dead-lettering the same event twice (a crash in between) appends it once.
        await _rawStreams.AppendAsync(Namespace, "dead-letters/" + agent.Identity.Id, [new EventData("dead-letter", data, id: "dead:" + recorded.Id)], ExpectedVersion.Any,
            new AppendOptions { Agent = agent.Identity.Id, IdempotencyKey = $"dead-letter:{agent.Identity.Id}:{recorded.Id}" }, CancellationToken.None).ConfigureAwait(false);
    }

    // ------------------------------------------------------------------ idleness and wake-ups

    /// <summary>
    /// Puts a flow to sleep until rung, until <paramref name="wake"/> (a delayed task or a lease deadline), or for the idle
    /// poll interval. Returns false when the runtime is stopping.
    /// </summary>
    private async Task<bool> IdleAsync(Flow flow, DateTimeOffset? wake, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (flow.Bell.TakeRing()) return !_stopping; // work arrived since we looked: look again
            if (_stopping) return false;
            flow.Idle = true;
            flow.Pending = wake is not null;
            _active--;
            if (StopIfIdle()) return false;
        }
        var timeout = Options.IdlePollInterval;
        if (wake is { } at)
        {
            var due = at - Time.GetUtcNow();
            if (due < timeout) timeout = due < TimeSpan.FromMilliseconds(1) ? TimeSpan.FromMilliseconds(1) : due;
        }
        try
        {
            await flow.Bell.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            lock (_gate)
            {
                if (flow.Idle)
                {
                    flow.Idle = false;
                    _active++;
                }
            }
        }
        return !IsStopping;
    }

    private void Done(Flow flow)
    {
        lock (_gate)
        {
            if (flow.Done) return;
            flow.Done = true;
            if (flow.Idle) flow.Idle = false;
            else _active--;
            StopIfIdle();
        }
    }

    /// <summary>Caller holds _gate. With StopWhenIdle: when no flow is active and none expects delayed work, stop everyone.</summary>
    private bool StopIfIdle()
    {
        Debug.Assert(_active >= 0, "active flow count went negative");
        if (!Options.StopWhenIdle || _stopping || _active > 0) return false;
        foreach (var flow in _flows)
        {
            if (!flow.Done && flow.Pending) return false;
        }
        _stopping = true;
        // Ringing only re-arms timers (see Doorbell); no flow runs inside this lock.
        foreach (var flow in _flows)
        {
            if (!flow.Done) flow.Bell.Ring();
        }
        return true;
    }

    /// <summary>Wakes every worker of <paramref name="queue"/>: something there changed (new task, nack, group promotion).</summary>
    internal void OnQueueChanged(string queue)
    {
        lock (_gate)
        {
            if (_queueFlows.TryGetValue(queue, out var flows))
            {
                foreach (var flow in flows) Wake(flow);
            }
        }
    }

    /// <summary>Wakes every event flow whose filter selects <paramref name="stream"/>.</summary>
    internal void OnStreamAppended(string stream)
    {
        lock (_gate)
        {
            foreach (var (filter, flow) in _eventFlows)
            {
                if (filter.Stream is { } s ? s == stream : stream.StartsWith(filter.Prefix, StringComparison.Ordinal)) Wake(flow);
            }
        }
    }

    // Caller holds _gate.
    private void Wake(Flow flow)
    {
        if (flow.Done) return;
        if (flow.Idle)
        {
            flow.Idle = false;
            _active++;
        }
        flow.Bell.Ring();
    }

    private async Task WatchExternalWorkAsync(CancellationToken cancellationToken)
    {
        const string queuePrefix = StoreQueueService.KeyPrefix;
        var streamEvents = StoreStreamService.KeyPrefix + "e/";
        long from = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                from = from == 0 ? await Store.GetRevisionAsync(cancellationToken).ConfigureAwait(false) + 1 : from;
                await foreach (var change in Store.WatchAsync(Namespace, new WatchRequest { Prefix = "_sys/", FromRevision = from }, cancellationToken).ConfigureAwait(false))
                {
                    from = change.Revision + 1;
                    var key = change.Key;
                    if (key.StartsWith(queuePrefix, StringComparison.Ordinal))
                    {
                        var end = key.IndexOf('/', queuePrefix.Length);
                        if (end > 0) OnQueueChanged(key[queuePrefix.Length..end]);
                    }
                    else if (key.StartsWith(streamEvents, StringComparison.Ordinal))
                    {
                        var end = key.IndexOf("/@", streamEvents.Length, StringComparison.Ordinal);
                        if (end > 0) OnStreamAppended(key[streamEvents.Length..end]);
                    }
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (ConcordException e) when (e is WatchOverflowException or RevisionCompactedException)
            {
                // Fell behind: start again from now and let every agent look at its queues and streams once.
                from = 0;
                lock (_gate)
                {
                    foreach (var flow in _flows) Wake(flow);
                }
            }
        }
    }

    // ------------------------------------------------------------------ journal

    internal void Record(string agent, AgentJournalKind kind, string message, string? queue = null, string? taskId = null, int attempt = 0)
    {
        var entry = new AgentJournalEntry(Time.GetUtcNow(), agent, kind, message, queue, taskId, attempt);
        lock (_gate) _journal.Add(entry);
    }

    private static string Describe(Exception e) => $"{e.GetType().Name}: {e.Message}";

    private static int DeriveSeed(int seed, string agentId)
    {
        // FNV-1a over the id, mixed with the seed: stable across processes (unlike string.GetHashCode).
        var h = 2166136261u ^ (uint)seed;
        foreach (var c in agentId) h = unchecked((h ^ c) * 16777619u);
        return (int)(h & int.MaxValue);
    }

    private sealed class Flow(AgentState agent, Doorbell bell)
    {
        public AgentState Agent { get; } = agent;
        public Doorbell Bell { get; } = bell;

        // Guarded by the runtime's _gate.
        public bool Idle;
        public bool Pending;
        public bool Done;
    }

    private sealed class AgentState
    {
        private readonly Lock _gate = new();
        private readonly MutableStats _stats = new();
        private int _inFlight;

        public AgentState(AgentRuntime runtime, AgentBuilder builder)
        {
            Builder = builder;
            var random = new SeededRandomizer(DeriveSeed(runtime.Options.Seed, builder.Identity.Id));
            var session = new ConcordSession(runtime.Store, runtime.Namespace, builder.Identity.Id, new SessionOptions
            {
                TimeProvider = runtime.Time,
                Randomizer = new SeededRandomizer(DeriveSeed(runtime.Options.Seed ^ 0x5bd1e995, builder.Identity.Id)),
            });
            Context = new AgentContext(runtime, builder.Identity, session, random, builder.ChatClientFactory);
        }

        public AgentBuilder Builder { get; }

        public AgentIdentity Identity => Builder.Identity;

        public AgentContext Context { get; }

        public void Enter()
        {
            lock (_gate)
            {
                _inFlight++;
                _stats.MaxInFlight = Math.Max(_stats.MaxInFlight, _inFlight);
            }
        }

        public void Exit()
        {
            lock (_gate) _inFlight--;
        }

        public void Count(Action<MutableStats> change)
        {
            lock (_gate) change(_stats);
        }

        public AgentStats Stats()
        {
            lock (_gate)
            {
                return new AgentStats(Identity.Id, _stats.Completed, _stats.Failed, _stats.DeadLettered, _stats.LeasesLost, _stats.Events, _stats.EventFailures, _stats.MaxInFlight);
            }
        }
    }

    private sealed class MutableStats
    {
        public int Completed;
        public int Failed;
        public int DeadLettered;
        public int LeasesLost;
        public int Events;
        public int EventFailures;
        public int MaxInFlight;
    }
}
