using System.Text.Json;
using Concord.Client;
using Concord.Coordination.Queues;
using Concord.Coordination.Streams;
using Concord.Engine;
using Concord.Tests.Conformance;
using Concord.Tests.Postgres;
using Concord.Tests.Redis;
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

    /// <summary>Redis (skipped when no server is reachable; see RedisStores).</summary>
    Redis,

    /// <summary>Redis with the native services (<see cref="Concord.Redis.RedisQueueService"/>) instead of the store-level ones.</summary>
    RedisNative,

    /// <summary>
    /// The HTTP API: a Concord server (in-process TestServer) over a memory engine; the services under test are the HTTP
    /// clients (<see cref="Client.HttpQueueService"/>, <see cref="Client.HttpStreamService"/>) and the server runs the
    /// store-level services with the suite's options.
    /// </summary>
    Http,
}

/// <summary>
/// A fresh store per test on one backend (memory engine, durable embedded engine, PostgreSQL), strict mode on, so
/// coordination services are checked never to need blind writes. Subclasses pick the backend.
/// </summary>
public abstract class StoreTestBase : IAsyncLifetime
{
    private string? _dir;
    private PostgresStores? _postgres;
    private RedisStores? _redis;
    private HttpHost? _http;
    private readonly List<IAsyncDisposable> _natives = [];

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The backend under test.</summary>
    protected abstract TestBackend Backend { get; }

    /// <summary>True when the store keeps its state across a restart.</summary>
    protected bool Durable => Backend is not (TestBackend.Memory or TestBackend.Http);

    /// <summary>Virtual time for tests that control it; tests under real concurrency use <see cref="TimeProvider.System"/>.</summary>
    protected FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    protected IConcordStore Store { get; private set; } = null!;

    /// <summary>What a client of the backend uses: <see cref="Store"/>, or on <see cref="TestBackend.Http"/> the HTTP client store.</summary>
    protected IConcordStore ClientStore => _http is null ? Store : new ConcordHttpStore(_http.Client, _http.ClientOptions);

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
        if (Backend is TestBackend.Redis or TestBackend.RedisNative) _redis = new RedisStores();
        Store = await OpenAsync();
        if (Backend == TestBackend.Http) _http = await HttpHost.StartAsync(Store, Clock);
        await OnStoreOpenedAsync();
    }

    /// <summary>
    /// The queue service under test: the store-level service with <paramref name="options"/>, or, on
    /// <see cref="TestBackend.Http"/>, the HTTP client of a server running that service over <see cref="Store"/>.
    /// </summary>
    protected virtual IQueueService CreateQueueService(QueueServiceOptions options)
    {
        if (Backend == TestBackend.RedisNative)
        {
            // The journal records every lease and ack in commit order, for the suites' timeline checks.
            var native = new Concord.Redis.RedisQueueService((Concord.Redis.RedisStore)Store, options, new Concord.Redis.RedisQueueOptions { JournalLength = 1_000_000 });
            lock (_natives) _natives.Add(native);
            return native;
        }
        var service = new StoreQueueService(Store, options);
        if (_http is null) return service;
        _http.Queues = service;
        return new HttpQueueService(_http.Client, _http.ClientOptions);
    }

    /// <summary>The stream service under test (see <see cref="CreateQueueService"/>).</summary>
    protected IStreamService CreateStreamService(StreamServiceOptions options)
    {
        var service = new StoreStreamService(Store, options);
        if (_http is null) return service;
        _http.Streams = service;
        return new HttpStreamService(_http.Client, _http.ClientOptions);
    }

    protected virtual ValueTask OnStoreOpenedAsync() => ValueTask.CompletedTask;

    private async Task<IConcordStore> OpenAsync()
    {
        if (_postgres is not null) return await _postgres.CreateAsync(new StoreFixtureOptions { StrictMode = true, TimeProvider = Clock });
        if (_redis is not null) return await _redis.CreateAsync(new StoreFixtureOptions { StrictMode = true, TimeProvider = Clock });
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
        if (_redis is not null)
        {
            Store = await _redis.RestartAsync(Store);
            await OnStoreOpenedAsync();
            return;
        }
        if (_http is not null) await _http.DisposeAsync();
        await Store.DisposeAsync();
        Store = await OpenAsync();
        if (_http is not null) _http = await HttpHost.StartAsync(Store, Clock);
        await OnStoreOpenedAsync();
    }

    public virtual async ValueTask DisposeAsync()
    {
        if (_http is not null) await _http.DisposeAsync();
        foreach (var native in _natives) await native.DisposeAsync();
        if (Store is not null) await Store.DisposeAsync();
        if (_postgres is not null) await _postgres.DropSchemasAsync();
        if (_redis is not null) await _redis.DeletePrefixesAsync();
        if (_dir is not null && Directory.Exists(_dir)) Directory.Delete(_dir, true);
        GC.SuppressFinalize(this);
    }

    protected static JsonElement J(string json) => JsonDocument.Parse(json).RootElement.Clone();

    protected static JsonElement J<T>(T value) => JsonSerializer.SerializeToElement(value, JsonDefaults.Web);
}
