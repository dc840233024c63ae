using Concord.Coordination.Locks;
using Concord.Lab.Chaos;
using Concord.Lab.History;
using Concord.Lab.Scenarios;
using Concord.Lab.Scheduling;
using Concord.Lab.Tests.Support;

namespace Concord.Lab.Tests.Chaos;

public sealed class ChaosTests
{
    private const string Ns = SchedulerHarness.Ns;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static Func<FaultSite, bool> Only(string operationPrefix) => site => site.Operation.StartsWith(operationPrefix, StringComparison.Ordinal);

    [Fact]
    public async Task UnknownOutcome_WriteIsApplied_ButTheCallerGetsATransientError_AndTheHistorySaysInfo()
    {
        await using var lab = new SchedulerHarness("random:seed=1", new ChaosOptions { UnknownOutcome = 1, Target = Only("put") });
        InjectedFaultException? seen = null;

        var result = lab.Run(new AgentSpec("a", async (agent, ct) =>
        {
            using var op = agent.History.Invoke(agent.Process, Functions.Write, "x", HistoryValue.Of(1), agent.Name);
            try
            {
                await agent.Session(lab.Store, Ns).PutAsync("x", SchedulerHarness.Json("{\"n\":1}"), Expect.Absent, cancellationToken: ct).ConfigureAwait(false);
                op.Ok();
            }
            catch (InjectedFaultException e)
            {
                seen = e;
                op.Info(e.Message);
            }
        }));

        Assert.Null(result.Failure);
        Assert.NotNull(seen);
        Assert.True(seen.IsTransient);
        Assert.True(seen.Applied);
        Assert.Equal(FaultKind.UnknownOutcome, seen.Kind);
        Assert.Equal(1, SchedulerHarness.N(lab.Read("x"))); // the write happened
        Assert.Equal(1, result.Faults);
        Assert.Equal("reply lost (store answered: ok v1)", result.Steps.Single(s => s.Operation == "put x expect absent").Fault);
        Assert.Equal(OperationType.Info, result.History.Pairs.Single().Outcome);
    }

    [Fact]
    public async Task TransientFailure_NothingIsApplied()
    {
        await using var lab = new SchedulerHarness("random:seed=1", new ChaosOptions { TransientFailure = 1, Target = Only("put") });
        InjectedFaultException? seen = null;

        lab.Run(new AgentSpec("a", async (agent, ct) =>
        {
            try
            {
                await agent.Session(lab.Store, Ns).PutAsync("x", SchedulerHarness.Json("{\"n\":1}"), cancellationToken: ct).ConfigureAwait(false);
            }
            catch (InjectedFaultException e)
            {
                seen = e;
            }
        }));

        Assert.NotNull(seen);
        Assert.False(seen.Applied);
        Assert.Null(lab.Read("x"));
    }

    [Theory]
    [InlineData(null, 2)]
    [InlineData("op-1", 1)]
    public async Task DuplicateDelivery_DoubleAppliesWithoutAnIdempotencyKey_OnceWithOne(string? idempotencyKey, long expected)
    {
        await using var lab = new SchedulerHarness("random:seed=1", new ChaosOptions { DuplicateDelivery = 1, Target = Only("patch") });
        WriteResult? reply = null;

        var result = lab.Run(new AgentSpec("a", async (agent, ct) =>
        {
            reply = await agent.Session(lab.Store, Ns).IncrementAsync("c", path: "/n", idempotencyKey: idempotencyKey, cancellationToken: ct).ConfigureAwait(false);
        }));

        Assert.Equal(expected, SchedulerHarness.N(lab.Read("c")));
        Assert.True(reply!.IsApplied);
        Assert.False(reply.Replayed); // the caller gets the first delivery's reply
        var fault = Assert.Single(result.Steps, s => s.Fault is not null).Fault!;
        Assert.Equal(idempotencyKey is null ? "delivered twice (2nd: ok v2)" : "delivered twice (2nd: ok v1 (replayed))", fault);
    }

    [Fact]
    public async Task BackendRestart_CallsFailDuringTheDowntime_ThenSucceed()
    {
        await using var lab = new SchedulerHarness("random:seed=1", new ChaosOptions { BackendRestart = 1, RestartDowntime = TimeSpan.FromSeconds(1), Target = Only("put") });
        var outcomes = new List<string>();

        var result = lab.Run(new AgentSpec("a", async (agent, ct) =>
        {
            var session = agent.Session(lab.Store, Ns);
            async Task TryAsync(Func<Task> call)
            {
                try
                {
                    await call().ConfigureAwait(false);
                    outcomes.Add("ok");
                }
                catch (StoreUnavailableException e) when (e.IsTransient)
                {
                    outcomes.Add("unavailable");
                }
            }

            await TryAsync(() => session.PutAsync("x", SchedulerHarness.Json("{\"n\":1}"), cancellationToken: ct).AsTask()).ConfigureAwait(false);
            await TryAsync(() => session.GetAsync("x", ct).AsTask()).ConfigureAwait(false);
            await agent.SleepAsync(TimeSpan.FromSeconds(1), cancellationToken: ct).ConfigureAwait(false);
            await TryAsync(() => session.GetAsync("x", ct).AsTask()).ConfigureAwait(false);
        }));

        Assert.Equal(["unavailable", "unavailable", "ok"], outcomes);
        Assert.Null(lab.Read("x")); // the restart hit before the write was applied
        Assert.Equal(1, result.Faults);
        Assert.StartsWith("backend restart (1.000 s down", result.Steps.Single(s => s.Fault is not null).Fault, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Latency_DelaysTheCallInVirtualTime()
    {
        var chaos = new ChaosOptions { Latency = 1, LatencyMin = TimeSpan.FromMilliseconds(250), LatencyMax = TimeSpan.FromMilliseconds(250), Target = Only("put") };
        await using var lab = new SchedulerHarness("random:seed=1", chaos);
        var appliedAt = TimeSpan.Zero;

        var result = lab.Run(new AgentSpec("a", async (agent, ct) =>
        {
            await agent.Session(lab.Store, Ns).PutAsync("x", SchedulerHarness.Json("{\"n\":1}"), cancellationToken: ct).ConfigureAwait(false);
            appliedAt = agent.Scheduler.Clock.Elapsed;
        }));

        Assert.Equal(TimeSpan.FromMilliseconds(250), appliedAt);
        Assert.Equal(TimeSpan.FromMilliseconds(250), lab.Read("x")!.CommittedAt - Concord.Lab.Time.VirtualTimeProvider.DefaultEpoch);
        Assert.Equal("latency 250 ms", result.Steps.Single(s => s.Operation == "put x blind").Fault);
        Assert.Contains(result.Steps, s => s.IsClock && s.Operation == "wakes: reply after 250 ms latency");
    }

    [Fact]
    public void Crash_AtAPoint_RestartsTheBodyAsANewProcess_AndTheAbandonedCallStaysPending()
    {
        var chaos = new ChaosOptions { Crash = 1, MaxFaults = 1, Target = site => site.Operation == "commit" };
        var scheduler = new ControlledScheduler(ScheduleSeed.Parse("random:seed=1"), new SchedulerOptions { Chaos = chaos });
        var lives = new List<(int Incarnation, int Process)>();
        var committed = 0;

        var result = scheduler.Run([new AgentSpec("worker", async (agent, ct) =>
        {
            lives.Add((agent.Incarnation, agent.Process));
            using var op = agent.History.Invoke(agent.Process, Functions.Write, "x", HistoryValue.Of(agent.Incarnation), agent.Name);
            await agent.PointAsync("commit").ConfigureAwait(false);
            committed++;
            op.Ok();
        }) { Restart = RestartPolicy.Immediately() }], Token);

        Assert.Null(result.Failure);
        Assert.Equal(AgentStatus.Done, result.Agents[0].Status);
        Assert.Equal(2, result.Agents[0].Incarnations);
        Assert.Equal([(0, 0), (1, 1)], lives);
        Assert.Equal(1, committed); // the crashed incarnation never ran past its point
        Assert.Equal([OperationType.Info, OperationType.Ok], result.History.Pairs.Select(p => p.Outcome));
        Assert.Null(result.History.Pairs[0].Completion); // pending forever, as in Jepsen
        Assert.Equal("crash (restarts at once)", result.Steps.Single(s => s.Fault is not null).Fault);
        Assert.Contains(result.Steps, s => s.Operation == "restart #1");
    }

    [Fact]
    public void Crash_WithRestartAfterADelay_RestartsLater_AndTheDeadIncarnationsTimersNeverFire()
    {
        var chaos = new ChaosOptions { Crash = 1, MaxFaults = 1, Target = site => site.Operation == "work" };
        // Round-robin: the crash comes before the clock could fire the 1 s timer.
        var scheduler = new ControlledScheduler(ScheduleSeed.Parse("delay-bounded:d=0:k=10:seed=1"), new SchedulerOptions { Chaos = chaos });
        var restartedAt = TimeSpan.MinValue;
        var zombie = false;

        var result = scheduler.Run([new AgentSpec("worker", async (agent, ct) =>
        {
            if (agent.Incarnation == 1)
            {
                restartedAt = agent.Scheduler.Clock.Elapsed;
                return;
            }

            _ = agent.SleepAsync(TimeSpan.FromSeconds(1), cancellationToken: ct).ContinueWith(_ => zombie = true, ct, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            await agent.PointAsync("work").ConfigureAwait(false);
        }) { Restart = RestartPolicy.After(TimeSpan.FromSeconds(5)) }], Token);

        Assert.Null(result.Failure);
        Assert.Equal(TimeSpan.FromSeconds(5), restartedAt);
        Assert.False(zombie);
        Assert.Equal("crash (restarts in 5.000 s)", result.Steps.Single(s => s.Fault is not null).Fault);
    }

    [Fact]
    public void Crash_WithoutRestart_LeavesTheAgentDead_AndTheRunCompletes()
    {
        var scheduler = new ControlledScheduler(ScheduleSeed.Parse("random:seed=1"), new SchedulerOptions { Chaos = new ChaosOptions { Crash = 1, Target = site => site.Agent == "doomed" } });

        var result = scheduler.Run([
            new AgentSpec("doomed", (agent, ct) => agent.PointAsync("work")),
            new AgentSpec("fine", (agent, ct) => agent.PointAsync("work")),
        ], Token);

        Assert.Null(result.Failure);
        Assert.Equal([AgentStatus.Dead, AgentStatus.Done], result.Agents.Select(a => a.Status));
    }

    [Fact]
    public async Task Pause_PastTheLease_LetsAnotherAgentTakeTheLock_AndTheFenceRefusesTheLateWrite()
    {
        var chaos = new ChaosOptions { Pause = 1, PauseLength = TimeSpan.FromSeconds(10), Target = site => site.Agent == "slow" && site.Operation.StartsWith("put report", StringComparison.Ordinal) };
        await using var lab = new SchedulerHarness("delay-bounded:d=0:k=50:seed=1", chaos);
        WriteResult? late = null;
        var lostBeforeWrite = false;

        AgentSpec Worker(string name) => new(name, async (agent, ct) =>
        {
            var locks = new StoreLockService(lab.Store, agent.Time);
            LockResult acquired;
            while (!(acquired = await locks.AcquireAsync(Ns, "report", new LockRequest { Owner = name, Ttl = TimeSpan.FromSeconds(5) }, ct).ConfigureAwait(false)).IsAcquired)
            {
                await agent.SleepAsync(TimeSpan.FromSeconds(1), "retry the lock", ct).ConfigureAwait(false);
            }

            var lease = acquired.Lease!;
            var write = await agent.Session(lab.Store, Ns).PutAsync("report", SchedulerHarness.Json($"{{\"n\":{lease.Token}}}"), Expect.Fenced(lease.Fence), cancellationToken: ct).ConfigureAwait(false);
            if (name == "slow")
            {
                late = write;
                lostBeforeWrite = lease.IsLost;
            }
        });

        var result = lab.Run(Worker("slow"), Worker("fast"));

        Assert.Null(result.Failure);
        Assert.Equal(ConflictKind.StaleFence, late!.Conflict); // a paused holder cannot corrupt data
        Assert.True(lostBeforeWrite);
        Assert.Equal(2, SchedulerHarness.N(lab.Read("report"))); // fast's token
        Assert.Equal("paused 10.000 s", result.Steps.Single(s => s.Fault is not null).Fault);
        Assert.True(result.Elapsed >= TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void ClockSkew_OffsetsEachAgentsWallClock_ButNotItsTimers()
    {
        var chaos = new ChaosOptions { MaxClockSkew = TimeSpan.FromSeconds(2) };
        ScheduleResult Run(string seed, List<(string Name, TimeSpan Skew, TimeSpan Offset, TimeSpan Slept)> seen)
        {
            var scheduler = new ControlledScheduler(ScheduleSeed.Parse(seed), new SchedulerOptions { Chaos = chaos });
            AgentSpec Agent(string name) => new(name, async (agent, ct) =>
            {
                var offset = agent.Time.GetUtcNow() - agent.Scheduler.Clock.GetUtcNow();
                var before = agent.Time.GetTimestamp();
                await agent.SleepAsync(TimeSpan.FromSeconds(1), cancellationToken: ct).ConfigureAwait(false);
                seen.Add((name, agent.ClockSkew, offset, agent.Time.GetElapsedTime(before)));
            });
            return scheduler.Run([Agent("a"), Agent("b"), Agent("c")], Token);
        }

        var seen = new List<(string Name, TimeSpan Skew, TimeSpan Offset, TimeSpan Slept)>();
        var result = Run("random:seed=3", seen);

        Assert.Null(result.Failure);
        Assert.All(seen, s => Assert.Equal(s.Skew, s.Offset));
        Assert.All(seen, s => Assert.InRange(s.Skew, TimeSpan.FromSeconds(-2), TimeSpan.FromSeconds(2)));
        Assert.All(seen, s => Assert.Equal(TimeSpan.FromSeconds(1), s.Slept));
        Assert.True(seen.Select(s => s.Skew).Distinct().Count() > 1);
        // Skews are decisions of the schedule: the replay has the same ones.
        var replayed = new List<(string Name, TimeSpan Skew, TimeSpan Offset, TimeSpan Slept)>();
        Run(result.ReplaySeed.Format(), replayed);
        Assert.Equal(seen.OrderBy(s => s.Name), replayed.OrderBy(s => s.Name));
    }

    [Fact]
    public async Task Target_RestrictsFaultsToTheChosenAgent()
    {
        await using var lab = new SchedulerHarness("random:seed=4", new ChaosOptions { UnknownOutcome = 1, Target = site => site.Agent == "b" });
        var failures = new Dictionary<string, int> { ["a"] = 0, ["b"] = 0 };
        AgentSpec Agent(string name) => new(name, async (agent, ct) =>
        {
            for (var i = 0; i < 3; i++)
            {
                try
                {
                    await agent.Session(lab.Store, Ns).IncrementAsync($"{name}/c", path: "/n", cancellationToken: ct).ConfigureAwait(false);
                }
                catch (InjectedFaultException)
                {
                    failures[name]++;
                }
            }
        });

        var result = lab.Run(Agent("a"), Agent("b"));

        Assert.Equal(0, failures["a"]);
        Assert.Equal(3, failures["b"]);
        Assert.Equal(3, result.Faults);
    }

    [Fact]
    public async Task MaxFaults_CapsTheFaultsOfARun()
    {
        await using var lab = new SchedulerHarness("random:seed=4", new ChaosOptions { TransientFailure = 1, MaxFaults = 2 });
        var failures = 0;

        var result = lab.Run(new AgentSpec("a", async (agent, ct) =>
        {
            for (var i = 0; i < 5; i++)
            {
                try
                {
                    await agent.Session(lab.Store, Ns).GetAsync("x", ct).ConfigureAwait(false);
                }
                catch (InjectedFaultException)
                {
                    failures++;
                }
            }
        }));

        Assert.Equal(2, failures);
        Assert.Equal(2, result.Faults);
    }

    [Fact]
    public async Task Faults_ArePartOfTheSchedule_AReplayInjectsTheSameOnes()
    {
        var scenario = new RetryCounterScenario(idempotent: false);
        var original = await LabRunner.RunOnceAsync(scenario, ScheduleSeed.Parse("random:seed=11"), cancellationToken: Token);
        Assert.True(original.Result.Faults > 0);

        var replay = await LabRunner.RunOnceAsync(scenario, ScheduleSeed.Parse(original.Result.ReplaySeed.Format()), cancellationToken: Token);

        Assert.Equal(original.Result.Faults, replay.Result.Faults);
        Assert.Equal(original.Result.Format(), replay.Result.Format());
        Assert.Equal(original.Verdict, replay.Verdict);
    }

    [Theory]
    [InlineData(1.5, 0)]
    [InlineData(-0.1, 0)]
    [InlineData(0.7, 0.7)]
    public void Validate_BadProbabilities_Throw(double unknown, double transient)
    {
        var options = new ChaosOptions { UnknownOutcome = unknown, TransientFailure = transient };

        Assert.Throws<ArgumentException>(options.Validate);
        Assert.Throws<ArgumentException>(() => new ControlledScheduler(ScheduleSeed.Parse("random:seed=1"), new SchedulerOptions { Chaos = options }));
    }
}
