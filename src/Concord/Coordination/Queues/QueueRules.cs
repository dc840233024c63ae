using System.Text;
using System.Text.Json;
using Concord.Internal;

namespace Concord.Coordination.Queues;

/// <summary>
/// The argument rules of <see cref="IQueueService"/>, in one place: <see cref="StoreQueueService"/>, the native
/// PostgreSQL and Redis queues and the HTTP client all call these, so every backend refuses the same input with the same
/// <see cref="InvalidRequestException"/> and the same message.
/// </summary>
internal static class QueueRules
{
    /// <summary>The message for an enqueue without a payload.</summary>
    public const string PayloadMissing = "The task payload is missing";

    /// <summary>Checks a namespace and a queue name.</summary>
    public static void ValidateQueue(string ns, string queue)
    {
        KeyRules.ValidateNamespace(ns);
        SysKeys.ValidateName(queue, "Queue");
    }

    /// <summary>Checks that an enqueue has a payload (what a client can check without the service's settings).</summary>
    public static void ValidatePayload(JsonElement payload)
    {
        if (payload.ValueKind == JsonValueKind.Undefined) throw new InvalidRequestException(PayloadMissing);
    }

    /// <summary>
    /// Checks the payload and options of an enqueue against <paramref name="settings"/>: payload present and within
    /// <see cref="QueueServiceOptions.MaxPayloadBytes"/>, delay, attempts, dedup id and group key. Returns the task's
    /// maximum attempts (the option, or the service's default).
    /// </summary>
    public static int ValidateEnqueue(JsonElement payload, EnqueueOptions options, QueueServiceOptions settings)
    {
        ArgumentNullException.ThrowIfNull(options);
        ValidatePayload(payload);
        if (settings.MaxPayloadBytes is { } max)
        {
            var size = Encoding.UTF8.GetByteCount(payload.GetRawText());
            if (size > max) throw new InvalidRequestException($"The task payload is {size} bytes; the limit is {max} bytes (QueueServiceOptions.MaxPayloadBytes)");
        }
        ValidateEnqueueOptions(options);
        var maxAttempts = options.MaxAttempts ?? settings.DefaultMaxAttempts;
        ValidateMaxAttempts(maxAttempts);
        return maxAttempts;
    }

    /// <summary>
    /// The checks of <see cref="ValidateEnqueue"/> that need no service settings: delay, explicit attempts, dedup id and
    /// group key (what a client checks before sending).
    /// </summary>
    public static void ValidateEnqueueOptions(EnqueueOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Delay < TimeSpan.Zero || options.Delay > TimeSpan.FromDays(366)) throw new InvalidRequestException("Enqueue delay must be between 0 and 366 days");
        if (options.MaxAttempts is { } attempts) ValidateMaxAttempts(attempts);
        if (options.DedupId is not null) _ = SysKeys.Segment(options.DedupId, "Dedup id");
        if (options.Group is not null) _ = SysKeys.Segment(options.Group, "Group key");
    }

    private static void ValidateMaxAttempts(int maxAttempts)
    {
        if (maxAttempts is < 1 or > 10_000) throw new InvalidRequestException("MaxAttempts must be between 1 and 10000");
    }

    /// <summary>Checks a lease's consumer, visibility timeout and wait.</summary>
    public static void ValidateLease(string consumer, TimeSpan visibility, TimeSpan wait)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(consumer);
        ValidateVisibility(visibility);
        if (wait < TimeSpan.Zero || wait > TimeSpan.FromHours(1)) throw new InvalidRequestException("Lease wait must be between 0 and 1 hour");
    }

    /// <summary>Checks a visibility timeout (lease or extend).</summary>
    public static void ValidateVisibility(TimeSpan visibility)
    {
        if (visibility <= TimeSpan.Zero || visibility > TimeSpan.FromHours(12)) throw new InvalidRequestException("Visibility timeout must be between 0 and 12 hours");
    }

    /// <summary>Checks a nack's delay.</summary>
    public static void ValidateNackDelay(TimeSpan delay)
    {
        if (delay < TimeSpan.Zero || delay > TimeSpan.FromDays(366)) throw new InvalidRequestException("Nack delay must be between 0 and 366 days");
    }

    /// <summary>Checks the limit of <see cref="IQueueService.ListDeadLettersAsync"/>.</summary>
    public static void ValidateDeadLetterLimit(int limit)
    {
        if (limit is < 1 or > 10_000) throw new InvalidRequestException("Limit must be between 1 and 10000");
    }

    /// <summary>Checks the arguments of <see cref="IQueueService.ListQueuesAsync"/>.</summary>
    public static void ValidateListQueues(string ns, string? after, int limit)
    {
        KeyRules.ValidateNamespace(ns);
        if (after is not null) SysKeys.ValidateName(after, "Queue");
        if (limit is < 1 or > QueueListPage.MaxLimit) throw new InvalidRequestException($"Limit must be between 1 and {QueueListPage.MaxLimit}");
    }
}
