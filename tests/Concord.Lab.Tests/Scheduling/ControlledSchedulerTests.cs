using System.Text.Json;
using Concord.Engine;
using Concord.Lab.History;
using Concord.Lab.Scheduling;

namespace Concord.Lab.Tests.Scheduling;

public sealed class ControlledSchedulerTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static JsonElement Json(string text) => HistoryValue.Parse(text);

    /// <summary>Two agents each read a counter, think, and write it back: a lost-update-prone program.</summary>
    private static ScheduleResult RunCounter(string seed, out long final)
    {
        var scheduler = new ControlledScheduler(ScheduleSeed.Parse(seed));
        var engine = ConcordEngine.CreateInMemory(new ConcordEngineOptions { TimeProvider = scheduler.StoreClock });
        var store = new ScheduledStore(engine, scheduler);
        AgentSpec Agent(string name) => new(name, async (agent, ct) =>
        {
            var session = agent.Session(store, "lab");
            var read = await session.GetAsync("c", ct).ConfigureAwait(false);
            var n = read is null ? 0 : read.Value.GetProperty("n").GetInt32();
            await agent.ThinkAsync("next value", TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(100), ct).ConfigureAwait(false);
            await session.PutAsync("c", Json($"{{\"n\":{n + 1}}}"), Expect.Any, cancellationToken: ct).ConfigureAwait(false);
        });
        var result = scheduler.Run([Agent("a"), Agent("b")], Token);
        var record = engine.GetAsync("lab", "c", null, Token).AsTask().Result;
        final = record!.Value.GetProperty("n").GetInt32();
        return result;
    }

    [Fact]
    public void Run_StoreCallsAndThinks_CompletesWithoutEscape()
    {
        var result = RunCounter("random:seed=1", out var final);

        Assert.Null(result.Failure);
        Assert.All(result.Agents, a => Assert.Equal(AgentStatus.Done, a.Status));
        Assert.InRange(final, 1, 2);
        Assert.Contains(result.Steps, s => s.Operation == "get c" && s.Result == "absent");
        Assert.Contains(result.Steps, s => s.Operation.StartsWith("put c blind", StringComparison.Ordinal) && s.Result!.StartsWith("ok v", StringComparison.Ordinal));
        Assert.Contains(result.Steps, s => s.IsClock && s.Operation.StartsWith("wakes: answer to next value", StringComparison.Ordinal));
        Assert.True(result.Elapsed >= TimeSpan.FromMilliseconds(10));
    }

    [Fact]
    public void Run_SameSeedTwentyTimes_IdenticalTrace()
    {
        var first = RunCounter("pct:d=3:k=12:seed=77", out var firstFinal);
        for (var i = 0; i < 20; i++)
        {
            var again = RunCounter("pct:d=3:k=12:seed=77", out var final);
            Assert.Equal(first.Format(), again.Format());
            Assert.Equal(first.Choices, again.Choices);
            Assert.Equal(firstFinal, final);
        }
    }

    [Fact]
    public void Run_TaskYieldInAgent_FailsLoudlyAsEscape()
    {
        var scheduler = new ControlledScheduler(ScheduleSeed.Parse("random:seed=1"));
        var result = scheduler.Run([new AgentSpec("yielder", async (agent, ct) =>
        {
            await agent.PointAsync("before").ConfigureAwait(false);
            await Task.Yield();
            await agent.PointAsync("after").ConfigureAwait(false);
        })], Token);

        Assert.True(result.Escaped);
        Assert.Contains("yielder", result.Failure, StringComparison.Ordinal);
    }
}
