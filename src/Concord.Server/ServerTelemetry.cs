using Concord.OpenTelemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Concord.Server;

/// <summary>
/// OpenTelemetry for the server (docs/observability.md): Concord's spans and metrics plus ASP.NET Core and HttpClient
/// instrumentation, so a request's server span continues the caller's W3C trace and the store spans are its children.
/// Export is configured by the standard variables: with <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> (or the per-signal
/// <c>OTEL_EXPORTER_OTLP_TRACES_ENDPOINT</c> / <c>OTEL_EXPORTER_OTLP_METRICS_ENDPOINT</c>) set, traces and metrics go
/// to that OTLP endpoint; without, nothing is exported. <c>OTEL_SDK_DISABLED=true</c> turns the SDK off,
/// <c>OTEL_SERVICE_NAME</c> overrides the service name <c>concord</c>, <c>OTEL_TRACES_SAMPLER</c> picks the sampler.
/// </summary>
internal static class ServerTelemetry
{
    /// <summary>Service name reported when <c>OTEL_SERVICE_NAME</c> is not set.</summary>
    public const string DefaultServiceName = "concord";

    public static void AddConcordOpenTelemetry(this WebApplicationBuilder builder)
    {
        var config = builder.Configuration;
        var all = !string.IsNullOrEmpty(config["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        var traces = all || !string.IsNullOrEmpty(config["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]);
        var metrics = all || !string.IsNullOrEmpty(config["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"]);
        var otel = builder.Services.AddOpenTelemetry();
        if (string.IsNullOrEmpty(config["OTEL_SERVICE_NAME"])) otel.ConfigureResource(r => r.AddService(DefaultServiceName));
        otel.WithTracing(t =>
        {
            t.AddConcordInstrumentation().AddAspNetCoreInstrumentation().AddHttpClientInstrumentation();
            if (traces) t.AddOtlpExporter();
        });
        otel.WithMetrics(m =>
        {
            m.AddConcordInstrumentation().AddAspNetCoreInstrumentation().AddHttpClientInstrumentation();
            if (metrics) m.AddOtlpExporter();
        });
    }
}
