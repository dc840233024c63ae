using System.Text.Json;
using Concord.Agents;
using Concord.Coordination.Queues;
using Concord.Engine;
using Concord.Lab.Time;

namespace Concord.Tests.Agents;

public sealed class AgentRuntimeTests
{
    private const string Ns = "agents";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static JsonElement J<T>(T value) => JsonSerializer.SerializeToElement(value, JsonDefaults.Web);

    private static async Task<double> CounterAsync(IConcordStore store, string key)
    {
        var record = await store.GetAsync(Ns, key, cancellationToken: Ct);
        return record is null ? 0 : record.Value.GetProperty("value").GetDouble();
    }

    [Fact]
    public async Task RunInVirtualTime_QueueHandoff_EveryTaskHandledOnceWithItsEffect()
    {
        await using var store = ConcordEngine.CreateInMemory(new ConcordEngineOptions { StrictMode = true });
        var time = new VirtualTimeProvider();
        var runtime = new AgentRuntime(store, Ns, new AgentRuntimeOptions { TimeProvider = time, StopWhenIdle = true });
        runtime.AddAgent("planner").OnStart(async (ctx, ct) =>
        {
            for (var i = 0; i < 10; i++)
            {
                await ctx.EnqueueAsync("work", new { n = i }, cancellationToken: ct);
                await ctx.DelayAsync(TimeSpan.FromMilliseconds(300), ct);
            }
        });
        runtime.AddAgent("worker").WithConcurrency(3).OnTask("work", async (ctx, ct) =>
        {
            await ctx.DelayAsync(TimeSpan.FromSeconds(1), ct); // think
            ctx.AddEffect(TxnOp.PatchKey("counters/done", JsonPatch.Create().Increment("/value", 1)));
        });

        var elapsed = await time.RunAsync(runtime.CreateFlows(), Ct);

        Assert.Equal(10, await CounterAsync(store, "counters/done"));
        var stats = runtime.GetStats().Single(s => s.Agent == "worker");
        Assert.Equal(10, stats.Completed);
        Assert.Equal(0, stats.Failed);
        // Event-driven: tasks arrive every 0.3 s and 3 workers take 1 s each, so task 9 (enqueued at 2.7 s) starts when
        // task 6 ends at 3.0 s and the run ends at 4.0 s exactly; a worker woken by polling would end on a poll tick.
        Assert.Equal(TimeSpan.FromSeconds(4), elapsed);
        var queueStats = await runtime.Queues.GetStatsAsync(Ns, "work", Ct);
        Assert.Equal(0, queueStats.Total);
    }

    [Fact]
    public async Task RunInVirtualTime_ConcurrencyLimit_ReachedAndNeverExceeded()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var time = new VirtualTimeProvider();
        var runtime = new AgentRuntime(store, Ns, new AgentRuntimeOptions { TimeProvider = time, StopWhenIdle = true });
        var inFlight = 0;
        var max = 0;
        runtime.AddAgent("planner").OnStart(async (ctx, ct) =>
        {
            for (var i = 0; i < 8; i++) await ctx.EnqueueAsync("work", new { n = i }, cancellationToken: ct);
        });
        runtime.AddAgent("worker").WithConcurrency(2).OnTask("work", async (ctx, ct) =>
        {
            var now = Interlocked.Increment(ref inFlight);
            InterlockedMax(ref max, now);
            await ctx.DelayAsync(TimeSpan.FromSeconds(1), ct);
            Interlocked.Decrement(ref inFlight);
        });

        var elapsed = await time.RunAsync(runtime.CreateFlows(), Ct);

        Assert.Equal(2, max);
        Assert.Equal(2, runtime.GetStats().Single(s => s.Agent == "worker").MaxInFlight);
        Assert.Equal(TimeSpan.FromSeconds(4), elapsed); // 8 tasks, 2 at a time, 1 s each
    }

    [Fact]
    public async Task RunInRealTime_ConcurrencyLimit_NeverExceeded()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var runtime = new AgentRuntime(store, Ns, new AgentRuntimeOptions { StopWhenIdle = true, WatchForExternalWork = false });
        var inFlight = 0;
        var max = 0;
        var handled = 0;
        runtime.AddAgent("planner").OnStart(async (ctx, ct) =>
        {
            for (var i = 0; i < 24; i++) await ctx.EnqueueAsync("work", new { n = i }, cancellationToken: ct);
        });
        runtime.AddAgent("worker").WithConcurrency(3).OnTask("work", async (ctx, ct) =>
        {
            InterlockedMax(ref max, Interlocked.Increment(ref inFlight));
            await Task.Delay(5, ct);
            Interlocked.Decrement(ref inFlight);
            Interlocked.Increment(ref handled);
        });

        await runtime.RunAsync(Ct);

        Assert.Equal(24, handled);
        Assert.InRange(max, 1, 3);
        Assert.InRange(runtime.GetStats().Single(s => s.Agent == "worker").MaxInFlight, 1, 3);
    }

    [Fact]
    public async Task Crash_HandlerThrowsMidTask_TaskReturnedAndRetriedEffectAppliedOnce()
    {
        await using var store = ConcordEngine.CreateInMemory(new ConcordEngineOptions { StrictMode = true });
        var time = new VirtualTimeProvider();
        var runtime = new AgentRuntime(store, Ns, new AgentRuntimeOptions { TimeProvider = time, StopWhenIdle = true, RetryBaseDelay = TimeSpan.FromSeconds(2) });
        var attempts = 0;
        runtime.AddAgent("planner").OnStart(async (ctx, ct) => await ctx.EnqueueAsync("work", new { n = 1 }, cancellationToken: ct));
        runtime.AddAgent("worker").OnTask("work", async (ctx, ct) =>
        {
            Interlocked.Increment(ref attempts);
            // A side effect written directly (not as an ack effect), keyed by the task: a retry replays it.
            var write = await ctx.Session.IncrementAsync("counters/charged", 1, idempotencyKey: ctx.IdempotencyKey("charge"), cancellationToken: ct);
            Assert.True(write.IsApplied);
            if (ctx.Attempt == 1) throw new InvalidOperationException("model returned garbage");
            ctx.AddEffect(TxnOp.PatchKey("counters/done", JsonPatch.Create().Increment("/value", 1)));
        });

        var elapsed = await time.RunAsync(runtime.CreateFlows(), Ct);

        Assert.Equal(2, attempts);
        Assert.Equal(1, await CounterAsync(store, "counters/charged"));
        Assert.Equal(1, await CounterAsync(store, "counters/done"));
        var journal = runtime.Journal.Where(e => e.Agent == "worker").Select(e => e.Kind).ToList();
        Assert.Equal([AgentJournalKind.TaskFailed, AgentJournalKind.TaskCompleted], journal);
        Assert.Contains("model returned garbage", runtime.Journal.Single(e => e.Kind == AgentJournalKind.TaskFailed).Message);
        Assert.Equal(TimeSpan.FromSeconds(2), elapsed); // retried after the backoff, not at a poll tick
        var stats = runtime.GetStats().Single(s => s.Agent == "worker");
        Assert.Equal((1, 1), (stats.Completed, stats.Failed));
    }

    [Fact]
    public async Task Crash_EveryAttempt_TaskDeadLetteredStateIntact()
    {
        await using var store = ConcordEngine.CreateInMemory(new ConcordEngineOptions { StrictMode = true });
        var time = new VirtualTimeProvider();
        var runtime = new AgentRuntime(store, Ns, new AgentRuntimeOptions { TimeProvider = time, StopWhenIdle = true });
        await store.PutAsync(Ns, "accounts/a", J(new { balance = 100 }), new WriteOptions { Expect = Expect.Absent }, Ct);
        runtime.AddAgent("planner").OnStart(async (ctx, ct) =>
            await ctx.EnqueueAsync("work", new { account = "accounts/a" }, new EnqueueOptions { MaxAttempts = 3 }, ct));
        runtime.AddAgent("worker").OnTask("work", (ctx, ct) =>
        {
            ctx.AddEffect(TxnOp.Put("accounts/a", J(new { balance = 0 }), Expect.Version(1)));
            throw new FormatException("tool arguments were not JSON");
        });

        await time.RunAsync(runtime.CreateFlows(), Ct);

        var dead = await runtime.Queues.ListDeadLettersAsync(Ns, "work", cancellationToken: Ct);
        var task = Assert.Single(dead);
        Assert.Equal(3, task.Attempts);
        Assert.Contains("tool arguments were not JSON", task.LastError);
        var account = await store.GetAsync(Ns, "accounts/a", cancellationToken: Ct);
        Assert.Equal(1, account!.Version);
        Assert.Equal(100, account.Value.GetProperty("balance").GetInt32());
        Assert.Equal(
            [AgentJournalKind.TaskFailed, AgentJournalKind.TaskFailed, AgentJournalKind.TaskDeadLettered],
            runtime.Journal.Where(e => e.Agent == "worker").Select(e => e.Kind));
    }

    [Fact]
    public async Task PausedAgent_LeaseExpires_TaskTakenOverAndEffectAppliedExactlyOnce()
    {
        await using var store = ConcordEngine.CreateInMemory(new ConcordEngineOptions { StrictMode = true });
        var time = new VirtualTimeProvider();
        var queues = new StoreQueueService(store, new QueueServiceOptions { TimeProvider = time });
        await queues.EnqueueAsync(Ns, "work", J(new { n = 1 }), cancellationToken: Ct);
        var options = new AgentRuntimeOptions { TimeProvider = time, StopWhenIdle = true, VisibilityTimeout = TimeSpan.FromSeconds(30), Queues = queues };
        // Process A takes the task and stalls (a GC pause, a hung model call) far beyond its lease; process B is a restarted replica.
        var a = new AgentRuntime(store, Ns, options);
        a.AddAgent("worker").OnTask("work", async (ctx, ct) =>
        {
            await ctx.DelayAsync(TimeSpan.FromMinutes(5), ct);
            ctx.AddEffect(TxnOp.PatchKey("counters/done", JsonPatch.Create().Increment("/value", 1)));
        });
        var b = new AgentRuntime(store, Ns, options);
        b.AddAgent("worker").OnTask("work", async (ctx, ct) =>
        {
            await ctx.DelayAsync(TimeSpan.FromSeconds(1), ct);
            ctx.AddEffect(TxnOp.PatchKey("counters/done", JsonPatch.Create().Increment("/value", 1)));
        });

        await time.RunAsync([.. a.CreateFlows(), .. b.CreateFlows()], Ct);

        Assert.Equal(1, await CounterAsync(store, "counters/done"));
        Assert.Equal(AgentJournalKind.LeaseLost, Assert.Single(a.Journal).Kind);
        var completed = Assert.Single(b.Journal);
        Assert.Equal(AgentJournalKind.TaskCompleted, completed.Kind);
        Assert.Equal(2, completed.Attempt);
        Assert.Equal(VirtualTimeProvider.DefaultEpoch + TimeSpan.FromSeconds(31), completed.At);
    }

    [Fact]
    public async Task Cancellation_WhileHandling_RunEndsAndTaskGoesBackToTheQueue()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var runtime = new AgentRuntime(store, Ns, new AgentRuntimeOptions { WatchForExternalWork = false });
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await runtime.Queues.EnqueueAsync(Ns, "work", J(new { n = 1 }), cancellationToken: Ct);
        runtime.AddAgent("worker").OnTask("work", async (ctx, ct) =>
        {
            started.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct);
        });
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);

        var run = runtime.RunAsync(cts.Token);
        await started.Task.WaitAsync(Ct);
        await cts.CancelAsync();
        await run.WaitAsync(Ct);

        var stats = await runtime.Queues.GetStatsAsync(Ns, "work", Ct);
        Assert.Equal(1, stats.Ready);
        Assert.Equal(0, stats.Leased);
        Assert.Equal(AgentJournalKind.TaskReturned, Assert.Single(runtime.Journal).Kind);
    }

    [Fact]
    public async Task Stop_Graceful_RunningTaskFinishesAndRunEnds()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var time = new VirtualTimeProvider();
        var runtime = new AgentRuntime(store, Ns, new AgentRuntimeOptions { TimeProvider = time });
        runtime.AddAgent("planner").OnStart(async (ctx, ct) =>
        {
            for (var i = 0; i < 3; i++) await ctx.EnqueueAsync("work", new { n = i }, cancellationToken: ct);
        });
        runtime.AddAgent("worker").OnTask("work", async (ctx, ct) =>
        {
            await ctx.DelayAsync(TimeSpan.FromSeconds(1), ct);
            if (ctx.Payload.GetProperty("n").GetInt32() == 0) ctx.Runtime.Stop();
        });

        await time.RunAsync(runtime.CreateFlows(), Ct);

        Assert.Equal(1, runtime.GetStats().Single(s => s.Agent == "worker").Completed);
        Assert.Equal(2, (await runtime.Queues.GetStatsAsync(Ns, "work", Ct)).Ready);
    }

    [Fact]
    public async Task Events_PublishedToStream_FollowerHandlesEachOnceAndResumesFromCheckpoint()
    {
        await using var store = ConcordEngine.CreateInMemory(new ConcordEngineOptions { StrictMode = true });
        for (var run = 0; run < 2; run++)
        {
            var time = new VirtualTimeProvider();
            var runtime = new AgentRuntime(store, Ns, new AgentRuntimeOptions { TimeProvider = time, StopWhenIdle = true, RetryBaseDelay = TimeSpan.FromMilliseconds(500) });
            var failedOnce = false;
            var batch = run;
            runtime.AddAgent("researcher").OnStart(async (ctx, ct) =>
            {
                for (var i = 0; i < 3; i++)
                {
                    await ctx.DelayAsync(TimeSpan.FromSeconds(1), ct);
                    await ctx.PublishAsync("findings", "finding", new { text = $"finding {batch}.{i}" }, ct);
                }
            });
            runtime.AddAgent("writer").OnEvent("findings", (ctx, ct) =>
            {
                if (!failedOnce)
                {
                    failedOnce = true;
                    throw new InvalidOperationException("crashed mid-summary");
                }
                ctx.AddEffect(TxnOp.PatchKey("summary", JsonPatch.Create().Append("/findings", ctx.Event.Data.GetProperty("text").GetString())));
                return Task.CompletedTask;
            }, group: "writer");

            await time.RunAsync(runtime.CreateFlows(), Ct);

            Assert.Equal(3, runtime.GetStats().Single(s => s.Agent == "writer").Events);
            Assert.Contains(runtime.Journal, e => e.Kind == AgentJournalKind.EventFailed && e.Agent == "writer");
        }

        var summary = await store.GetAsync(Ns, "summary", cancellationToken: Ct);
        Assert.Equal(["finding 0.0", "finding 0.1", "finding 0.2", "finding 1.0", "finding 1.1", "finding 1.2"],
            summary!.Value.GetProperty("findings").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public async Task VirtualTime_SameSeed_SameJournal()
    {
        static async Task<List<string>> RunAsync(int seed)
        {
            await using var store = ConcordEngine.CreateInMemory();
            var time = new VirtualTimeProvider();
            var runtime = new AgentRuntime(store, Ns, new AgentRuntimeOptions { TimeProvider = time, StopWhenIdle = true, Seed = seed });
            runtime.AddAgent("planner").OnStart(async (ctx, ct) =>
            {
                for (var i = 0; i < 6; i++)
                {
                    await ctx.EnqueueAsync("work", new { n = i }, cancellationToken: ct);
                    await ctx.DelayAsync(TimeSpan.FromMilliseconds(50 + (int)(ctx.Random.NextDouble() * 500)), ct);
                }
            });
            foreach (var id in new[] { "a", "b" })
            {
                runtime.AddAgent(id).WithConcurrency(2).OnTask("work", async (ctx, ct) =>
                {
                    await ctx.DelayAsync(TimeSpan.FromMilliseconds(200 + (int)(ctx.Random.NextDouble() * 1800)), ct);
                    if (ctx.Random.NextDouble() < 0.3) throw new InvalidOperationException("flaky");
                    ctx.AddEffect(TxnOp.PatchKey("log", JsonPatch.Create().Append("/items", $"{ctx.Identity.Id}:{ctx.Payload.GetProperty("n").GetInt32()}")));
                });
            }
            await time.RunAsync(runtime.CreateFlows(), TestContext.Current.CancellationToken);
            var log = await store.GetAsync(Ns, "log", cancellationToken: TestContext.Current.CancellationToken);
            return [.. runtime.Journal.Select(e => $"{e.At:O} {e.Agent} {e.Kind} {e.Attempt}"), log!.Value.GetRawText()];
        }

        var first = await RunAsync(7);
        var second = await RunAsync(7);
        var other = await RunAsync(8);

        Assert.Equal(first, second);
        Assert.NotEqual(first, other);
        Assert.Contains(first, line => line.Contains("TaskFailed", StringComparison.Ordinal));
    }

    [Fact]
    public void AddAgent_BadIdentityOrDuplicate_Refused()
    {
        var runtime = new AgentRuntime(ConcordEngine.CreateInMemory(), Ns);
        Assert.Throws<ArgumentException>(() => runtime.AddAgent("has space"));
        runtime.AddAgent("a").OnStart((_, _) => Task.CompletedTask);
        Assert.Throws<ArgumentException>(() => runtime.AddAgent("a"));
        runtime.AddAgent("idle");
        Assert.Throws<InvalidOperationException>(() => runtime.CreateFlows());
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}
