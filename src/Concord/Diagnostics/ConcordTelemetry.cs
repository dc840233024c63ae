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

    /// <summary><c>concord.operation.duration</c>: latency of store operations in seconds.</summary>
    public static Histogram<double> Duration { get; } = Meter.CreateHistogram<double>("concord.operation.duration", "s", "Latency of store operations");

    /// <summary><c>concord.lock.wait</c>: time spent waiting for locks, by outcome.</summary>
    public static Histogram<double> LockWait { get; } = Meter.CreateHistogram<double>("concord.lock.wait", "s", "Time from lock request to grant or give-up");

    /// <summary><c>concord.lease.lost</c>: leases lost by expiry (not released by their holder).</summary>
    public static Counter<long> LeasesLost { get; } = Meter.CreateCounter<long>("concord.lease.lost", "{lease}", "Leases that expired while held");

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
        /// <summary>GenAI semantic convention: agent id.</summary>
        public const string AgentId = "gen_ai.agent.id";
        /// <summary>GenAI semantic convention: agent name.</summary>
        public const string AgentName = "gen_ai.agent.name";
    }
}
