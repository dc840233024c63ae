using Concord.Lab.History;
using Concord.Lab.Scheduling;
using Concord.Lab.Tests.Support;

namespace Concord.Lab.Tests.Scheduling;

public sealed class ControlledSchedulerTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <summary>Two agents each read a counter, think, and write it back blind: a lost-update-prone program.</summary>
    private static (ScheduleResult Result, long Final) RunCounter(string seed)
    {
        var lab = new SchedulerHarness(seed);
        AgentSpec Agent(string name) => new(name, async (agent, ct) =>
        {
            var session = agent.Session(lab.Store, SchedulerHarness.Ns);
            for (var i = 0; i < 2; i++)
            {
                using var op = agent.History.Invoke(agent.Process, Functions.Increment, "c", HistoryValue.Of(1), agent.Name);
                var read = await session.GetAsync("c", ct).ConfigureAwait(false);
                await agent.ThinkAsync("next value", TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(100), ct).ConfigureAwait(false);
                await session.PutAsync("c", SchedulerHarness.Json($"{{\"n\":{SchedulerHarness.N(read) + 1}}}"), Expect.Any, cancellationToken: ct).ConfigureAwait(false);
                op.Ok();
            }
        });
        var result = lab.Run(Agent("a"), Agent("b"));
        return (result, SchedulerHarness.N(lab.Read("c")));
    }

    [Fact]
    public void Run_StoreCallsAndThinks_CompletesWithResultsInTheTrace()
    {
        var (result, final) = RunCounter("random:seed=1");

        Assert.Null(result.Failure);
        Assert.All(result.Agents, a => Assert.Equal(AgentStatus.Done, a.Status));
        Assert.InRange(final, 2, 4);
        Assert.Contains(result.Steps, s => s.Operation == "get c" && s.Result == "absent");
        Assert.Contains(result.Steps, s => s.Operation == "put c blind" && s.Result!.StartsWith("ok v", StringComparison.Ordinal));
        Assert.Contains(result.Steps, s => s.Operation == "LLM: next value" && s.Result!.StartsWith("thinks ", StringComparison.Ordinal));
        Assert.Contains(result.Steps, s => s.IsClock && s.Operation == "wakes: answer to next value");
        Assert.True(result.Elapsed >= TimeSpan.FromMilliseconds(20));
        Assert.Equal(Enumerable.Range(1, result.Steps.Count), result.Steps.Select(s => s.Number));
    }

    [Theory]
    [InlineData("random:seed=77")]
    [InlineData("pct:d=3:k=20:seed=77")]
    [InlineData("delay-bounded:d=2:k=20:seed=77")]
    public void Run_SameSeedTwentyTimes_IdenticalTraceChoicesAndHistory(string seed)
    {
        var (first, firstFinal) = RunCounter(seed);
        Assert.Null(first.Failure);
        for (var i = 0; i < 20; i++)
        {
            var (again, final) = RunCounter(seed);
            Assert.Equal(first.Format(), again.Format());
            Assert.Equal(first.Choices, again.Choices);
            Assert.Equal(first.AgentChoices, again.AgentChoices);
            Assert.Equal(HistoryWriter.Format(first.History), HistoryWriter.Format(again.History));
            Assert.Equal(firstFinal, final);
        }
    }

    [Fact]
    public void Run_DifferentSeeds_DifferentInterleavings()
    {
        var traces = Enumerable.Range(1, 20).Select(i => RunCounter($"random:seed={i}").Result.Format()).ToHashSet();

        Assert.True(traces.Count > 10, $"only {traces.Count} distinct traces of 20");
    }

    [Theory]
    [InlineData("random:seed=5")]
    [InlineData("pct:d=3:k=20:seed=5")]
    public void Run_ReplaySeedOfARun_ReproducesItExactly(string seed)
    {
        var (original, final) = RunCounter(seed);
        var replaySeed = ScheduleSeed.Parse(original.ReplaySeed.Format());

        var (replayed, replayedFinal) = RunCounter(replaySeed.Format());

        Assert.Equal(original.Format(), replayed.Format());
        Assert.Equal(final, replayedFinal);
        Assert.Equal(StrategyKind.Replay, replayed.Seed.Strategy);
    }

    [Fact]
    public void Run_NoAgentRunnable_VirtualTimeJumpsToTheNextTimer()
    {
        // Zero-delay round-robin: the clock only runs when no agent can (other strategies may also pick it earlier).
        var scheduler = new ControlledScheduler(ScheduleSeed.Parse("delay-bounded:d=0:k=10:seed=1"));
        var woke = new List<(string, TimeSpan)>();
        AgentSpec Sleeper(string name, int seconds) => new(name, async (agent, ct) =>
        {
            await agent.SleepAsync(TimeSpan.FromSeconds(seconds), "alarm", ct).ConfigureAwait(false);
            woke.Add((name, agent.Scheduler.Clock.Elapsed));
        });

        var result = scheduler.Run([Sleeper("late", 30), Sleeper("early", 5)], Token);

        Assert.Null(result.Failure);
        Assert.Equal([("early", TimeSpan.FromSeconds(5)), ("late", TimeSpan.FromSeconds(30))], woke);
        Assert.Equal(TimeSpan.FromSeconds(30), result.Elapsed);
        var wakes = result.Steps.Where(s => s.IsClock).ToList();
        Assert.Equal(["early", "late"], wakes.Select(s => s.Agent));
        Assert.All(wakes, s => Assert.Equal("wakes: alarm", s.Operation));
        Assert.Equal(TimeSpan.FromSeconds(30), wakes[^1].Time);
    }

    [Fact]
    public void Run_ClockChosenWhileAnAgentWaitsToStart_TheAgentStartsLater()
    {
        // The clock is a candidate whenever a timer is armed: time may pass while another agent's call is in flight.
        var scheduler = new ControlledScheduler(ScheduleSeed.Parse("replay:c=0.1"));
        var started = new Dictionary<string, TimeSpan>();
        AgentSpec Sleeper(string name) => new(name, async (agent, ct) =>
        {
            started[name] = agent.Scheduler.Clock.Elapsed;
            await agent.SleepAsync(TimeSpan.FromSeconds(5), cancellationToken: ct).ConfigureAwait(false);
        });

        var result = scheduler.Run([Sleeper("a"), Sleeper("b")], Token);

        // Step 1: a starts (choice 0) and sleeps; step 2: candidates [b, clock], choice 1 = the clock.
        Assert.Equal(TimeSpan.Zero, started["a"]);
        Assert.Equal(TimeSpan.FromSeconds(5), started["b"]);
        Assert.Equal(TimeSpan.FromSeconds(10), result.Elapsed);
    }

    [Fact]
    public void Run_ConfigureAwaitFalseAndRetries_StayOnTheSchedulerThread()
    {
        var lab = new SchedulerHarness("pct:d=3:k=30:seed=3");
        var threads = new HashSet<int>();
        AgentSpec Agent(string name) => new(name, async (agent, ct) =>
        {
            var session = agent.Session(lab.Store, SchedulerHarness.Ns);
            for (var i = 0; i < 3; i++)
            {
                threads.Add(Environment.CurrentManagedThreadId);
                // UpdateAsync awaits with ConfigureAwait(false) and backs off on the agent's clock.
                var update = await session.UpdateAsync("c", async (current, innerCt) =>
                {
                    threads.Add(Environment.CurrentManagedThreadId);
                    await agent.ThinkAsync("compute", TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(30), innerCt).ConfigureAwait(false);
                    threads.Add(Environment.CurrentManagedThreadId);
                    return SchedulerHarness.Json($"{{\"n\":{SchedulerHarness.N(current) + 1}}}");
                }, cancellationToken: ct).ConfigureAwait(false);
                Assert.True(update.IsApplied);
                threads.Add(Environment.CurrentManagedThreadId);
            }
        });

        var result = lab.Run(Agent("a"), Agent("b"), Agent("c"));

        Assert.Null(result.Failure);
        Assert.Equal(9, SchedulerHarness.N(lab.Read("c")));
        var thread = Assert.Single(threads);
        Assert.NotEqual(Environment.CurrentManagedThreadId, thread);
    }

    [Fact]
    public void Run_TaskYieldInAgent_FailsLoudlyAsAnEscape()
    {
        var scheduler = new ControlledScheduler(ScheduleSeed.Parse("random:seed=1"));
        var result = scheduler.Run([new AgentSpec("yielder", async (agent, ct) =>
        {
            await agent.PointAsync("before").ConfigureAwait(false);
            await Task.Yield();
            await agent.PointAsync("after").ConfigureAwait(false);
        })], Token);

        Assert.True(result.Escaped);
        Assert.Contains("agent yielder stopped after \"before\"", result.Failure, StringComparison.Ordinal);
        Assert.Equal(AgentStatus.Blocked, result.Agents[0].Status);
    }

    [Fact]
    public void Run_AwaitOnARealTimer_FailsLoudlyAsAnEscape()
    {
        var scheduler = new ControlledScheduler(ScheduleSeed.Parse("random:seed=1"));
        var result = scheduler.Run([new AgentSpec("sleeper", async (agent, ct) =>
        {
            await agent.PointAsync("before").ConfigureAwait(false);
            await Task.Delay(TimeSpan.FromMilliseconds(20), TimeProvider.System, ct).ConfigureAwait(false); // not the agent's clock
            await agent.PointAsync("after").ConfigureAwait(false);
        })], Token);

        Assert.True(result.Escaped);
        Assert.Contains("neither a scheduling point nor a timer of its clock", result.Failure, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_AgentWokenByAnotherAgent_FailsLoudlyAsAnEscape()
    {
        var scheduler = new ControlledScheduler(ScheduleSeed.Parse("delay-bounded:d=0:k=10:seed=1"));
        var signal = new TaskCompletionSource();
        var waiter = new AgentSpec("waiter", async (agent, ct) =>
        {
            // Asleep on its clock (so it looks legitimately parked), but really waiting for the signal.
            await Task.WhenAny(signal.Task, agent.SleepAsync(TimeSpan.FromSeconds(10), cancellationToken: ct)).ConfigureAwait(false);
            await agent.PointAsync("after the signal").ConfigureAwait(false);
        });
        var signaller = new AgentSpec("signaller", async (agent, ct) =>
        {
            await agent.PointAsync("signal").ConfigureAwait(false);
            signal.SetResult(); // runs the waiter inline, inside this agent's step
        });

        var result = scheduler.Run([waiter, signaller], Token);

        Assert.True(result.Escaped);
        Assert.Contains("agent waiter reached \"after the signal\" while agent signaller was scheduled", result.Failure, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_TwoStoreCallsAtOnceInOneAgent_FailsLoudlyAsAnEscape()
    {
        await using var lab = new SchedulerHarness("random:seed=1");
        var result = lab.Run(new AgentSpec("greedy", async (agent, ct) =>
        {
            var session = agent.Session(lab.Store, SchedulerHarness.Ns);
            await Task.WhenAll(session.GetAsync("x", ct).AsTask(), session.GetAsync("y", ct).AsTask()).ConfigureAwait(false);
        }));

        Assert.True(result.Escaped);
        Assert.Contains("while \"get x\" is still pending", result.Failure, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_WatchFromAnAgent_RefusedWithAClearError()
    {
        await using var lab = new SchedulerHarness("random:seed=1");
        var result = lab.Run(new AgentSpec("watcher", async (agent, ct) =>
        {
            await foreach (var change in lab.Store.WatchAsync(SchedulerHarness.Ns, new WatchRequest { Key = "x" }, ct).ConfigureAwait(false))
            {
                Assert.Fail($"unexpected {change}");
            }
        }));

        Assert.Equal(AgentStatus.Failed, result.Agents[0].Status);
        Assert.IsType<NotSupportedException>(result.Agents[0].Error);
        Assert.Contains("watches cannot run under the controlled scheduler", result.Failure, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_AgentThatNeverEnds_StopsAtTheStepLimit()
    {
        var scheduler = new ControlledScheduler(ScheduleSeed.Parse("random:seed=1"), new SchedulerOptions { MaxSteps = 100 });
        var result = scheduler.Run([new AgentSpec("spinner", async (agent, ct) =>
        {
            while (true) await agent.PointAsync("spin").ConfigureAwait(false);
        })], Token);

        Assert.Equal(100, result.Steps.Count);
        Assert.Contains("exceeded 100 scheduling steps", result.Failure, StringComparison.Ordinal);
        Assert.False(result.Escaped);
    }

    [Fact]
    public void Run_AgentThrows_ReportsTheAgentAndTheException()
    {
        var scheduler = new ControlledScheduler(ScheduleSeed.Parse("random:seed=1"));
        var result = scheduler.Run([
            new AgentSpec("ok", (agent, ct) => agent.PointAsync("work")),
            new AgentSpec("broken", async (agent, ct) =>
            {
                await agent.PointAsync("work").ConfigureAwait(false);
                throw new InvalidOperationException("boom");
            }),
        ], Token);

        Assert.Equal(AgentStatus.Done, result.Agents[0].Status);
        Assert.Equal(AgentStatus.Failed, result.Agents[1].Status);
        Assert.Equal("agent broken threw InvalidOperationException: boom", result.Failure);
    }

    [Fact]
    public void Run_History_HasVirtualTimesAndTheSeedInItsMetaLine()
    {
        var scheduler = new ControlledScheduler(ScheduleSeed.Parse("pct:d=2:k=5:seed=9"), new SchedulerOptions { Workload = "w", Model = "counter" });
        var result = scheduler.Run([new AgentSpec("a", async (agent, ct) =>
        {
            using var op = agent.History.Invoke(agent.Process, Functions.Increment, "c", HistoryValue.Of(1), agent.Name);
            await agent.SleepAsync(TimeSpan.FromMilliseconds(1500), cancellationToken: ct).ConfigureAwait(false);
            op.Ok();
        })], Token);

        Assert.Equal("pct:d=2:k=5:seed=9", result.History.Meta.Seed);
        Assert.Equal("pct", result.History.Meta.Strategy);
        Assert.Equal("w", result.History.Meta.Workload);
        Assert.Equal([0L, 1_500_000_000L], result.History.Operations.Select(o => o.Time));
    }

    [Fact]
    public void Run_SeedWithAgentMask_RunsOnlyThoseAgents_WithTheirOriginalIndices()
    {
        var ran = new List<(string, int, int)>();
        AgentSpec Agent(string name) => new(name, (agent, ct) =>
        {
            ran.Add((agent.Name, agent.Index, agent.Process));
            return agent.PointAsync("work");
        });

        var result = new ControlledScheduler(ScheduleSeed.Parse("replay:agents=0,2:c=1")).Run([Agent("a"), Agent("b"), Agent("c")], Token);

        Assert.Null(result.Failure);
        Assert.Equal(["a", "c"], result.Agents.Select(a => a.Name));
        Assert.Equal([("c", 2, 2), ("a", 0, 0)], ran); // choice 1 at the first step: the second candidate goes first
    }

    [Fact]
    public void Run_Twice_Throws()
    {
        var scheduler = new ControlledScheduler(ScheduleSeed.Parse("random:seed=1"));
        scheduler.Run([], Token);

        Assert.Throws<InvalidOperationException>(() => scheduler.Run([], Token));
    }

    [Fact]
    public async Task Store_CalledOutsideAgents_PassesStraightThrough()
    {
        await using var lab = new SchedulerHarness("random:seed=1");

        var write = await lab.Store.PutAsync(SchedulerHarness.Ns, "x", SchedulerHarness.Json("{\"n\":1}"), cancellationToken: Token);

        Assert.True(write.IsApplied);
        Assert.Empty(lab.Scheduler.Steps);
    }

    [Fact]
    public void PointAsync_OutsideAnAgent_Throws()
    {
        var scheduler = new ControlledScheduler(ScheduleSeed.Parse("random:seed=1"));
        LabAgent? leaked = null;
        scheduler.Run([new AgentSpec("a", (agent, ct) =>
        {
            leaked = agent;
            return Task.CompletedTask;
        })], Token);

        Assert.Throws<InvalidOperationException>(() => { _ = leaked!.PointAsync("from the test thread"); });
    }
}
