namespace Concord.Coordination.Queues;

/// <summary>
/// The argument rules every <see cref="IQueueService"/> implementation applies, in one place so that every backend
/// refuses the same input with the same message.
/// </summary>
internal static class QueueRules
{
    /// <summary>Checks the arguments of <see cref="IQueueService.ListQueuesAsync"/>.</summary>
    public static void ValidateListQueues(string ns, string? after, int limit)
    {
        Internal.KeyRules.ValidateNamespace(ns);
        if (after is not null) SysKeys.ValidateName(after, "Queue");
        if (limit is < 1 or > QueueListPage.MaxLimit) throw new InvalidRequestException($"Limit must be between 1 and {QueueListPage.MaxLimit}");
    }
}
