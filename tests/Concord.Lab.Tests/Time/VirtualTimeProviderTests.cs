using Concord.Lab.Time;

namespace Concord.Lab.Tests.Time;

public sealed class VirtualTimeProviderTests
{
    private static readonly TimeSpan Never = Timeout.InfiniteTimeSpan;

    [Fact]
    public void Advance_FiresInDueOrder_TiesInArmingOrder()
    {
        var time = new VirtualTimeProvider();
        var fired = new List<string>();
        using var late = time.CreateTimer(_ => fired.Add("late@30"), null, TimeSpan.FromMilliseconds(30), Never);
        using var tieA = time.CreateTimer(_ => fired.Add("a@10"), null, TimeSpan.FromMilliseconds(10), Never);
        using var early = time.CreateTimer(_ => fired.Add("early@5"), null, TimeSpan.FromMilliseconds(5), Never);
        using var tieB = time.CreateTimer(_ => fired.Add("b@10"), null, TimeSpan.FromMilliseconds(10), Never);
        Assert.Equal(4, time.ArmedTimers);

        while (time.Advance()) { }

        Assert.Equal(["early@5", "a@10", "b@10", "late@30"], fired);
        Assert.Equal(TimeSpan.FromMilliseconds(30), time.Elapsed);
        Assert.Equal(VirtualTimeProvider.DefaultEpoch.AddMilliseconds(30), time.GetUtcNow());
        Assert.Equal(0, time.ArmedTimers);
    }

    [Fact]
    public void Advance_ChangedAndDisposedTimers_FireOnlyAsLastSet()
    {
        var time = new VirtualTimeProvider();
        var fired = new List<string>();
        var moved = time.CreateTimer(_ => fired.Add("moved"), null, TimeSpan.FromMilliseconds(5), Never);
        var disposed = time.CreateTimer(_ => fired.Add("disposed"), null, TimeSpan.FromMilliseconds(1), Never);
        var disarmed = time.CreateTimer(_ => fired.Add("disarmed"), null, TimeSpan.FromMilliseconds(2), Never);
        Assert.True(moved.Change(TimeSpan.FromMilliseconds(50), Never));
        disposed.Dispose();
        Assert.False(disposed.Change(TimeSpan.FromMilliseconds(1), Never));
        Assert.True(disarmed.Change(Never, Never));
        Assert.Equal(1, time.ArmedTimers);

        Assert.False(time.Advance(TimeSpan.FromMilliseconds(49)));
        Assert.Empty(fired);
        Assert.Equal(TimeSpan.FromMilliseconds(49), time.Elapsed);
        Assert.True(time.Advance());
        Assert.False(time.Advance());

        Assert.Equal(["moved"], fired);
        Assert.Equal(TimeSpan.FromMilliseconds(50), time.Elapsed);
        moved.Dispose();
        disarmed.Dispose();
    }

    [Fact]
    public void Advance_PeriodicTimer_FiresEveryPeriodUntilDisposed()
    {
        var time = new VirtualTimeProvider();
        var ticks = new List<TimeSpan>();
        var timer = time.CreateTimer(_ => ticks.Add(time.Elapsed), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2));
        for (var i = 0; i < 3; i++) Assert.True(time.Advance());
        timer.Dispose();

        Assert.False(time.Advance());
        Assert.Equal([TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(5)], ticks);
    }

    [Fact]
    public void GetTimestamp_MovesWithVirtualTime()
    {
        var time = new VirtualTimeProvider();
        var start = time.GetTimestamp();
        using var timer = time.CreateTimer(_ => { }, null, TimeSpan.FromHours(3), Never);
        time.Advance();

        Assert.Equal(TimeSpan.FromHours(3), time.GetElapsedTime(start));
    }

    [Fact]
    public async Task RunAsync_AgentsWithDelays_InterleaveByVirtualTimeOnly()
    {
        var ct = TestContext.Current.CancellationToken;
        var time = new VirtualTimeProvider();
        var log = new List<string>();
        var gate = new Lock();
        Func<CancellationToken, Task> Agent(string name, params int[] delaysMs) => async c =>
        {
            foreach (var d in delaysMs)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(d), time, c);
                lock (gate) log.Add($"{name}@{time.Elapsed.TotalMilliseconds}");
            }
        };

        var elapsed = await time.RunAsync([Agent("a", 300, 300), Agent("b", 100, 1000), Agent("c", 450)], ct);

        Assert.Equal(["b@100", "a@300", "c@450", "a@600", "b@1100"], log);
        Assert.Equal(TimeSpan.FromMilliseconds(1100), elapsed);
    }

    [Fact]
    public async Task RunAsync_RealAsyncWorkWithRandomLatency_SameOrderEveryRun()
    {
        // Agents do real asynchronous work (thread-pool hops with real, random latency) between virtual waits, as a
        // durable write waiting for fsync does. The driver must wait for that work instead of advancing past it, so
        // the interleaving depends on virtual due times only: every run produces the same log.
        var ct = TestContext.Current.CancellationToken;
        var jitter = new Random(7);
        List<string>? first = null;
        for (var run = 0; run < 20; run++)
        {
            var time = new VirtualTimeProvider();
            var log = new List<string>();
            var gate = new Lock();
            var latencies = Enumerable.Range(0, 64).Select(_ => jitter.Next(0, 3)).ToArray();
            var next = -1;
            var agents = new List<Func<CancellationToken, Task>>();
            for (var a = 0; a < 4; a++)
            {
                var name = $"agent{a}";
                var step = 7 + a * 3;
                agents.Add(async c =>
                {
                    for (var i = 0; i < 5; i++)
                    {
                        // Real latency on the system clock: the thread pool decides when this resumes.
                        var latency = latencies[Interlocked.Increment(ref next) % latencies.Length];
                        await Task.Delay(TimeSpan.FromMilliseconds(latency), TimeProvider.System, c);
                        lock (gate) log.Add($"{name}:{i}@{time.Elapsed.TotalMilliseconds}");
                        await Task.Delay(TimeSpan.FromMilliseconds(step), time, c);
                    }
                });
            }

            await time.RunAsync(agents, ct);

            Assert.Equal(20, log.Count);
            first ??= log;
            Assert.Equal(first, log);
        }
    }

    [Fact]
    public async Task RunAsync_AgentFails_OthersFinishThenFailureSurfaces()
    {
        var ct = TestContext.Current.CancellationToken;
        var time = new VirtualTimeProvider();
        var finished = false;

        var run = time.RunAsync(
        [
            async c =>
            {
                await Task.Delay(TimeSpan.FromSeconds(1), time, c);
                throw new InvalidOperationException("agent broke");
            },
            async c =>
            {
                await Task.Delay(TimeSpan.FromSeconds(5), time, c);
                finished = true;
            },
        ], ct);

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => run);
        Assert.Equal("agent broke", e.Message);
        Assert.True(finished);
        Assert.Equal(TimeSpan.FromSeconds(5), time.Elapsed);
    }

    [Fact]
    public async Task RunAsync_SecondConcurrentRun_IsRefused()
    {
        var ct = TestContext.Current.CancellationToken;
        var time = new VirtualTimeProvider();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var first = time.RunAsync([_ => release.Task], ct);

        await Assert.ThrowsAsync<InvalidOperationException>(() => time.RunAsync([_ => Task.CompletedTask], ct));
        release.SetResult();
        await first;
    }
}
