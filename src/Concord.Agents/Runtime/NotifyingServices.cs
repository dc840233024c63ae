using System.Text.Json;
using Concord.Coordination.Queues;
using Concord.Coordination.Streams;

namespace Concord.Agents.Runtime;

/// <summary>
/// The runtime's view of the queues: every call goes to the inner service, and a change that can make a task leasable
/// (enqueue, nack, ack promoting a group's next task or ending a lease, requeue, reclaim) wakes the runtime's workers of that queue before
/// the call returns, so the handoff is event-driven and, under a virtual clock, deterministic.
/// </summary>
internal sealed class NotifyingQueueService(IQueueService inner, AgentRuntime runtime) : IQueueService
{
    private void Changed(string ns, string queue)
    {
        if (ns == runtime.Namespace) runtime.OnQueueChanged(queue);
    }

    public async ValueTask<EnqueueResult> EnqueueAsync(string ns, string queue, JsonElement payload, EnqueueOptions? options = null, CancellationToken cancellationToken = default)
    {
        var result = await inner.EnqueueAsync(ns, queue, payload, options, cancellationToken).ConfigureAwait(false);
        if (result.IsEnqueued) Changed(ns, queue);
        return result;
    }

    // The caller commits these operations in its own transaction, so there is nothing to notify yet.
    public ValueTask<PreparedEnqueue> PrepareEnqueueAsync(string ns, string queue, JsonElement payload, EnqueueOptions? options = null, CancellationToken cancellationToken = default) =>
        inner.PrepareEnqueueAsync(ns, queue, payload, options, cancellationToken);

    public ValueTask<QueueListPage> ListQueuesAsync(string ns, string? after = null, int limit = 100, CancellationToken cancellationToken = default) =>
        inner.ListQueuesAsync(ns, after, limit, cancellationToken);

    public ValueTask<LeaseResult> LeaseAsync(string ns, string queue, string consumer, TimeSpan visibilityTimeout, TimeSpan wait = default, CancellationToken cancellationToken = default) =>
        inner.LeaseAsync(ns, queue, consumer, visibilityTimeout, wait, cancellationToken);

    public async ValueTask<AckResult> AckAsync(QueueLease lease, IReadOnlyList<TxnOp>? effects = null, CancellationToken cancellationToken = default)
    {
        var result = await inner.AckAsync(lease, effects, cancellationToken).ConfigureAwait(false);
        // An ack can promote a group's next task, and it ends a lease idle workers may be waiting out: let them look again.
        if (result.IsAcked) Changed(lease.Namespace, lease.Queue);
        return result;
    }

    public ValueTask<PreparedQueueOps> PrepareAckAsync(QueueLease lease, CancellationToken cancellationToken = default) => inner.PrepareAckAsync(lease, cancellationToken);

    public async ValueTask<NackResult> NackAsync(QueueLease lease, string? reason = null, TimeSpan delay = default, CancellationToken cancellationToken = default)
    {
        var result = await inner.NackAsync(lease, reason, delay, cancellationToken).ConfigureAwait(false);
        if (result.Status != NackStatus.StaleReceipt) Changed(lease.Namespace, lease.Queue);
        return result;
    }

    public ValueTask<ExtendResult> ExtendAsync(QueueLease lease, TimeSpan visibilityTimeout, CancellationToken cancellationToken = default) =>
        inner.ExtendAsync(lease, visibilityTimeout, cancellationToken);

    public async ValueTask<int> ReclaimExpiredAsync(string ns, string queue, CancellationToken cancellationToken = default)
    {
        var reclaimed = await inner.ReclaimExpiredAsync(ns, queue, cancellationToken).ConfigureAwait(false);
        if (reclaimed > 0) Changed(ns, queue);
        return reclaimed;
    }

    public ValueTask<QueueTask?> GetTaskAsync(string ns, string queue, string taskId, CancellationToken cancellationToken = default) =>
        inner.GetTaskAsync(ns, queue, taskId, cancellationToken);

    public ValueTask<IReadOnlyList<QueueTask>> ListDeadLettersAsync(string ns, string queue, int limit = 100, CancellationToken cancellationToken = default) =>
        inner.ListDeadLettersAsync(ns, queue, limit, cancellationToken);

    public async ValueTask<bool> RequeueDeadLetterAsync(string ns, string queue, string taskId, CancellationToken cancellationToken = default)
    {
        var requeued = await inner.RequeueDeadLetterAsync(ns, queue, taskId, cancellationToken).ConfigureAwait(false);
        if (requeued) Changed(ns, queue);
        return requeued;
    }

    public ValueTask<bool> DeleteDeadLetterAsync(string ns, string queue, string taskId, CancellationToken cancellationToken = default) =>
        inner.DeleteDeadLetterAsync(ns, queue, taskId, cancellationToken);

    public ValueTask<QueueStats> GetStatsAsync(string ns, string queue, CancellationToken cancellationToken = default) => inner.GetStatsAsync(ns, queue, cancellationToken);
}

/// <summary>The runtime's view of the streams: an append wakes the runtime's subscribers of that stream before it returns.</summary>
internal sealed class NotifyingStreamService(IStreamService inner, AgentRuntime runtime) : IStreamService
{
    private void Appended(string ns, string stream)
    {
        if (ns == runtime.Namespace) runtime.OnStreamAppended(stream);
    }

    public async ValueTask<AppendResult> AppendAsync(string ns, string stream, IReadOnlyList<EventData> events, ExpectedVersion expectedVersion, AppendOptions? options = null, CancellationToken cancellationToken = default)
    {
        var result = await inner.AppendAsync(ns, stream, events, expectedVersion, options, cancellationToken).ConfigureAwait(false);
        if (result.IsAppended) Appended(ns, stream);
        return result;
    }

    public ValueTask<PreparedAppend> PrepareAppendAsync(string ns, IReadOnlyList<StreamAppend> appends, CancellationToken cancellationToken = default) =>
        inner.PrepareAppendAsync(ns, appends, cancellationToken);

    public async ValueTask<AppendResult> AppendWithAsync(string ns, string stream, IReadOnlyList<EventData> events, ExpectedVersion expectedVersion, IReadOnlyList<TxnOp> stateOps,
        AppendOptions? options = null, CancellationToken cancellationToken = default)
    {
        var result = await inner.AppendWithAsync(ns, stream, events, expectedVersion, stateOps, options, cancellationToken).ConfigureAwait(false);
        if (result.IsAppended) Appended(ns, stream);
        return result;
    }

    public ValueTask<StreamInfo?> GetStreamAsync(string ns, string stream, CancellationToken cancellationToken = default) => inner.GetStreamAsync(ns, stream, cancellationToken);

    public ValueTask<IReadOnlyList<RecordedEvent>> ReadStreamAsync(string ns, string stream, long fromVersion, int count, ReadDirection direction = ReadDirection.Forward, CancellationToken cancellationToken = default) =>
        inner.ReadStreamAsync(ns, stream, fromVersion, count, direction, cancellationToken);

    public ValueTask<IReadOnlyList<RecordedEvent>> ReadAllAsync(string ns, StreamPosition from, int count, StreamFilter? filter = null, ReadDirection direction = ReadDirection.Forward, CancellationToken cancellationToken = default) =>
        inner.ReadAllAsync(ns, from, count, filter, direction, cancellationToken);

    public ValueTask<StreamPosition> GetEndPositionAsync(string ns, CancellationToken cancellationToken = default) => inner.GetEndPositionAsync(ns, cancellationToken);

    public IAsyncEnumerable<RecordedEvent> SubscribeAsync(string ns, StreamFilter filter, StreamPosition after, CancellationToken cancellationToken = default) =>
        inner.SubscribeAsync(ns, filter, after, cancellationToken);

    public Task RunConsumerGroupAsync(string ns, string group, StreamFilter filter, Func<RecordedEvent, CancellationToken, ValueTask> handler,
        ConsumerGroupOptions? options = null, CancellationToken cancellationToken = default) =>
        inner.RunConsumerGroupAsync(ns, group, filter, handler, options, cancellationToken);

    public ValueTask<StreamPosition?> GetCheckpointAsync(string ns, string group, CancellationToken cancellationToken = default) => inner.GetCheckpointAsync(ns, group, cancellationToken);

    public ValueTask<bool> SaveCheckpointAsync(string ns, string group, StreamPosition position, CancellationToken cancellationToken = default) =>
        inner.SaveCheckpointAsync(ns, group, position, cancellationToken);

    public ValueTask<HandleResult> HandleOnceAsync(string ns, string group, RecordedEvent recordedEvent, IReadOnlyList<TxnOp> effects, CancellationToken cancellationToken = default) =>
        inner.HandleOnceAsync(ns, group, recordedEvent, effects, cancellationToken);

    public IAsyncEnumerable<StateChange> ReadChangesAsync(string ns, string prefix, long fromRevision, CancellationToken cancellationToken = default) =>
        inner.ReadChangesAsync(ns, prefix, fromRevision, cancellationToken);
}
