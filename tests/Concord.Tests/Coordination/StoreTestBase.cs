using System.Text.Json;
using Concord.Engine;
using Microsoft.Extensions.Time.Testing;

namespace Concord.Tests.Coordination;

/// <summary>
/// A fresh store per test on one backend: the memory engine or the durable embedded engine (in a temp directory),
/// strict mode on, so coordination services are checked never to need blind writes. Subclasses pick the backend.
/// </summary>
public abstract class StoreTestBase : IAsyncLifetime
{
    private string? _dir;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>True for the embedded (durable) engine.</summary>
    protected abstract bool Durable { get; }

    /// <summary>Virtual time for tests that control it; tests under real concurrency use <see cref="TimeProvider.System"/>.</summary>
    protected FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    protected IConcordStore Store { get; private set; } = null!;

    /// <summary>The clock given to the engine and the services; real time when <see cref="UseRealTime"/>.</summary>
    protected TimeProvider Clock => UseRealTime ? TimeProvider.System : Time;

    protected virtual bool UseRealTime => false;

    protected virtual void Configure(ConcordEngineOptions options)
    {
    }

    public virtual async ValueTask InitializeAsync()
    {
        if (Durable) _dir = Path.Combine(Path.GetTempPath(), "concord-coord-" + Guid.NewGuid().ToString("N"));
        Store = await OpenAsync();
        await OnStoreOpenedAsync();
    }

    protected virtual ValueTask OnStoreOpenedAsync() => ValueTask.CompletedTask;

    private async Task<IConcordStore> OpenAsync()
    {
        var options = new ConcordEngineOptions { TimeProvider = Clock, StrictMode = true, DataDirectory = _dir };
        Configure(options);
        return Durable ? await ConcordEngine.OpenAsync(options, Ct) : ConcordEngine.CreateInMemory(options);
    }

    /// <summary>Closes and reopens the store (a restart: the embedded engine recovers from its log; memory starts empty).</summary>
    protected async Task RestartAsync(bool snapshotFirst = false)
    {
        if (snapshotFirst && Store is ConcordEngine engine) await engine.SnapshotAsync(Ct);
        await Store.DisposeAsync();
        Store = await OpenAsync();
        await OnStoreOpenedAsync();
    }

    public virtual async ValueTask DisposeAsync()
    {
        await Store.DisposeAsync();
        if (_dir is not null && Directory.Exists(_dir)) Directory.Delete(_dir, true);
        GC.SuppressFinalize(this);
    }

    protected static JsonElement J(string json) => JsonDocument.Parse(json).RootElement.Clone();

    protected static JsonElement J<T>(T value) => JsonSerializer.SerializeToElement(value, JsonDefaults.Web);
}
