using Concord.Postgres;
using Concord.Tests.Conformance;
using Concord.Tests.Engine;
using Npgsql;

namespace Concord.Tests.Postgres;

/// <summary>
/// PostgreSQL stores for the shared suites: each store gets its own schema in the test database, dropped afterwards.
/// The database comes from CONCORD_PG (scripts/ensure-deps.sh starts PostgreSQL and sets it); without it the tests skip.
/// </summary>
internal sealed class PostgresStores
{
    public const string DefaultConnection = "Host=127.0.0.1;Port=5432;Username=postgres;Password=concord;Database=concord_test";
    private readonly Dictionary<IConcordStore, PostgresStoreOptions> _open = new(ReferenceEqualityComparer.Instance);
    private readonly List<string> _schemas = [];
    private readonly Lock _gate = new();

    public static string ConnectionString => Environment.GetEnvironmentVariable("CONCORD_PG") ?? DefaultConnection;

    private static readonly Lazy<string?> s_unavailable = new(() =>
    {
        try
        {
            using var conn = new NpgsqlConnection(ConnectionString);
            conn.Open();
            return null;
        }
        catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or InvalidOperationException)
        {
            return $"PostgreSQL is not reachable ({e.Message}); run scripts/ensure-deps.sh";
        }
    });

    /// <summary>Null when PostgreSQL answers; otherwise why the tests skip. In CI (CI=true) an unreachable database fails instead.</summary>
    public static string? Unavailable
    {
        get
        {
            var reason = s_unavailable.Value;
            if (reason is not null && Environment.GetEnvironmentVariable("CI") == "true") throw new InvalidOperationException(reason);
            return reason;
        }
    }

    /// <param name="options">Semantics of the store.</param>
    /// <param name="applicationName">PostgreSQL application_name of the store's connections, so a test can find (and kill) them.</param>
    public async Task<IConcordStore> CreateAsync(StoreFixtureOptions options, string? applicationName = null)
    {
        Assert.SkipWhen(Unavailable is not null, Unavailable ?? "");
        var schema = "t_" + Guid.NewGuid().ToString("N")[..16];
        lock (_gate) _schemas.Add(schema);
        var connection = applicationName is null ? ConnectionString : new NpgsqlConnectionStringBuilder(ConnectionString) { ApplicationName = applicationName }.ConnectionString;
        var pg = new PostgresStoreOptions { ConnectionString = connection, Schema = schema, Semantics = EngineStores.ToEngineOptions(options, null), PollInterval = TimeSpan.FromMilliseconds(200) };
        var store = await PostgresStore.OpenAsync(pg);
        lock (_gate) _open[store] = pg;
        return store;
    }

    public async Task<IConcordStore> RestartAsync(IConcordStore store)
    {
        PostgresStoreOptions options;
        lock (_gate) options = _open[store];
        await store.DisposeAsync();
        var reopened = await PostgresStore.OpenAsync(options);
        lock (_gate) _open[reopened] = options;
        return reopened;
    }

    /// <summary>Another node over the same schema as <paramref name="store"/>, closed by the caller.</summary>
    public async Task<IConcordStore> OpenNodeAsync(IConcordStore store)
    {
        PostgresStoreOptions options;
        lock (_gate) options = _open[store];
        return await PostgresStore.OpenAsync(options);
    }

    public async ValueTask DropSchemasAsync()
    {
        List<string> schemas;
        lock (_gate) schemas = [.. _schemas];
        if (schemas.Count == 0) return;
        await using var conn = new NpgsqlConnection(ConnectionString);
        await conn.OpenAsync();
        foreach (var schema in schemas)
        {
            await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS {schema} CASCADE", conn);
            await drop.ExecuteNonQueryAsync();
        }
    }
}

/// <summary>The conformance suite on PostgreSQL.</summary>
public sealed class PostgresConformanceTests : StoreConformanceTests
{
    private readonly PostgresStores _stores = new();

    protected override Task<IConcordStore> CreateStoreAsync(StoreFixtureOptions options) => _stores.CreateAsync(options);

    protected override bool SupportsRestart => true;

    protected override Task<IConcordStore> RestartAsync(IConcordStore store) => _stores.RestartAsync(store);

    protected override double StressScale => 0.2;

    protected override ValueTask CleanupAsync() => _stores.DropSchemasAsync();
}

/// <summary>The model-based tests on PostgreSQL.</summary>
public sealed class PostgresModelTests : StoreModelTests
{
    private readonly PostgresStores _stores = new();

    protected override Task<IConcordStore> CreateStoreAsync(StoreFixtureOptions options) => _stores.CreateAsync(options);

    protected override double StressScale => 0.2;

    protected override ValueTask CleanupAsync() => _stores.DropSchemasAsync();
}
