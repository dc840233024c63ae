using System.Collections.Concurrent;
using System.Security.Cryptography;
using Concord.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Concord.Server.Dashboard;

/// <summary>
/// Wires the dashboard into the server: the operations journal in front of the store, the verdict service, the API and
/// the page. Two calls from <see cref="ConcordServer"/>: <see cref="AddConcordDashboard"/> and <see cref="MapConcordDashboard"/>.
/// </summary>
internal static class DashboardSetup
{
    /// <summary>
    /// Puts an <see cref="OperationJournal"/> in front of <paramref name="store"/> and registers it as the
    /// <see cref="IConcordStore"/> every route uses, so each client operation is recorded. Options come from the
    /// <c>Concord:Dashboard</c> configuration section.
    /// </summary>
    public static void AddConcordDashboard(this WebApplicationBuilder builder, IConcordStore store)
    {
        var options = new DashboardOptions();
        builder.Configuration.GetSection("Concord:Dashboard").Bind(options);
        options.Validate();
        builder.Services.AddHttpContextAccessor();
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(sp =>
        {
            var accessor = sp.GetRequiredService<IHttpContextAccessor>();
            var auth = sp.GetRequiredService<Auth>();
            return new OperationJournal(store, options, sp.GetRequiredService<TimeProvider>(), () => AmbientAgent(accessor, auth));
        });
        // Registered last, so it is the IConcordStore the routes and tools resolve.
        builder.Services.AddSingleton<IConcordStore>(sp => sp.GetRequiredService<OperationJournal>());
        builder.Services.AddSingleton<VerdictService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<VerdictService>());
    }

    /// <summary>Maps the page at <c>/</c>, its assets under <c>/dashboard/assets/</c>, the API and the event stream.</summary>
    public static void MapConcordDashboard(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<DashboardOptions>();
        if (!options.Enabled) return;
        app.MapGet("/", (HttpContext http) => Asset(http, "index.html")).ExcludeFromDescription();
        app.MapGet("/dashboard/assets/{name}", (HttpContext http, string name) => Asset(http, name)).ExcludeFromDescription();
        app.MapDashboardApi();
    }

    /// <summary>The agent of a request: its <c>Concord-Agent</c> header, else the API key's name (as the state routes do).</summary>
    private static string? AmbientAgent(IHttpContextAccessor accessor, Auth auth)
    {
        if (accessor.HttpContext is not { } http) return null;
        try
        {
            var agent = HttpIo.HeaderText(http.Request, "Concord-Agent");
            if (agent.Length is > 0 and <= 128) return agent;
        }
        catch (HttpIo.BadInputException)
        {
        }
        return auth.Enabled && auth.Authenticate(http, out var caller) is null ? caller.DefaultAgent : null;
    }

    private sealed record StaticAsset(byte[] Bytes, string ContentType, string ETag);

    private static readonly ConcurrentDictionary<string, StaticAsset?> Assets = new(StringComparer.Ordinal);

    private static IResult Asset(HttpContext http, string name)
    {
        var asset = Assets.GetOrAdd(name, Load);
        if (asset is null) return Problems.Create(404, "not-found", "Not found", $"No dashboard asset '{name}'");
        var headers = http.Response.Headers;
        headers.ETag = asset.ETag;
        headers.CacheControl = "no-cache";
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
        if (asset.ContentType.StartsWith("text/html", StringComparison.Ordinal))
        {
            // Everything is served from here: no CDN, no inline script, no framing.
            headers.ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
        }
        if (http.Request.Headers.IfNoneMatch.ToString() == asset.ETag) return Results.StatusCode(304);
        return Results.Bytes(asset.Bytes, asset.ContentType);
    }

    private static StaticAsset? Load(string name)
    {
        // Only plain file names of embedded resources: no paths, so nothing outside the assembly can be reached.
        if (name.Contains('/', StringComparison.Ordinal) || name.Contains('\\', StringComparison.Ordinal) || name.StartsWith('.')) return null;
        using var stream = typeof(DashboardSetup).Assembly.GetManifestResourceStream("dashboard/" + name);
        if (stream is null) return null;
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        var bytes = buffer.ToArray();
        var type = Path.GetExtension(name) switch
        {
            ".html" => "text/html; charset=utf-8",
            ".css" => "text/css; charset=utf-8",
            ".js" => "text/javascript; charset=utf-8",
            ".svg" => "image/svg+xml",
            _ => "application/octet-stream",
        };
        return new StaticAsset(bytes, type, $"\"{Convert.ToHexStringLower(SHA256.HashData(bytes))[..16]}\"");
    }
}
