using Concord.Coordination.Locks;
using Concord.Coordination.Queues;
using Concord.Coordination.Streams;
using Concord.Engine;
using Concord.Server.Dashboard;
using Concord.Server.Http;
using Concord.Server.Mcp;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Concord.Server;

/// <summary>Builds the Concord HTTP server (used by <c>concord serve</c> and by tests).</summary>
public static class ConcordServer
{
    /// <summary>
    /// Creates the web application. Settings come from the <c>Concord</c> configuration section, lowest precedence
    /// first: appsettings.json, a <c>--config</c> JSON file, environment variables such as <c>Concord__Backend=memory</c>,
    /// command-line arguments, then <paramref name="configureOptions"/>. When <paramref name="store"/> is given, the caller
    /// owns it; otherwise the server opens the configured backend and closes it (flushing the log) after in-flight
    /// requests drained.
    /// </summary>
    public static async Task<WebApplication> CreateAsync(string[]? args = null, Action<ConcordServerOptions>? configureOptions = null,
        IConcordStore? store = null, Action<WebApplicationBuilder>? configureBuilder = null, CancellationToken cancellationToken = default)
    {
        args ??= [];
        var builder = WebApplication.CreateSlimBuilder(args);
        var configFile = builder.Configuration["config"];
        if (!string.IsNullOrEmpty(configFile))
        {
            // The file sits between appsettings and the environment: re-adding env vars and args keeps them on top.
            builder.Configuration.AddJsonFile(Path.GetFullPath(configFile), optional: false);
            builder.Configuration.AddEnvironmentVariables();
            builder.Configuration.AddCommandLine(args);
        }
        var options = new ConcordServerOptions();
        builder.Configuration.GetSection("Concord").Bind(options);
        configureOptions?.Invoke(options);
        options.Validate();

        if (string.Equals(options.LogFormat, "json", StringComparison.OrdinalIgnoreCase))
        {
            builder.Logging.ClearProviders();
            builder.Logging.AddJsonConsole(j => j.IncludeScopes = false);
        }
        // Per-request framework logs drown the server's own; configuration (Logging:LogLevel) can turn them back on.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("ModelContextProtocol", LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
            if (options.MaxConnections > 0)
            {
                var limit = new ConnectionLimit(options.MaxConnections);
                k.ConfigureEndpointDefaults(listen => listen.Use(limit.Middleware));
            }
            k.AddServerHeader = false;
        });
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = options.ShutdownTimeout);
        builder.Services.AddProblemDetails();
        builder.Services.AddOpenApi();
        builder.Services.AddHttpContextAccessor();
        builder.Services.AddMcpServer(o => o.ServerInstructions = ConcordTools.Instructions)
            .WithHttpTransport(t => t.Stateless = true)
            .WithTools<ConcordTools>(Wire.WireJson.Options)
            .WithTools<ConcordWorkTools>(Wire.WireJson.Options)
            .WithRequestFilters(f => f.AddCallToolFilter(ArgumentCheck.Filter));
        builder.AddConcordOpenTelemetry();
        configureBuilder?.Invoke(builder);

        var ownsStore = store is null;
        store ??= await OpenStoreAsync(options, cancellationToken).ConfigureAwait(false);
        var served = store as Diagnostics.InstrumentedStore ?? new Diagnostics.InstrumentedStore(store); // a span per operation
        builder.Services.AddSingleton<IConcordStore>(served);
        builder.AddConcordDashboard(served); // the journal in front of it becomes the IConcordStore routes use
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(new Auth(options));
        builder.Services.AddSingleton(new WatchLimiter(options.MaxWatchers));
        // TryAdd: a host (tests, an embedding application) may supply its own clock and services through configureBuilder.
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.TryAddSingleton<ILockService>(sp => new StoreLockService(served, sp.GetRequiredService<TimeProvider>()) { MaxWaitersPerLock = options.MaxLockWaitersPerKey });
        // The queue is native on PostgreSQL (FOR UPDATE SKIP LOCKED on its own tables) and on Redis (streams, consumer
        // groups, Lua); on the embedded engine it runs over the state contract.
        builder.Services.TryAddSingleton<IQueueService>(sp =>
        {
            var queueOptions = new QueueServiceOptions { TimeProvider = sp.GetRequiredService<TimeProvider>(), MaxTasks = options.MaxQueueTasks, MaxPayloadBytes = options.MaxQueuePayloadBytes };
            return store switch
            {
                Postgres.PostgresStore pg => new Postgres.PostgresQueueService(pg, queueOptions),
                Redis.RedisStore redis => new Redis.RedisQueueService(redis, queueOptions),
                _ => new StoreQueueService(served, queueOptions),
            };
        });
        builder.Services.TryAddSingleton<IStreamService>(sp => new StoreStreamService(served, new StreamServiceOptions { TimeProvider = sp.GetRequiredService<TimeProvider>() }));

        var app = builder.Build();
        var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Concord.Server");
        if (!app.Services.GetRequiredService<Auth>().Enabled)
            log.LogWarning("No API keys configured: authentication is OFF. Configure Concord:ApiKeys before exposing this server.");
        log.LogInformation("Concord serving backend {Backend} (strict mode {Strict})", options.Backend, options.Strict);
        if (ownsStore)
        {
            // ApplicationStopped fires after Kestrel stopped accepting and drained in-flight requests (bounded by
            // ShutdownTimeout): only then is the store closed, which flushes and fsyncs the log and releases the data directory.
            app.Lifetime.ApplicationStopped.Register(() =>
            {
                store.DisposeAsync().AsTask().GetAwaiter().GetResult();
                log.LogInformation("Concord store closed");
            });
        }

        app.UseExceptionHandling(log);
        app.UseStatusCodePages();
        app.MapOpenApi();
        app.MapHealthApi();
        var v1 = app.MapGroup("/v1");
        v1.MapStateApi();
        v1.MapWatchApi();
        v1.MapLocksApi();
        v1.MapQueuesApi();
        v1.MapStreamsApi();
        v1.MapCrdtApi();
        app.MapConcordMcp();
        app.MapConcordDashboard();
        return app;
    }

    /// <summary>Opens the store named by <see cref="ConcordServerOptions.Backend"/>.</summary>
    public static async Task<IConcordStore> OpenStoreAsync(ConcordServerOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var engineOptions = new ConcordEngineOptions
        {
            StrictMode = options.Strict,
            MaxValueBytes = options.MaxValueBytes,
            RetainedRevisions = options.RetainedRevisions,
            IdempotencyRetention = options.IdempotencyRetention,
            IdempotencyMemoryLimit = options.IdempotencyMemoryLimit,
            ExpirySweepInterval = options.ExpirySweepInterval,
        };
        switch (options.Backend.ToLowerInvariant())
        {
            case "memory":
                return ConcordEngine.CreateInMemory(engineOptions);
            case "embedded":
                engineOptions.DataDirectory = options.DataDirectory;
                return await ConcordEngine.OpenAsync(engineOptions, cancellationToken).ConfigureAwait(false);
            case "postgres":
                return await Postgres.PostgresStore.OpenAsync(new Postgres.PostgresStoreOptions
                {
                    ConnectionString = options.Connection ?? throw new InvalidRequestException("--backend postgres needs --connection (an Npgsql connection string)"),
                    Semantics = engineOptions,
                }, cancellationToken).ConfigureAwait(false);
            case "redis":
                return await Redis.RedisStore.OpenAsync(new Redis.RedisStoreOptions
                {
                    Configuration = options.Connection ?? throw new InvalidRequestException("--backend redis needs --connection (e.g. 127.0.0.1:6379)"),
                    Semantics = engineOptions,
                }, cancellationToken).ConfigureAwait(false);
            default:
                throw new InvalidRequestException($"Unknown backend '{options.Backend}'. Choose memory, embedded, postgres or redis");
        }
    }

    private static void UseExceptionHandling(this WebApplication app, ILogger log) => app.Use(async (http, next) =>
    {
        try
        {
            await next(http).ConfigureAwait(false);
        }
        catch (Exception e) when (!http.Response.HasStarted && !http.RequestAborted.IsCancellationRequested)
        {
            var result = e switch
            {
                ConcordException c => Problems.From(c),
                HttpIo.BadInputException b => Problems.Create(b.Status, b.Code, b.Status == 413 ? "Payload too large" : "Bad request", b.Message),
                BadHttpRequestException b => Problems.Create(b.StatusCode, b.StatusCode == 413 ? "body-too-large" : "bad-request", b.StatusCode == 413 ? "Payload too large" : "Bad request", b.Message),
                ArgumentException or FormatException or OverflowException => Problems.Create(400, "invalid-request", "Invalid request", e.Message),
                _ => null,
            };
            if (result is null)
            {
                log.LogError(e, "Unhandled error on {Method} {Path}", http.Request.Method, http.Request.Path);
                result = Problems.Create(500, "internal-error", "Internal error", "The server failed to process the request; see the server log");
            }
            http.Response.Clear();
            await result.ExecuteAsync(http).ConfigureAwait(false);
        }
    });
}
