namespace Concord.Internal;

/// <summary>
/// A level-free wake-up for waiters: <see cref="Next"/> is a task the next <see cref="Pulse"/> completes. Take it before
/// looking for work, then wait on it, and a pulse between the look and the wait is not missed.
/// </summary>
internal sealed class AsyncPulse
{
    private readonly Lock _gate = new();
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes at the next <see cref="Pulse"/>.</summary>
    public Task Next
    {
        get
        {
            lock (_gate) return _next.Task;
        }
    }

    /// <summary>Wakes everyone waiting on <see cref="Next"/>; later callers get a fresh task.</summary>
    public void Pulse()
    {
        TaskCompletionSource previous;
        lock (_gate)
        {
            previous = _next;
            _next = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        previous.TrySetResult();
    }
}
