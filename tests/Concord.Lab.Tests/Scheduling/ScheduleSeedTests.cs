using Concord.Lab.Scheduling;
using CsCheck;

namespace Concord.Lab.Tests.Scheduling;

public sealed class ScheduleSeedTests
{
    [Theory]
    [InlineData("random:seed=42")]
    [InlineData("pct:d=3:seed=42")]
    [InlineData("pct:d=3:k=40:seed=42")]
    [InlineData("delay-bounded:d=0:k=7:seed=0")]
    [InlineData("random:agents=0,2:seed=9")]
    [InlineData("replay:c=")]
    [InlineData("replay:agents=1,2:c=0.0.4")]
    [InlineData("replay:c=1:a0=3:a2=0.1")]
    public void FormatOfParse_IsTheSameString(string text)
    {
        Assert.Equal(text, ScheduleSeed.Parse(text).Format());
    }

    [Fact]
    public void Parse_AcceptsAnyOrderAndCase_AndFillsDefaults()
    {
        var seed = ScheduleSeed.Parse("PCT:seed=5:k=12");

        Assert.Equal(StrategyKind.Pct, seed.Strategy);
        Assert.Equal(ScheduleSeed.DefaultPctDepth, seed.Depth);
        Assert.Equal(12, seed.Steps);
        Assert.Equal(5, seed.Seed);
        Assert.Equal("pct:d=3:k=12:seed=5", seed.Format());
        Assert.Equal("delay-bounded:d=2:seed=1", ScheduleSeed.Parse("delay:seed=1").Format());
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("fair:seed=1", "unknown strategy \"fair\"")]
    [InlineData("random", "has no seed=N")]
    [InlineData("random:seed=-1", "non-negative integer")]
    [InlineData("random:seed=1:d=2", "not understood by strategy random")]
    [InlineData("pct:d=0:seed=1", "from 1 to 1000")]
    [InlineData("pct:k=0:seed=1", "positive integer")]
    [InlineData("pct:seed=1:seed=2", "appears twice")]
    [InlineData("replay:c=1.x", "non-negative integers separated by dots")]
    [InlineData("replay:agents=1,1", "distinct")]
    [InlineData("random:seed", "is not name=value")]
    public void TryParse_Malformed_SaysWhy(string text, string reason)
    {
        Assert.False(ScheduleSeed.TryParse(text, out _, out var error));
        Assert.Contains(reason, error, StringComparison.Ordinal);
        Assert.Throws<FormatException>(() => ScheduleSeed.Parse(text));
    }

    [Fact]
    public void ForReplay_DropsTrailingZeros_AndEmptyAgentStreams()
    {
        var seed = ScheduleSeed.ForReplay([1, 0, 2, 0, 0], new Dictionary<int, IReadOnlyList<int>> { [0] = [0, 0], [3] = [5, 0] }, [0, 3]);

        Assert.Equal("replay:agents=0,3:c=1.0.2:a3=5", seed.Format());
    }

    [Fact]
    public void Offset_NumbersTheSchedulesOfASeries()
    {
        Assert.Equal("pct:d=3:k=9:seed=107", ScheduleSeed.Parse("pct:d=3:k=9:seed=100").Offset(7).Format());
    }

    [Fact]
    public void ParseFormat_RoundTrips_ForGeneratedSeeds()
    {
        var generated = Gen.Select(Gen.Int[0, 3], Gen.Long[0, long.MaxValue], Gen.Int[0, 20], Gen.Int[1, 500].Array[0, 3], Gen.Int[0, 9].Array[0, 12])
            .Select(t =>
            {
                var (kind, number, depth, agents, choices) = t;
                var strategy = (StrategyKind)kind;
                var seed = strategy == StrategyKind.Replay
                    ? ScheduleSeed.ForReplay(choices, new Dictionary<int, IReadOnlyList<int>> { [1] = choices }, agents.Length == 0 ? null : [.. agents.Distinct().Order()])
                    : ScheduleSeed.For(strategy, number) with { Depth = strategy == StrategyKind.Pct ? depth + 1 : strategy == StrategyKind.DelayBounded ? depth : 0 };
                return seed;
            });

        generated.Sample(seed => Assert.Equal(seed, ScheduleSeed.Parse(seed.Format())), iter: 500);
    }
}
