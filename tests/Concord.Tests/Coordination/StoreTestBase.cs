using System.Text.Json;
using Concord.Engine;
using Concord.Tests.Conformance;
using Concord.Tests.Postgres;
using Microsoft.Extensions.Time.Testing;

namespace Concord.Tests.Coordination;

/// <summary>Backends the coordination suites run on.</summary>
public enum TestBackend
{
    /// <summary>The embedded engine in memory mode.</summary>
    Memory,

    /// <summary>The embedded engine with its durable log, in a temp directory.</summary>
    Embedded,

    /// <summary>PostgreSQL (skipped when no database is reachable; see PostgresStores).</summary>
    Postgres,
}

/// <summary>
/// A fresh store per test on one backend (memory engine, durable embedded engine, PostgreSQL), strict mode on, so
/// coordination services are checked never to need blind writes. Subclasses pick the backend.
/// </summary>
public abstract class StoreTestBase : IAsyncLifetime
{
    private string? _dir;
    private PostgresStores? _postgres;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The backend under test.</summary>
    protected abstract TestBackend Backend { get; }

    /// <summary>True when the store keeps its state across a restart.</summary>
    protected bool Durable => Backend != TestBackend.Memory;

    /// <summary>Virtual time for tests that control it; tests under real concurrency use <see cref="TimeProvider.System"/>.</summary>
    protected FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    protected IConcordStore Store { get; private set; } = null!;

    /// <summary>The clock given to the engine and the services; real time when <see cref="UseRealTime"/>.</summary>
    protected TimeProvider Clock => UseRealTime ? TimeProvider.System : Time;

    protected virtual bool UseRealTime => false;

    /// <summary>Engine settings for the embedded backends (PostgreSQL takes the suite defaults).</summary>
    protected virtual void Configure(ConcordEngineOptions options)
    {
    }

    public virtual async ValueTask InitializeAsync()
    {
        if (Backend == TestBackend.Embedded) _dir = Path.Combine(Path.GetTempPath(), "concord-coord-" + Guid.NewGuid().ToString("N"));
        if (Backend == TestBackend.Postgres) _postgres = new PostgresStores();
        Store = await OpenAsync();
        await OnStoreOpenedAsync();
    }

    protected virtual ValueTask OnStoreOpenedAsync() => ValueTask.CompletedTask;

    private async Task<IConcordStore> OpenAsync()
    {
        if (_postgres is not null) return await _postgres.CreateAsync(new StoreFixtureOptions { StrictMode = true, TimeProvider = Clock });
        var options = new ConcordEngineOptions { TimeProvider = Clock, StrictMode = true, DataDirectory = _dir };
        Configure(options);
        return Backend == TestBackend.Embedded ? await ConcordEngine.OpenAsync(options, Ct) : ConcordEngine.CreateInMemory(options);
    }

    /// <summary>Closes and reopens the store (a restart: the embedded engine recovers from its log; memory starts empty).</summary>
    protected async Task RestartAsync(bool snapshotFirst = false)
    {
        if (snapshotFirst && Store is ConcordEngine engine) await engine.SnapshotAsync(Ct);
        if (_postgres is not null)
        {
            Store = await _postgres.RestartAsync(Store);
            await OnStoreOpenedAsync();
            return;
        }
        await Store.DisposeAsync();
        Store = await OpenAsync();
        await OnStoreOpenedAsync();
    }

    public virtual async ValueTask DisposeAsync()
    {
        if (Store is not null) await Store.DisposeAsync();
        if (_postgres is not null) await _postgres.DropSchemasAsync();
        if (_dir is not null && Directory.Exists(_dir)) Directory.Delete(_dir, true);
        GC.SuppressFinalize(this);
    }

    protected static JsonElement J(string json) => JsonDocument.Parse(json).RootElement.Clone();

    protected static JsonElement J<T>(T value) => JsonSerializer.SerializeToElement(value, JsonDefaults.Web);
}
