using System.Diagnostics;
using System.Text.Json;
using Concord.Coordination.Locks;
using Concord.Diagnostics;
using Concord.Engine;
using Concord.OpenTelemetry;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Concord.Tests.Diagnostics;

[Collection(nameof(TelemetryTests))] // listeners are process-wide: don't run beside other telemetry tests
public sealed class TelemetryTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private static JsonElement J(string json) => JsonDocument.Parse(json).RootElement.Clone();

    [Fact]
    public async Task Operations_EmitSpansWithVersionsConflictsAndAgent()
    {
        var spans = new List<Activity>();
        using var tracer = Sdk.CreateTracerProviderBuilder().AddConcordInstrumentation().AddInMemoryExporter(spans).Build();
        var ns = "otel-" + Guid.NewGuid().ToString("N")[..8];
        await using var store = new InstrumentedStore(ConcordEngine.CreateInMemory());
        var fees = new ConcordSession(store, ns, "fees");
        var compliance = new ConcordSession(store, ns, "compliance");
        await fees.PutAsync("acct/42", J("""{"fees":"unpaid"}"""), Expect.Absent, cancellationToken: Ct);
        await compliance.PutAsync("acct/42", J("""{"c":"ok"}"""), Expect.Version(1), cancellationToken: Ct);
        var lost = await fees.PutAsync("acct/42", J("""{"fees":"paid"}"""), Expect.Version(1), cancellationToken: Ct);
        Assert.False(lost.IsApplied);
        tracer.ForceFlush();

        var mine = spans.Where(s => (string?)s.GetTagItem(ConcordTelemetry.Tags.Namespace) == ns).ToList();
        Assert.Equal(3, mine.Count(s => s.DisplayName == "concord.put"));
        var conflict = mine.Single(s => s.GetTagItem(ConcordTelemetry.Tags.Conflict) is not null);
        Assert.Equal("VersionMismatch", conflict.GetTagItem(ConcordTelemetry.Tags.Conflict));
        Assert.Equal(1L, conflict.GetTagItem(ConcordTelemetry.Tags.ExpectedVersion));
        Assert.Equal(2L, conflict.GetTagItem(ConcordTelemetry.Tags.Version));
        Assert.Equal("fees", conflict.GetTagItem(ConcordTelemetry.Tags.AgentId));
        Assert.Equal("acct/42", conflict.GetTagItem(ConcordTelemetry.Tags.Key));
        var evt = Assert.Single(conflict.Events);
        Assert.Equal("compliance", evt.Tags.Single(t => t.Key == "concord.current_writer").Value);
    }

    [Fact]
    public async Task UpdateAsync_RetriesAppearAsEventsAndMetrics()
    {
        var spans = new List<Activity>();
        var metrics = new List<Metric>();
        using var tracer = Sdk.CreateTracerProviderBuilder().AddConcordInstrumentation().AddInMemoryExporter(spans).Build();
        using var meter = Sdk.CreateMeterProviderBuilder().AddConcordInstrumentation().AddInMemoryExporter(metrics).Build();
        var ns = "otel-" + Guid.NewGuid().ToString("N")[..8];
        await using var store = new InstrumentedStore(ConcordEngine.CreateInMemory());
        var a = new ConcordSession(store, ns, "a", new SessionOptions { Retry = new RetryOptions { BaseDelay = TimeSpan.Zero, MaxDelay = TimeSpan.Zero } });
        await a.PutAsync("k", J("""{"n":0}"""), Expect.Absent, cancellationToken: Ct);
        var first = true;
        var result = await a.UpdateAsync("k", async (current, ct) =>
        {
            if (first)
            {
                first = false;
                // Another agent sneaks in between read and write: the first CAS must lose.
                await store.PutAsync(ns, "k", J("""{"n":100}"""), new WriteOptions { Expect = Expect.Version(current!.Version), Agent = "b" }, ct);
            }
            return J($$"""{"n":{{current!.Value.GetProperty("n").GetInt32() + 1}}}""");
        }, cancellationToken: Ct);
        Assert.True(result.IsApplied);
        Assert.Equal(2, result.Attempts);
        tracer.ForceFlush();
        meter.ForceFlush();

        var update = spans.Single(s => s.DisplayName == "concord.update" && (string?)s.GetTagItem(ConcordTelemetry.Tags.Namespace) == ns);
        var retry = Assert.Single(update.Events, e => e.Name == "concord.retry");
        Assert.Equal(2, retry.Tags.Single(t => t.Key == ConcordTelemetry.Tags.RetryAttempt).Value);
        Assert.Equal("b", retry.Tags.Single(t => t.Key == "concord.current_writer").Value);
        // The failed CAS is a child span of the update.
        Assert.Contains(spans, s => s.ParentSpanId == update.SpanId && s.GetTagItem(ConcordTelemetry.Tags.Conflict) is "VersionMismatch");
        Assert.Contains(metrics, m => m.Name == "concord.retries");
        Assert.Contains(metrics, m => m.Name == "concord.conflicts");
    }

    [Fact]
    public async Task LockAcquire_SpanCarriesFencingToken()
    {
        var spans = new List<Activity>();
        using var tracer = Sdk.CreateTracerProviderBuilder().AddConcordInstrumentation().AddInMemoryExporter(spans).Build();
        var ns = "otel-" + Guid.NewGuid().ToString("N")[..8];
        await using var store = ConcordEngine.CreateInMemory();
        var locks = new StoreLockService(store);
        var r = await locks.AcquireAsync(ns, "l", new LockRequest { Owner = "a" }, Ct);
        tracer.ForceFlush();
        var span = spans.Single(s => s.DisplayName == "concord.lock.acquire" && (string?)s.GetTagItem(ConcordTelemetry.Tags.Namespace) == ns);
        Assert.Equal(r.Lease!.Token, span.GetTagItem(ConcordTelemetry.Tags.FenceToken));
        Assert.Equal("Acquired", span.GetTagItem("concord.lock.status"));
    }
}
