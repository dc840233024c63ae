using Concord.Lab.Scheduling;
using Concord.Lab.Scheduling.Strategies;

namespace Concord.Lab.Tests.Scheduling;

public sealed class StrategyTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <summary>
    /// A depth-2 bug: A sets x = 1 and later checks it; B takes 20 steps of other work, then sets x = 0. The check fails
    /// only if B's write lands between A's two steps: A must be preempted right after its write (one ordering
    /// constraint) and B must then run to the end before A resumes (the second). A random walk almost never lets B run
    /// 21 steps in a row; PCT does whenever A starts with the higher priority and the change point hits A's write.
    /// </summary>
    private static bool BuggyProgramFails(string seed, out ScheduleResult result)
    {
        var x = 0;
        var bug = false;
        var a = new AgentSpec("A", async (agent, ct) =>
        {
            await agent.PointAsync("x = 1").ConfigureAwait(false);
            x = 1;
            await agent.PointAsync("check x == 1").ConfigureAwait(false);
            bug |= x != 1;
        });
        var b = new AgentSpec("B", async (agent, ct) =>
        {
            for (var i = 0; i < 20; i++) await agent.PointAsync($"work {i}").ConfigureAwait(false);
            await agent.PointAsync("x = 0").ConfigureAwait(false);
            x = 0;
        });
        result = new ControlledScheduler(ScheduleSeed.Parse(seed)).Run([a, b], Token);
        Assert.Null(result.Failure);
        return bug;
    }

    private static int Found(string strategy, int schedules) =>
        Enumerable.Range(1, schedules).Count(i => BuggyProgramFails($"{strategy}:seed={i}", out _));

    [Fact]
    public void Pct_DepthTwoBug_FoundWithinAFewHundredSchedules_WhereTheRandomWalkMissesIt()
    {
        var pct = Found("pct:d=2:k=25", 300);
        var random = Found("random", 300);

        Assert.True(pct >= 2, $"PCT found the bug in {pct} of 300 schedules");
        Assert.True(pct > random * 2, $"PCT {pct} vs random {random}");
        // The guarantee: ≥ 1/(n·k) per run for depth 2 (n = 3 entities with the clock, k = 25) ≈ 1.3% → 300 runs expect ≥ 4.
    }

    [Fact]
    public void DelayBounded_OneDelay_FindsTheDepthTwoBug()
    {
        var found = Found("delay-bounded:d=1:k=25", 200);

        Assert.True(found >= 2, $"delay-bounded found the bug in {found} of 200 schedules");
        // Without a delay the round-robin scheduler runs A to the end first: never the bug.
        Assert.Equal(0, Found("delay-bounded:d=0:k=25", 10));
    }

    [Fact]
    public void FoundBug_ReplaysFromItsSeedString()
    {
        var seed = Enumerable.Range(1, 300).Select(i => $"pct:d=2:k=25:seed={i}").First(s => BuggyProgramFails(s, out _));
        Assert.True(BuggyProgramFails(seed, out var original));

        Assert.True(BuggyProgramFails(original.ReplaySeed.Format(), out var replayed));
        Assert.Equal(original.Format(), replayed.Format());
    }

    private static string Interleaving(string seed)
    {
        var agents = new[] { "a", "b", "c" }.Select(name => new AgentSpec(name, async (agent, ct) =>
        {
            for (var i = 0; i < 3; i++) await agent.PointAsync($"{name}{i}").ConfigureAwait(false);
        })).ToList();
        var result = new ControlledScheduler(ScheduleSeed.Parse(seed)).Run(agents, Token);
        return string.Join(" ", result.Steps.Select(s => s.Operation));
    }

    [Theory]
    [InlineData("random")]
    [InlineData("pct:d=3:k=12")]
    [InlineData("delay-bounded:d=2:k=12")]
    public void Strategy_ExploresDifferentInterleavings(string strategy)
    {
        var distinct = Enumerable.Range(1, 60).Select(i => Interleaving($"{strategy}:seed={i}")).ToHashSet();

        Assert.True(distinct.Count >= 5, $"{strategy}: {distinct.Count} distinct interleavings of 60");
    }

    [Fact]
    public void DelayBounded_ZeroDelays_IsOneDeterministicRoundRobin()
    {
        var distinct = Enumerable.Range(1, 30).Select(i => Interleaving($"delay-bounded:d=0:k=12:seed={i}")).ToHashSet();

        var only = Assert.Single(distinct);
        // Non-preemptive: each agent runs until it finishes, then the next in order.
        Assert.Equal("start a0 a1 a2 start b0 b1 b2 start c0 c1 c2", only);
    }

    [Fact]
    public void Strategies_ExploreDifferentSetsOfInterleavings()
    {
        var random = Enumerable.Range(1, 60).Select(i => Interleaving($"random:seed={i}")).ToHashSet();
        var pct = Enumerable.Range(1, 60).Select(i => Interleaving($"pct:d=3:k=12:seed={i}")).ToHashSet();

        Assert.False(random.SetEquals(pct));
        // PCT runs an agent until a change point, so it favours long uninterrupted runs; the random walk switches often.
        static int Switches(string trace)
        {
            var owners = trace.Split(' ').Where(op => op != "start").Select(op => op[0]).ToList();
            return owners.Zip(owners.Skip(1)).Count(p => p.First != p.Second);
        }

        Assert.True(pct.Average(Switches) < random.Average(Switches), $"pct {pct.Average(Switches):0.0} vs random {random.Average(Switches):0.0} switches");
    }

    [Fact]
    public void Pct_PrioritiesAndChangePoints_FollowThePaper()
    {
        var pct = new PctStrategy(agents: 4, depth: 3, steps: 50, new Random(7));

        var priorities = Enumerable.Range(0, 5).Select(pct.PriorityOf).ToList();
        Assert.Equal(Enumerable.Range(3, 5), priorities.Order()); // a permutation of d … d + n (the clock is entity 4)
        Assert.Equal(2, pct.ChangePoints.Count);
        Assert.All(pct.ChangePoints, p => Assert.InRange(p, 1, 50));

        // Between change points the highest-priority candidate runs; at the i-th change point it drops to d − i.
        var highest = Enumerable.Range(0, 5).MaxBy(pct.PriorityOf);
        var step = pct.ChangePoints[0];
        var chosen = pct.Choose(new SchedulingChoice(step, [0, 1, 2, 3, 4], 4));
        Assert.Equal(highest, chosen);
        Assert.Equal(2, pct.PriorityOf(highest));
        Assert.NotEqual(highest, pct.Choose(new SchedulingChoice(step + 1, [0, 1, 2, 3, 4], 4)));
    }

    [Fact]
    public void DelayBounded_DelayPoint_SkipsToTheNextCandidate()
    {
        var strategy = new DelayBoundedStrategy(delays: 2, steps: 1, new Random(1)); // both delays on step 1

        Assert.Equal([1, 1], strategy.DelayPoints);
        Assert.Equal(2, strategy.Choose(new SchedulingChoice(1, [0, 1, 2], 3)));
        Assert.Equal(1, strategy.Choose(new SchedulingChoice(1, [0, 1], 3)));
        Assert.Equal(0, strategy.Choose(new SchedulingChoice(2, [0, 1, 2], 3)));
    }
}
