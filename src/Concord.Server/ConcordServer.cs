using Concord.Coordination.Locks;
using Concord.Engine;
using Concord.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Concord.Server;

/// <summary>Builds the Concord HTTP server (used by <c>concord serve</c> and by tests).</summary>
public static class ConcordServer
{
    /// <summary>
    /// Creates the web application. Settings come from the <c>Concord</c> configuration section (appsettings, a
    /// <c>--config</c> JSON file, environment variables such as <c>Concord__Backend=memory</c>), then
    /// <paramref name="configureOptions"/>. When <paramref name="store"/> is given, the caller owns it; otherwise the
    /// server opens the configured backend and closes it (flushing the log) after in-flight requests drained.
    /// </summary>
    public static async Task<WebApplication> CreateAsync(string[]? args = null, Action<ConcordServerOptions>? configureOptions = null,
        IConcordStore? store = null, Action<WebApplicationBuilder>? configureBuilder = null, CancellationToken cancellationToken = default)
    {
        var builder = WebApplication.CreateSlimBuilder(args ?? []);
        var configFile = builder.Configuration["config"];
        if (!string.IsNullOrEmpty(configFile)) builder.Configuration.AddJsonFile(Path.GetFullPath(configFile), optional: false);
        var options = new ConcordServerOptions();
        builder.Configuration.GetSection("Concord").Bind(options);
        configureOptions?.Invoke(options);

        // Per-request framework logs drown the server's own; configuration (Logging:LogLevel) can turn them back on.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes);
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromSeconds(10));
        builder.Services.AddProblemDetails();
        builder.Services.AddOpenApi();
        configureBuilder?.Invoke(builder);

        var ownsStore = store is null;
        store ??= await OpenStoreAsync(options, cancellationToken).ConfigureAwait(false);
        builder.Services.AddSingleton(store);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(new Auth(options));
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<ILockService>(sp => new StoreLockService(store, sp.GetRequiredService<TimeProvider>()));

        var app = builder.Build();
        var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Concord.Server");
        if (!app.Services.GetRequiredService<Auth>().Enabled)
            log.LogWarning("No API keys configured: authentication is OFF. Configure Concord:ApiKeys before exposing this server.");
        log.LogInformation("Concord serving backend {Backend} (strict mode {Strict})", options.Backend, options.Strict);
        if (ownsStore)
        {
            // Runs after the server stopped accepting and drained requests: flush the log last.
            app.Lifetime.ApplicationStopped.Register(() => store.DisposeAsync().AsTask().GetAwaiter().GetResult());
        }

        app.UseExceptionHandling();
        app.MapOpenApi();
        app.MapHealthApi();
        var v1 = app.MapGroup("/v1");
        v1.MapStateApi();
        v1.MapWatchApi();
        v1.MapLocksApi();
        return app;
    }

    /// <summary>Opens the store named by <see cref="ConcordServerOptions.Backend"/>.</summary>
    public static async Task<IConcordStore> OpenStoreAsync(ConcordServerOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var engineOptions = new ConcordEngineOptions { StrictMode = options.Strict, MaxValueBytes = options.MaxValueBytes };
        switch (options.Backend.ToLowerInvariant())
        {
            case "memory":
                return ConcordEngine.CreateInMemory(engineOptions);
            case "embedded":
                engineOptions.DataDirectory = options.DataDirectory;
                return await ConcordEngine.OpenAsync(engineOptions, cancellationToken).ConfigureAwait(false);
            default:
                throw new InvalidRequestException($"Unknown backend '{options.Backend}'. This build supports: memory, embedded");
        }
    }

    private static void UseExceptionHandling(this WebApplication app) => app.Use(async (http, next) =>
    {
        try
        {
            await next(http).ConfigureAwait(false);
        }
        catch (Exception e) when (!http.Response.HasStarted && e is ConcordException or HttpIo.BadInputException or BadHttpRequestException or ArgumentException)
        {
            var result = e switch
            {
                ConcordException c => Problems.From(c),
                HttpIo.BadInputException b => Problems.Create(b.Status, b.Code, "Bad request", b.Message),
                BadHttpRequestException b => Problems.Create(b.StatusCode, b.StatusCode == 413 ? "body-too-large" : "bad-request", "Bad request", b.Message),
                _ => Problems.Create(400, "invalid-request", "Invalid request", e.Message),
            };
            await result.ExecuteAsync(http).ConfigureAwait(false);
        }
    });
}
