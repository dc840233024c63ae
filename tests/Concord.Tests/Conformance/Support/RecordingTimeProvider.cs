using System.Collections.Concurrent;
using Microsoft.Extensions.Time.Testing;

namespace Concord.Tests.Conformance.Support;

/// <summary>A <see cref="FakeTimeProvider"/> that records the due time of every timer created (so every Task.Delay) and signals it.</summary>
internal sealed class RecordingTimeProvider(DateTimeOffset start) : FakeTimeProvider(start)
{
    private readonly SemaphoreSlim _created = new(0);

    public ConcurrentQueue<TimeSpan> DueTimes { get; } = new();

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        DueTimes.Enqueue(dueTime);
        var timer = base.CreateTimer(callback, state, dueTime, period);
        _created.Release();
        return timer;
    }

    /// <summary>Waits until the next timer has been created.</summary>
    public Task WaitForTimerAsync(CancellationToken cancellationToken) => _created.WaitAsync(cancellationToken);
}
