using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Concord.Server.Http;

/// <summary><c>/healthz</c> (the process is up) and <c>/readyz</c> (the store answers).</summary>
internal static class HealthApi
{
    public static void MapHealthApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", () => Results.Text("ok")).WithTags("Health");
        app.MapGet("/readyz", async (IConcordStore store, CancellationToken ct) =>
        {
            try
            {
                return Results.Json(new { status = "ready", revision = await store.GetRevisionAsync(ct) });
            }
            catch (ConcordException e)
            {
                return Problems.Create(503, "not-ready", "Not ready", e.Message);
            }
        }).WithTags("Health");
    }
}
