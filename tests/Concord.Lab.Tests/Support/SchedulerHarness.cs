using System.Text.Json;
using Concord.Engine;
using Concord.Lab.Chaos;
using Concord.Lab.History;
using Concord.Lab.Scheduling;

namespace Concord.Lab.Tests.Support;

/// <summary>A scheduler with a fresh in-memory engine behind a scheduled (and, with chaos, a chaos) store.</summary>
internal sealed class SchedulerHarness : IAsyncDisposable
{
    public SchedulerHarness(string seed, ChaosOptions? chaos = null, int maxSteps = 10_000)
    {
        Scheduler = new ControlledScheduler(ScheduleSeed.Parse(seed), new SchedulerOptions { Chaos = chaos ?? ChaosOptions.None, MaxSteps = maxSteps });
        Engine = ConcordEngine.CreateInMemory(new ConcordEngineOptions { TimeProvider = Scheduler.StoreClock });
        Store = new ScheduledStore(chaos is { HasStoreFaults: true } ? new ChaosStore(Engine, Scheduler) : Engine, Scheduler);
    }

    public const string Ns = "lab";

    public ControlledScheduler Scheduler { get; }

    public ConcordEngine Engine { get; }

    public IConcordStore Store { get; }

    public ScheduleResult Run(params AgentSpec[] agents) => Scheduler.Run(agents, TestContext.Current.CancellationToken);

    public ConcordRecord? Read(string key) => Engine.GetAsync(Ns, key, null, TestContext.Current.CancellationToken).AsTask().GetAwaiter().GetResult();

    public static JsonElement Json(string text) => HistoryValue.Parse(text);

    public static long N(ConcordRecord? record) => record is null ? 0 : record.Value.GetProperty("n").GetInt64();

    public ValueTask DisposeAsync() => Engine.DisposeAsync();
}
