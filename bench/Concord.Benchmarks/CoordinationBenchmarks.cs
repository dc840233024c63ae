using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Concord.Coordination.Queues;
using Concord.Coordination.Streams;
using Concord.Engine;

namespace Concord.Benchmarks;

/// <summary>
/// Queue and stream operations on the memory engine. <see cref="CompletedTasks"/> tasks are pushed through the queue
/// before measuring, so the figure shows whether a lease gets slower as completed tasks accumulate (it must not: the
/// store's list index skips deleted keys). Baseline: one create-only put, the cheapest durable write.
/// </summary>
/// <remarks>
/// <c>dotnet run -c Release --project bench/Concord.Benchmarks -- --filter *CoordinationBenchmarks*</c>
/// </remarks>
[MemoryDiagnoser]
public class CoordinationBenchmarks
{
    private const string Ns = "bench";
    private readonly JsonElement _payload = JsonDocument.Parse("""{"n":1}""").RootElement.Clone();
    private ConcordEngine _engine = null!;
    private StoreQueueService _queues = null!;
    private StoreStreamService _streams = null!;
    private long _next;

    /// <summary>Tasks completed before measuring.</summary>
    [Params(0, 10_000)]
    public int CompletedTasks { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _engine = ConcordEngine.CreateInMemory();
        _queues = new StoreQueueService(_engine);
        _streams = new StoreStreamService(_engine);
        for (var i = 0; i < CompletedTasks; i++) EnqueueLeaseAck().GetAwaiter().GetResult();
    }

    [GlobalCleanup]
    public void Cleanup() => _engine.DisposeAsync().AsTask().GetAwaiter().GetResult();

    [Benchmark(Baseline = true, Description = "create-only put")]
    public ValueTask<WriteResult> Put() => _engine.PutAsync(Ns, $"k/{_next++}", _payload, new WriteOptions { Expect = Expect.Absent });

    [Benchmark(Description = "enqueue + lease + ack")]
    public async Task EnqueueLeaseAck()
    {
        await _queues.EnqueueAsync(Ns, "q", _payload);
        var lease = await _queues.LeaseAsync(Ns, "q", "c", TimeSpan.FromMinutes(1));
        await _queues.AckAsync(lease.Lease!);
    }

    [Benchmark(Description = "stream append (1 event)")]
    public ValueTask<AppendResult> Append() =>
        _streams.AppendAsync(Ns, $"s/{_next++ % 100}", [new EventData("E", _payload)], ExpectedVersion.Any);
}
