using Concord.Engine;
using Concord.Tests.Conformance;

namespace Concord.Tests.Engine;

/// <summary>Maps <see cref="StoreFixtureOptions"/> onto the embedded engine and owns its temp directories.</summary>
internal sealed class EngineStores
{
    private readonly Dictionary<IConcordStore, ConcordEngineOptions> _durable = new(ReferenceEqualityComparer.Instance);
    private readonly List<string> _directories = [];
    private readonly Lock _gate = new();

    public static ConcordEngineOptions ToEngineOptions(StoreFixtureOptions options, string? dataDirectory)
    {
        var engine = new ConcordEngineOptions { DataDirectory = dataDirectory, StrictMode = options.StrictMode };
        if (options.MaxValueBytes is { } max) engine.MaxValueBytes = max;
        if (options.IdempotencyRetention is { } retention) engine.IdempotencyRetention = retention;
        if (options.TimeProvider is { } time) engine.TimeProvider = time;
        if (options.RetainedRevisions is { } retained) engine.RetainedRevisions = retained;
        if (options.ExpirySweepInterval is { } sweep) engine.ExpirySweepInterval = sweep;
        return engine;
    }

    public static Task<IConcordStore> CreateInMemory(StoreFixtureOptions options) =>
        Task.FromResult<IConcordStore>(ConcordEngine.CreateInMemory(ToEngineOptions(options, null)));

    public async Task<IConcordStore> CreateEmbeddedAsync(StoreFixtureOptions options)
    {
        var directory = Path.Combine(Path.GetTempPath(), "concord-conformance", Guid.NewGuid().ToString("N"));
        lock (_gate) _directories.Add(directory);
        var engineOptions = ToEngineOptions(options, directory);
        var store = await ConcordEngine.OpenAsync(engineOptions);
        lock (_gate) _durable[store] = engineOptions;
        return store;
    }

    public async Task<IConcordStore> RestartAsync(IConcordStore store)
    {
        ConcordEngineOptions options;
        lock (_gate) options = _durable[store];
        await store.DisposeAsync();
        var reopened = await ConcordEngine.OpenAsync(options);
        lock (_gate) _durable[reopened] = options;
        return reopened;
    }

    /// <summary>Deletes the temp directories (the stores are already disposed).</summary>
    public ValueTask DeleteDirectoriesAsync()
    {
        List<string> directories;
        lock (_gate) directories = [.. _directories];
        foreach (var directory in directories)
        {
            if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        }
        return ValueTask.CompletedTask;
    }
}

/// <summary>The conformance suite on the engine in <c>memory</c> mode.</summary>
public sealed class MemoryEngineConformanceTests : StoreConformanceTests
{
    protected override Task<IConcordStore> CreateStoreAsync(StoreFixtureOptions options) => EngineStores.CreateInMemory(options);
}

/// <summary>The conformance suite on the engine in durable <c>embedded</c> mode (temp directory, fsync'd log).</summary>
public sealed class EmbeddedEngineConformanceTests : StoreConformanceTests
{
    private readonly EngineStores _stores = new();

    protected override Task<IConcordStore> CreateStoreAsync(StoreFixtureOptions options) => _stores.CreateEmbeddedAsync(options);

    protected override bool SupportsRestart => true;

    protected override Task<IConcordStore> RestartAsync(IConcordStore store) => _stores.RestartAsync(store);

    protected override ValueTask CleanupAsync() => _stores.DeleteDirectoriesAsync();
}

/// <summary>The model-based tests on the engine in <c>memory</c> mode.</summary>
public sealed class MemoryEngineModelTests : StoreModelTests
{
    protected override Task<IConcordStore> CreateStoreAsync(StoreFixtureOptions options) => EngineStores.CreateInMemory(options);
}

/// <summary>The model-based tests on the engine in <c>embedded</c> mode (fewer sequences: every commit is fsync'd).</summary>
public sealed class EmbeddedEngineModelTests : StoreModelTests
{
    private readonly EngineStores _stores = new();

    protected override int Iterations => 25;

    protected override Task<IConcordStore> CreateStoreAsync(StoreFixtureOptions options) => _stores.CreateEmbeddedAsync(options);

    protected override ValueTask CleanupAsync() => _stores.DeleteDirectoriesAsync();
}

/// <summary>The stress tests on the engine in <c>memory</c> mode, at full counts.</summary>
public sealed class MemoryEngineStressTests : StoreStressTests
{
    protected override Task<IConcordStore> CreateStoreAsync(StoreFixtureOptions options) => EngineStores.CreateInMemory(options);
}

/// <summary>The stress tests on the engine in <c>embedded</c> mode, at reduced counts (every commit waits for an fsync).</summary>
public sealed class EmbeddedEngineStressTests : StoreStressTests
{
    private readonly EngineStores _stores = new();

    protected override double StressScale => 0.05;

    protected override Task<IConcordStore> CreateStoreAsync(StoreFixtureOptions options) => _stores.CreateEmbeddedAsync(options);

    protected override ValueTask CleanupAsync() => _stores.DeleteDirectoriesAsync();
}
