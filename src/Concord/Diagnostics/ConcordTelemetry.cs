using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Concord.Diagnostics;

/// <summary>
/// The <see cref="ActivitySource"/> and <see cref="Meter"/> named <c>Concord</c> (DESIGN.md "Observability").
/// Listen with OpenTelemetry (<c>AddSource("Concord")</c>, <c>AddMeter("Concord")</c>) or any ActivityListener.
/// </summary>
public static class ConcordTelemetry
{
    /// <summary>Name of the activity source and the meter.</summary>
    public const string Name = "Concord";

    /// <summary>Spans: one per store operation, plus retry events.</summary>
    public static ActivitySource ActivitySource { get; } = new(Name, "1.0.0");

    /// <summary>Metrics.</summary>
    public static Meter Meter { get; } = new(Name, "1.0.0");

    /// <summary><c>concord.operations</c>: operations by <c>concord.operation</c> and <c>concord.outcome</c> (applied, conflict, error, read).</summary>
    public static Counter<long> Operations { get; } = Meter.CreateCounter<long>("concord.operations", "{operation}", "Store operations by kind and outcome");

    /// <summary><c>concord.conflicts</c>: conflicts by <c>concord.conflict</c> kind.</summary>
    public static Counter<long> Conflicts { get; } = Meter.CreateCounter<long>("concord.conflicts", "{conflict}", "Writes refused because an expectation did not hold");

    /// <summary><c>concord.retries</c>: re-attempts by retry helpers (UpdateAsync, RunTransactionAsync).</summary>
    public static Counter<long> Retries { get; } = Meter.CreateCounter<long>("concord.retries", "{retry}", "Re-attempts after a conflict");

    /// <summary><c>concord.idempotent_replays</c>: calls answered from the idempotency store.</summary>
    public static Counter<long> IdempotentReplays { get; } = Meter.CreateCounter<long>("concord.idempotent_replays", "{replay}", "Mutations answered with a stored result");

    /// <summary>Idempotency records the embedded engine forgot before their retention ended, to stay within its memory limit.</summary>
    public static Counter<long> IdempotencyEvictions { get; } = Meter.CreateCounter<long>("concord.idempotency.evictions", "{record}", "Idempotency records forgotten early to bound memory");

    /// <summary><c>concord.operation.duration</c>: latency of store operations in seconds.</summary>
    public static Histogram<double> Duration { get; } = Meter.CreateHistogram<double>("concord.operation.duration", "s", "Latency of store operations");

    /// <summary><c>concord.lock.wait</c>: time spent waiting for locks, by outcome.</summary>
    public static Histogram<double> LockWait { get; } = Meter.CreateHistogram<double>("concord.lock.wait", "s", "Time from lock request to grant or give-up");

    /// <summary><c>concord.lease.lost</c>: leases lost by expiry (not released by their holder).</summary>
    public static Counter<long> LeasesLost { get; } = Meter.CreateCounter<long>("concord.lease.lost", "{lease}", "Leases that expired while held");

    /// <summary><c>concord.queue.enqueued</c>: tasks enqueued (duplicates excluded), by <c>messaging.destination.name</c>.</summary>
    public static Counter<long> QueueEnqueued { get; } = Meter.CreateCounter<long>("concord.queue.enqueued", "{task}", "Tasks enqueued");

    /// <summary>
    /// <c>concord.queue.depth</c>: tasks not yet acked or deleted (ready, delayed, waiting, leased, dead), by queue, as
    /// the sum of this process's changes: +1 per enqueue, −1 per ack or deleted dead letter. Sum across processes.
    /// </summary>
    public static UpDownCounter<long> QueueDepth { get; } = Meter.CreateUpDownCounter<long>("concord.queue.depth", "{task}", "Tasks in the queue (not yet acked)");

    /// <summary><c>concord.queue.age</c>: age of a task (since enqueue) when it is leased, in seconds.</summary>
    public static Histogram<double> QueueAge { get; } = Meter.CreateHistogram<double>("concord.queue.age", "s", "Time from enqueue to lease");

    /// <summary><c>concord.queue.dead_letters</c>: tasks dead-lettered after their last attempt, by queue.</summary>
    public static Counter<long> DeadLetters { get; } = Meter.CreateCounter<long>("concord.queue.dead_letters", "{task}", "Tasks dead-lettered");

    /// <summary><c>concord.stream.appended</c>: events appended, by stream.</summary>
    public static Counter<long> StreamAppended { get; } = Meter.CreateCounter<long>("concord.stream.appended", "{event}", "Stream events appended");

    /// <summary>
    /// The W3C <c>traceparent</c> of <see cref="Activity.Current"/>, or null when there is no current activity or it
    /// does not use the W3C id format. Queues and streams store it with each task and event.
    /// </summary>
    public static string? CurrentTraceParent() => Activity.Current is { IdFormat: ActivityIdFormat.W3C } a ? a.Id : null;

    /// <summary>
    /// Starts <c>concord.queue.process</c>: a consumer span for handling a leased task, a child of the current activity
    /// and linked to the producer's span (<see cref="Coordination.Queues.QueueLease.TraceParent"/>). Dispose it when the
    /// task is handled. Null when nobody listens.
    /// </summary>
    public static Activity? StartQueueProcess(Coordination.Queues.QueueLease lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var activity = StartLinked("concord.queue.process", ActivityKind.Consumer, lease.TraceParent);
        if (activity is null) return null;
        TagMessaging(activity, lease.Namespace, lease.Queue, lease.TaskId, "process");
        activity.SetTag(Tags.AgentId, lease.Consumer);
        activity.SetTag(Tags.DeliveryAttempt, lease.Attempt);
        return activity;
    }

    /// <summary>
    /// Starts <c>concord.stream.deliver</c>: a consumer span for handling one stream event, a child of the current
    /// activity and linked to the appender's span (<see cref="Coordination.Streams.RecordedEvent.TraceParent"/>).
    /// Null when nobody listens.
    /// </summary>
    public static Activity? StartStreamDeliver(string ns, Coordination.Streams.RecordedEvent recordedEvent, string? consumerGroup = null)
    {
        ArgumentNullException.ThrowIfNull(recordedEvent);
        var activity = StartLinked("concord.stream.deliver", ActivityKind.Consumer, recordedEvent.TraceParent);
        if (activity is null) return null;
        TagMessaging(activity, ns, recordedEvent.Stream, recordedEvent.Id, "process");
        activity.SetTag(Tags.StreamVersion, recordedEvent.Version);
        activity.SetTag(Tags.StreamPosition, recordedEvent.Position.ToString());
        if (consumerGroup is not null) activity.SetTag(Tags.ConsumerGroup, consumerGroup);
        return activity;
    }

    /// <summary>
    /// Starts a span on <see cref="ActivitySource"/>, a child of <see cref="Activity.Current"/>, linked to the span
    /// identified by the W3C <paramref name="traceParent"/> (no link when null or malformed). Null when nobody listens.
    /// </summary>
    public static Activity? StartLinked(string name, ActivityKind kind, string? traceParent, DateTimeOffset startTime = default)
    {
        if (!ActivitySource.HasListeners()) return null;
        ActivityLink[]? links = traceParent is not null && ActivityContext.TryParse(traceParent, null, isRemote: true, out var producer)
            ? [new ActivityLink(producer)]
            : null;
        return ActivitySource.StartActivity(kind, default(ActivityContext), tags: null, links: links, startTime: startTime, name: name);
    }

    internal static void TagMessaging(Activity activity, string ns, string destination, string? messageId, string operation)
    {
        activity.SetTag(Tags.Namespace, ns);
        activity.SetTag(Tags.MessagingSystem, "concord");
        activity.SetTag(Tags.MessagingDestination, destination);
        activity.SetTag(Tags.MessagingOperation, operation);
        if (messageId is not null) activity.SetTag(Tags.MessagingMessageId, messageId);
    }

    /// <summary>Semantic attribute names.</summary>
    public static class Tags
    {
        /// <summary>Namespace.</summary>
        public const string Namespace = "concord.namespace";
        /// <summary>Key.</summary>
        public const string Key = "concord.key";
        /// <summary>Operation kind (get, put, patch, delete, txn, list, watch).</summary>
        public const string Operation = "concord.operation";
        /// <summary>Outcome: applied, conflict, error, read.</summary>
        public const string Outcome = "concord.outcome";
        /// <summary>Expected version, when the write stated one.</summary>
        public const string ExpectedVersion = "concord.expected_version";
        /// <summary>Version after the write, or the current version on conflict.</summary>
        public const string Version = "concord.version";
        /// <summary>Commit or read revision.</summary>
        public const string Revision = "concord.revision";
        /// <summary>Conflict kind.</summary>
        public const string Conflict = "concord.conflict";
        /// <summary>Retry attempt (1-based).</summary>
        public const string RetryAttempt = "concord.retry.attempt";
        /// <summary>Fencing token on a fenced write.</summary>
        public const string FenceToken = "concord.fence.token";
        /// <summary>Lock of a fenced write.</summary>
        public const string FenceLock = "concord.fence.lock";
        /// <summary>True for idempotent replays.</summary>
        public const string Replayed = "concord.idempotent.replayed";
        /// <summary>Causal context (version vector, <c>actor:counter,…</c>) of the version read or written.</summary>
        public const string CausalContext = "concord.causal.context";
        /// <summary>Dot (<c>actor:counter</c>) of the version read or written.</summary>
        public const string CausalDot = "concord.causal.dot";
        /// <summary>True when the write did not descend from the version it replaced.</summary>
        public const string CausalConcurrent = "concord.causal.concurrent";
        /// <summary>Causal context the writer sent (what it had seen).</summary>
        public const string CausalContextSent = "concord.causal.context_sent";
        /// <summary>Messaging semantic convention: <c>concord</c>.</summary>
        public const string MessagingSystem = "messaging.system";
        /// <summary>Messaging semantic convention: the queue or stream.</summary>
        public const string MessagingDestination = "messaging.destination.name";
        /// <summary>Messaging semantic convention: send, receive or process.</summary>
        public const string MessagingOperation = "messaging.operation.type";
        /// <summary>Messaging semantic convention: task id or event id.</summary>
        public const string MessagingMessageId = "messaging.message.id";
        /// <summary>Delivery attempt of a queue task (1 = first lease).</summary>
        public const string DeliveryAttempt = "messaging.delivery.attempt";
        /// <summary>Consumer group of a stream subscription.</summary>
        public const string ConsumerGroup = "messaging.consumer.group.name";
        /// <summary>Version of an event in its stream.</summary>
        public const string StreamVersion = "concord.stream.version";
        /// <summary>Global position (revision:index) of a stream event.</summary>
        public const string StreamPosition = "concord.stream.position";
        /// <summary>GenAI semantic convention: agent id.</summary>
        public const string AgentId = "gen_ai.agent.id";
        /// <summary>GenAI semantic convention: agent name.</summary>
        public const string AgentName = "gen_ai.agent.name";
    }
}
