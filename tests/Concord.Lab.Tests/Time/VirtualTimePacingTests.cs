using Concord.Lab.Scenarios;
using Concord.Lab.Time;

namespace Concord.Lab.Tests.Time;

public sealed class VirtualTimePacingTests
{
    /// <summary>A real clock under the test's control: records each wait the pacing asks for, and lets it pass at once.</summary>
    private sealed class RecordingClock : TimeProvider
    {
        public List<TimeSpan> Waits { get; } = [];

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            lock (Waits) Waits.Add(dueTime);
            return TimeProvider.System.CreateTimer(callback, state, TimeSpan.Zero, Timeout.InfiniteTimeSpan);
        }
    }

    private static async Task<List<string>> RunAsync(VirtualTimeProvider time)
    {
        var log = new List<string>();
        Func<CancellationToken, Task> Agent(string name, params int[] thinks) => async ct =>
        {
            foreach (var ms in thinks)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(ms), time, ct);
                lock (log) log.Add($"{name}@{time.Elapsed.TotalMilliseconds}");
            }
        };
        await time.RunAsync([Agent("a", 300, 300), Agent("b", 200, 500), Agent("c", 1000)], TestContext.Current.CancellationToken);
        return log;
    }

    [Fact]
    public async Task RunAsync_WithPace_WaitsScaledVirtualGapsOnTheRealClock_InTheSameOrder()
    {
        var clock = new RecordingClock();
        var paced = await RunAsync(new VirtualTimeProvider { Pace = 0.5, PaceClock = clock });
        var unpaced = await RunAsync(new VirtualTimeProvider());

        Assert.Equal(unpaced, paced);
        Assert.Equal(["b@200", "a@300", "a@600", "b@700", "c@1000"], paced);
        // Gaps between timer firings: 200, 100, 300, 100, 300 ms of virtual time, each waited at half speed.
        Assert.Equal([100, 50, 150, 50, 150], clock.Waits.Select(w => w.TotalMilliseconds));
    }

    [Fact]
    public void Pace_Negative_IsRefused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new VirtualTimeProvider { Pace = -1 });

    [Fact]
    public async Task AccountScenario_Paced_HasTheSameOutcomeAsUnpaced()
    {
        await using var paced = Concord.Engine.ConcordEngine.CreateInMemory(new Concord.Engine.ConcordEngineOptions { StrictMode = false });
        await using var unpaced = Concord.Engine.ConcordEngine.CreateInMemory(new Concord.Engine.ConcordEngineOptions { StrictMode = false });
        var a = await new AccountScenario(42) { Pace = 0.1 }.RunAsync(paced, "n", ConcurrencyMode.Naive, strict: false, TestContext.Current.CancellationToken);
        var b = await new AccountScenario(42).RunAsync(unpaced, "n", ConcurrencyMode.Naive, strict: false, TestContext.Current.CancellationToken);
        Assert.Equal(b.Lost, a.Lost);
        Assert.Equal(b.FinalVersion, a.FinalVersion);
        Assert.Equal(b.VirtualMs, a.VirtualMs);
    }
}
