using Concord.Diagnostics;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Concord.OpenTelemetry;

/// <summary>Registers Concord's spans and metrics with an OpenTelemetry provider.</summary>
public static class ConcordInstrumentationExtensions
{
    /// <summary>Adds the <c>Concord</c> activity source (one span per store operation, retries as events, lock waits).</summary>
    public static TracerProviderBuilder AddConcordInstrumentation(this TracerProviderBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddSource(ConcordTelemetry.Name);
    }

    /// <summary>Adds the <c>Concord</c> meter (operations, conflicts, retries, idempotent replays, lock waits, lease losses, latency).</summary>
    public static MeterProviderBuilder AddConcordInstrumentation(this MeterProviderBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddMeter(ConcordTelemetry.Name);
    }
}
