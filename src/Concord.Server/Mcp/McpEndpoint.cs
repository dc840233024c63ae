using Concord.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Concord.Server.Mcp;

/// <summary><c>/mcp</c>: the Model Context Protocol endpoint (streamable HTTP, stateless) exposing <see cref="ConcordTools"/>.</summary>
internal static class McpEndpoint
{
    public const string Path = "/mcp";
    public const string CallerItem = "Concord.Caller";

    public static void MapConcordMcp(this WebApplication app)
    {
        // Authenticate before the MCP handler runs; each tool then checks the namespace and right it needs.
        app.UseWhen(http => http.Request.Path.StartsWithSegments(Path), branch => branch.Use(async (http, next) =>
        {
            var auth = http.RequestServices.GetRequiredService<Auth>();
            if (auth.Authenticate(http, out var caller) is { } unauthorized)
            {
                await unauthorized.ExecuteAsync(http).ConfigureAwait(false);
                return;
            }
            http.Items[CallerItem] = caller;
            await next(http).ConfigureAwait(false);
        }));
        app.MapMcp(Path).WithTags("MCP");
    }
}
