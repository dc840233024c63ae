using Concord.Coordination.Queues;
using Concord.Postgres;
using Concord.Tests.Coordination;
using Concord.Tests.Coordination.Queues;

namespace Concord.Tests.Postgres;

/// <summary>Creates <see cref="PostgresQueueService"/>s over a test's store and disposes them with the test.</summary>
internal sealed class NativeQueues : IAsyncDisposable
{
    private readonly List<PostgresQueueService> _services = [];

    public PostgresQueueService Create(IConcordStore store, QueueServiceOptions options)
    {
        var service = new PostgresQueueService((PostgresStore)store, options);
        lock (_services) _services.Add(service);
        return service;
    }

    public async ValueTask DisposeAsync()
    {
        List<PostgresQueueService> services;
        lock (_services) services = [.. _services];
        foreach (var s in services) await s.DisposeAsync();
    }
}

/// <summary>The whole queue suite on the native PostgreSQL queue.</summary>
public sealed class PostgresNativeQueueServiceTests : QueueServiceTests
{
    private readonly NativeQueues _native = new();

    protected override TestBackend Backend => TestBackend.Postgres;

    protected override IQueueService CreateQueueService(QueueServiceOptions options) => _native.Create(Store, options);

    public override async ValueTask DisposeAsync()
    {
        await _native.DisposeAsync();
        await base.DisposeAsync();
    }
}
