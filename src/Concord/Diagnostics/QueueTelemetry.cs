using System.Diagnostics;
using Concord.Coordination.Queues;

namespace Concord.Diagnostics;

/// <summary>Spans and metrics of <see cref="StoreQueueService"/>, kept here so the service itself stays readable.</summary>
internal static class QueueTelemetry
{
    private static KeyValuePair<string, object?> QueueTag(string queue) => new(ConcordTelemetry.Tags.MessagingDestination, queue);

    public static void Enqueued(Activity? activity, string ns, string queue, string taskId, string? agent, bool replayed)
    {
        if (activity is not null)
        {
            ConcordTelemetry.TagMessaging(activity, ns, queue, taskId, "send");
            if (agent is not null) activity.SetTag(ConcordTelemetry.Tags.AgentId, agent);
            if (replayed) activity.SetTag(ConcordTelemetry.Tags.Replayed, true);
        }
        if (replayed) return;
        ConcordTelemetry.QueueEnqueued.Add(1, QueueTag(queue));
        ConcordTelemetry.QueueDepth.Add(1, QueueTag(queue));
    }

    public static void Duplicate(Activity? activity, string ns, string queue, string firstTaskId)
    {
        if (activity is null) return;
        ConcordTelemetry.TagMessaging(activity, ns, queue, firstTaskId, "send");
        activity.SetTag("concord.queue.duplicate", true);
    }

    /// <summary>A <c>concord.queue.lease</c> span from the lease call's start to the grant, linked to the producer.</summary>
    public static void Leased(QueueLease lease, DateTimeOffset started, DateTimeOffset now)
    {
        using (var activity = ConcordTelemetry.StartLinked("concord.queue.lease", ActivityKind.Consumer, lease.TraceParent, started))
        {
            if (activity is not null)
            {
                ConcordTelemetry.TagMessaging(activity, lease.Namespace, lease.Queue, lease.TaskId, "receive");
                activity.SetTag(ConcordTelemetry.Tags.AgentId, lease.Consumer);
                activity.SetTag(ConcordTelemetry.Tags.DeliveryAttempt, lease.Attempt);
                activity.SetTag(ConcordTelemetry.Tags.Revision, lease.Revision);
            }
        }
        if (ConcordTelemetry.QueueAge.Enabled)
            ConcordTelemetry.QueueAge.Record(Math.Max(0, (now - lease.EnqueuedAt).TotalSeconds), QueueTag(lease.Queue));
    }

    public static void Acked(string queue) => ConcordTelemetry.QueueDepth.Add(-1, QueueTag(queue));

    public static void DeadLettered(string queue) => ConcordTelemetry.DeadLetters.Add(1, QueueTag(queue));

    /// <summary>A lease expired without an ack and was reclaimed (perhaps into the dead letters).</summary>
    public static void LeaseLost(string queue, bool dead)
    {
        ConcordTelemetry.LeasesLost.Add(1, QueueTag(queue), new KeyValuePair<string, object?>("concord.lease.kind", "queue"));
        if (dead) DeadLettered(queue);
    }
}
