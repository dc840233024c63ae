using System.Diagnostics;
using System.Text.Json;
using Concord.Agents;
using Concord.Coordination.Queues;
using Concord.Coordination.Streams;
using Concord.Diagnostics;
using Concord.Engine;
using Concord.OpenTelemetry;
using Microsoft.Extensions.Time.Testing;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Concord.Tests.Diagnostics;

/// <summary>Trace context through queue tasks and stream events, causal context on spans, queue metrics.</summary>
[Collection(nameof(TelemetryTests))] // listeners are process-wide: don't run beside other telemetry tests
public sealed class MessagingTelemetryTests
{
    private static readonly ActivitySource Test = new("Concord.Tests.Messaging");
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private static JsonElement J(string json) => JsonDocument.Parse(json).RootElement.Clone();
    private static string NewNs() => "otel-" + Guid.NewGuid().ToString("N")[..8];
    private static bool In(Activity a, string ns) => (string?)a.GetTagItem(ConcordTelemetry.Tags.Namespace) == ns;

    [Fact]
    public async Task Queue_ConsumerSpansLinkToTheProducerSpan()
    {
        var spans = new List<Activity>();
        using var tracer = Sdk.CreateTracerProviderBuilder().AddSource(Test.Name).AddConcordInstrumentation().AddInMemoryExporter(spans).Build();
        var ns = NewNs();
        await using var store = ConcordEngine.CreateInMemory();
        var queues = new StoreQueueService(new InstrumentedStore(store));

        ActivityContext producer;
        using (var parent = Test.StartActivity("plan-work"))
        {
            await queues.EnqueueAsync(ns, "jobs", J("""{"n":1}"""), new EnqueueOptions { Agent = "planner" }, Ct);
            producer = parent!.Context;
        }
        var lease = (await queues.LeaseAsync(ns, "jobs", "worker-1", TimeSpan.FromMinutes(1), cancellationToken: Ct)).Lease!;
        using (var handle = Test.StartActivity("worker-loop"))
        using (var process = ConcordTelemetry.StartQueueProcess(lease))
        {
            await queues.AckAsync(lease, [TxnOp.Put("result", J("""{"ok":true}"""))], Ct);
        }
        tracer.ForceFlush();

        var enqueue = spans.Single(s => s.DisplayName == "concord.queue.enqueue" && In(s, ns));
        Assert.Equal(ActivityKind.Producer, enqueue.Kind);
        Assert.Equal(producer.SpanId, enqueue.ParentSpanId); // the enqueue continues the caller's trace
        Assert.Equal("jobs", enqueue.GetTagItem(ConcordTelemetry.Tags.MessagingDestination));
        Assert.Equal(lease.TaskId, enqueue.GetTagItem(ConcordTelemetry.Tags.MessagingMessageId));
        Assert.Equal("planner", enqueue.GetTagItem(ConcordTelemetry.Tags.AgentId));
        Assert.Equal(enqueue.Id, lease.TraceParent); // the task carries the producer's W3C traceparent

        var leaseSpan = spans.Single(s => s.DisplayName == "concord.queue.lease" && In(s, ns));
        var processSpan = spans.Single(s => s.DisplayName == "concord.queue.process" && In(s, ns));
        foreach (var consumer in new[] { leaseSpan, processSpan })
        {
            Assert.Equal(ActivityKind.Consumer, consumer.Kind);
            var link = Assert.Single(consumer.Links);
            Assert.Equal(enqueue.TraceId, link.Context.TraceId);
            Assert.Equal(enqueue.SpanId, link.Context.SpanId);
            Assert.Equal("worker-1", consumer.GetTagItem(ConcordTelemetry.Tags.AgentId));
            Assert.Equal(1, consumer.GetTagItem(ConcordTelemetry.Tags.DeliveryAttempt));
        }
        // The process span belongs to the consumer's own trace, and the ack's store spans are its children.
        Assert.NotEqual(enqueue.TraceId, processSpan.TraceId);
        Assert.Contains(spans, s => s.DisplayName == "concord.txn" && s.ParentSpanId == processSpan.SpanId);
    }

    [Fact]
    public async Task Stream_DeliverSpanLinksToTheAppendSpan()
    {
        var spans = new List<Activity>();
        using var tracer = Sdk.CreateTracerProviderBuilder().AddConcordInstrumentation().AddInMemoryExporter(spans).Build();
        var ns = NewNs();
        await using var store = ConcordEngine.CreateInMemory();
        var streams = new StoreStreamService(store);
        await streams.AppendAsync(ns, "orders-1", [new EventData("placed", J("""{"total":3}"""))], ExpectedVersion.NoStream, new AppendOptions { Agent = "shop" }, Ct);

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        RecordedEvent? seen = null;
        string? deliverId = null;
        var run = streams.RunConsumerGroupAsync(ns, "billing", StreamFilter.ForStream("orders-1"), async (e, ct) =>
        {
            seen = e;
            deliverId = Activity.Current?.Id;
            await cts.CancelAsync();
        }, cancellationToken: cts.Token);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
        tracer.ForceFlush();

        var append = spans.Single(s => s.DisplayName == "concord.stream.append" && In(s, ns));
        Assert.Equal(ActivityKind.Producer, append.Kind);
        Assert.Equal("shop", append.GetTagItem(ConcordTelemetry.Tags.AgentId));
        Assert.NotNull(seen);
        Assert.Equal(append.Id, seen!.TraceParent);
        var deliver = spans.Single(s => s.DisplayName == "concord.stream.deliver" && In(s, ns));
        Assert.Equal(deliver.Id, deliverId); // the handler runs inside the deliver span
        Assert.Equal("billing", deliver.GetTagItem(ConcordTelemetry.Tags.ConsumerGroup));
        Assert.Equal(1L, deliver.GetTagItem(ConcordTelemetry.Tags.StreamVersion));
        var link = Assert.Single(deliver.Links);
        Assert.Equal(append.SpanId, link.Context.SpanId);
        Assert.Equal(append.TraceId, link.Context.TraceId);
    }

    [Fact]
    public async Task Queue_UntracedProducer_NoTraceParentAndNoLink()
    {
        var ns = NewNs();
        await using var store = ConcordEngine.CreateInMemory();
        var queues = new StoreQueueService(store);
        // Listeners are process-wide: another test's tracer (an in-process server's, say) may be listening right now.
        Assert.SkipWhen(ConcordTelemetry.ActivitySource.HasListeners(), "another test's listener is active; an untraced producer cannot be arranged");
        await queues.EnqueueAsync(ns, "jobs", J("1"), cancellationToken: Ct); // nobody listens: no span, nothing stored
        var spans = new List<Activity>();
        using var tracer = Sdk.CreateTracerProviderBuilder().AddConcordInstrumentation().AddInMemoryExporter(spans).Build();
        var lease = (await queues.LeaseAsync(ns, "jobs", "w", TimeSpan.FromMinutes(1), cancellationToken: Ct)).Lease!;
        Assert.Null(lease.TraceParent);
        tracer.ForceFlush();
        Assert.Empty(spans.Single(s => s.DisplayName == "concord.queue.lease" && In(s, ns)).Links);
    }

    [Fact]
    public async Task Queue_MetricsCountDepthAgeDeadLettersAndLostLeases()
    {
        var metrics = new List<Metric>();
        using var meter = Sdk.CreateMeterProviderBuilder().AddConcordInstrumentation().AddInMemoryExporter(metrics).Build();
        var queue = "m-" + Guid.NewGuid().ToString("N")[..8]; // metrics carry the queue, not the namespace
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        await using var store = ConcordEngine.CreateInMemory(new ConcordEngineOptions { TimeProvider = time });
        var queues = new StoreQueueService(store, new QueueServiceOptions { TimeProvider = time, DefaultMaxAttempts = 1 });
        var ns = NewNs();
        for (var i = 0; i < 3; i++) await queues.EnqueueAsync(ns, queue, J($"{i}"), cancellationToken: Ct);
        time.Advance(TimeSpan.FromSeconds(10));
        var a = (await queues.LeaseAsync(ns, queue, "w", TimeSpan.FromSeconds(5), cancellationToken: Ct)).Lease!;
        await queues.AckAsync(a, cancellationToken: Ct);                              // depth 3 → 2
        var b = (await queues.LeaseAsync(ns, queue, "w", TimeSpan.FromSeconds(5), cancellationToken: Ct)).Lease!;
        Assert.Equal(NackStatus.DeadLettered, (await queues.NackAsync(b, "boom", cancellationToken: Ct)).Status); // dead letter 1
        _ = (await queues.LeaseAsync(ns, queue, "w", TimeSpan.FromSeconds(5), cancellationToken: Ct)).Lease!;
        time.Advance(TimeSpan.FromSeconds(6));
        Assert.Equal(1, await queues.ReclaimExpiredAsync(ns, queue, Ct));                 // lease lost, dead letter 2
        meter.ForceFlush();

        Assert.Equal(3, Sum(metrics, "concord.queue.enqueued", queue));
        Assert.Equal(2, Sum(metrics, "concord.queue.depth", queue)); // the two dead letters are still in the queue
        Assert.Equal(2, Sum(metrics, "concord.queue.dead_letters", queue));
        Assert.Equal(1, Sum(metrics, "concord.lease.lost", queue));
        var age = Points(metrics, "concord.queue.age", queue);
        Assert.Equal(3, age.Sum(p => p.GetHistogramCount()));
        Assert.Equal(30.0, age.Sum(p => p.GetHistogramSum()), 3); // each task waited 10 s (fake clock)
    }

    [Fact]
    public async Task AgentRuntime_InvokeAgentSpanLinksToTheEnqueueSpan()
    {
        var spans = new List<Activity>();
        using var tracer = Sdk.CreateTracerProviderBuilder().AddConcordInstrumentation().AddInMemoryExporter(spans).Build();
        var ns = NewNs();
        await using var store = ConcordEngine.CreateInMemory();
        var runtime = new AgentRuntime(store, ns, new AgentRuntimeOptions { StopWhenIdle = true, WatchForExternalWork = false });
        runtime.AddAgent("planner").OnStart(async (ctx, ct) => await ctx.EnqueueAsync("work", new { n = 1 }, cancellationToken: ct));
        string? taskId = null;
        runtime.AddAgent("worker").OnTask("work", (ctx, ct) =>
        {
            taskId = ctx.TaskId;
            return Task.CompletedTask;
        });
        await runtime.RunAsync(Ct);
        tracer.ForceFlush();

        Assert.NotNull(taskId);
        var enqueue = spans.Single(s => s.DisplayName == "concord.queue.enqueue" && In(s, ns));
        var invoke = spans.Single(s => s.DisplayName.StartsWith("invoke_agent", StringComparison.Ordinal) && (string?)s.GetTagItem("concord.task.id") == taskId);
        var link = Assert.Single(invoke.Links);
        Assert.Equal(enqueue.SpanId, link.Context.SpanId);
        Assert.Equal(enqueue.TraceId, link.Context.TraceId);
    }

    [Fact]
    public async Task Put_SpanCarriesCausalContext()
    {
        var spans = new List<Activity>();
        using var tracer = Sdk.CreateTracerProviderBuilder().AddConcordInstrumentation().AddInMemoryExporter(spans).Build();
        var ns = NewNs();
        await using var store = new InstrumentedStore(ConcordEngine.CreateInMemory());
        var a = new ConcordSession(store, ns, "a");
        var first = await a.PutAsync("k", J("1"), cancellationToken: Ct);
        var second = await a.PutAsync("k", J("2"), cancellationToken: Ct); // the session sends the context it read back
        await store.GetAsync(ns, "k", cancellationToken: Ct);
        tracer.ForceFlush();

        var puts = spans.Where(s => s.DisplayName == "concord.put" && In(s, ns)).ToList();
        Assert.Equal(2, puts.Count);
        Assert.Equal(first.Record!.Causal!.Context.ToString(), puts[0].GetTagItem(ConcordTelemetry.Tags.CausalContext));
        Assert.Equal(first.Record.Causal.Dot.ToString(), puts[0].GetTagItem(ConcordTelemetry.Tags.CausalDot));
        Assert.Equal(second.Record!.Causal!.Context.ToString(), puts[1].GetTagItem(ConcordTelemetry.Tags.CausalContext));
        Assert.Equal(first.Record.Causal.Context.ToString(), puts[1].GetTagItem(ConcordTelemetry.Tags.CausalContextSent));
        Assert.NotEqual(puts[0].GetTagItem(ConcordTelemetry.Tags.CausalDot), puts[1].GetTagItem(ConcordTelemetry.Tags.CausalDot));
        var get = spans.Single(s => s.DisplayName == "concord.get" && In(s, ns));
        Assert.Equal(second.Record.Causal.Dot.ToString(), get.GetTagItem(ConcordTelemetry.Tags.CausalDot));
    }

    private static List<MetricPoint> Points(List<Metric> metrics, string name, string queue)
    {
        // Cumulative temporality: the last export of each metric holds the totals.
        var points = new List<MetricPoint>();
        foreach (var p in metrics.Last(m => m.Name == name).GetMetricPoints())
        {
            foreach (var tag in p.Tags)
            {
                if (tag.Key == ConcordTelemetry.Tags.MessagingDestination && (string?)tag.Value == queue) points.Add(p);
            }
        }
        return points;
    }

    private static long Sum(List<Metric> metrics, string name, string queue) =>
        Points(metrics, name, queue).Sum(p => p.GetSumLong());
}
