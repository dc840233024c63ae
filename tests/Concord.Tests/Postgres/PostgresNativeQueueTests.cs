using System.Text.Json;
using Concord.Coordination.Queues;
using Concord.Postgres;
using Concord.Tests.Coordination;
using Concord.Tests.Coordination.Queues;
using Microsoft.Extensions.Logging;

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

/// <summary>The crash-and-race suite on the native PostgreSQL queue.</summary>
public sealed class PostgresNativeQueueConcurrencyTests : QueueConcurrencyTests
{
    private readonly NativeQueues _native = new();

    protected override TestBackend Backend => TestBackend.Postgres;

    protected override int TaskCount => 150;

    protected override bool QueueOpsAreStoreCommits => false;

    protected override IQueueService CreateQueueService(QueueServiceOptions options) => _native.Create(Store, options);

    public override async ValueTask DisposeAsync()
    {
        await _native.DisposeAsync();
        await base.DisposeAsync();
    }
}

/// <summary>What only the native queue has: one PostgreSQL transaction for ack + effects, its tables, its constraints.</summary>
public sealed class PostgresNativeQueueTests : StoreTestBase
{
    private const string Ns = "nq";
    private static readonly TimeSpan Vis = TimeSpan.FromSeconds(30);
    private readonly NativeQueues _native = new();
    private PostgresQueueService _queues = null!;

    protected override TestBackend Backend => TestBackend.Postgres;

    protected override ValueTask OnStoreOpenedAsync()
    {
        _queues = _native.Create(Store, new QueueServiceOptions { TimeProvider = Clock, DefaultMaxAttempts = 3 });
        return ValueTask.CompletedTask;
    }

    public override async ValueTask DisposeAsync()
    {
        await _native.DisposeAsync();
        await base.DisposeAsync();
    }

    private string Schema => ((PostgresStore)Store).SchemaName;

    [Fact]
    public async Task Enqueue_LimitAboveTheCountHeadroom_TrustsRecentCountsFarFromItAndCountsExactlyNearIt()
    {
        // Limit 2,400: the node skips counting while its recent count is more than 1,200 below the limit, then counts on
        // every enqueue — so the limit still holds exactly for one node, whatever the cache said.
        var queues = _native.Create(Store, new QueueServiceOptions { TimeProvider = Clock, MaxTasks = 2400 });
        await InsertBehindTheServiceAsync("big", "pre", 2390);
        // The first enqueue counts exactly (2,390 + headroom is past the limit), and so do the next ones.
        for (var i = 0; i < 10; i++) Assert.Equal(EnqueueStatus.Enqueued, (await queues.EnqueueAsync(Ns, "big", Json(new { i }), null, Ct)).Status);
        var full = await queues.EnqueueAsync(Ns, "big", Json(new { i = 10 }), null, Ct);
        Assert.Equal(EnqueueStatus.QueueFull, full.Status);
        // Far from the limit a count under a second old is trusted: rows added behind the node's back in that second are
        // not seen (the documented overshoot window); once the count is stale the node counts again and sees them.
        await SqlAsync($"DELETE FROM {Schema}.queue_tasks WHERE ns = 'nq' AND queue = 'big' AND id LIKE 'pre%'");
        Time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(EnqueueStatus.Enqueued, (await queues.EnqueueAsync(Ns, "big", Json(new { i = 11 }), null, Ct)).Status); // counts 10
        await InsertBehindTheServiceAsync("big", "back", 2389);
        Assert.Equal(EnqueueStatus.Enqueued, (await queues.EnqueueAsync(Ns, "big", Json(new { i = 12 }), null, Ct)).Status); // trusted: no count
        Time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(EnqueueStatus.QueueFull, (await queues.EnqueueAsync(Ns, "big", Json(new { i = 13 }), null, Ct)).Status);
    }

    private static JsonElement Json<T>(T value) => JsonSerializer.SerializeToElement(value);

    /// <summary>Adds <paramref name="count"/> ready tasks to <paramref name="queue"/> with plain SQL, unseen by the service.</summary>
    private Task InsertBehindTheServiceAsync(string queue, string idPrefix, int count) =>
        SqlAsync($"INSERT INTO {Schema}.queue_tasks (ns, queue, id, priority, visible_at, seq, waiting, attempts, max_attempts, enqueued_at, payload) " +
            $"SELECT '{Ns}', '{queue}', '{idPrefix}' || i, 0, 0, i, false, 0, 3, 0, '{{}}' FROM generate_series(1, {count}) i");

    private async Task<object?> SqlAsync(string sql)
    {
        await using var conn = await ((PostgresStore)Store).DataSource.OpenConnectionAsync(Ct);
        await using var cmd = new Npgsql.NpgsqlCommand(sql.Replace("{s}", Schema, StringComparison.Ordinal), conn);
        return await cmd.ExecuteScalarAsync(Ct);
    }

    private async Task<QueueLease> EnqueueAndLeaseAsync(EnqueueOptions? options = null)
    {
        await _queues.EnqueueAsync(Ns, "jobs", J("""{"n":1}"""), options, Ct);
        var lease = (await _queues.LeaseAsync(Ns, "jobs", "c1", Vis, TimeSpan.Zero, Ct)).Lease;
        Assert.NotNull(lease);
        return lease;
    }

    [Fact]
    public async Task AckWithEffects_EffectConflicts_TaskStaysLeased_NothingCommitted()
    {
        await Store.PutAsync(Ns, "acct", J("""{"balance":10}"""), new WriteOptions { Expect = Expect.Absent }, Ct);
        var lease = await EnqueueAndLeaseAsync();
        var before = await Store.GetRevisionAsync(Ct);

        var ack = await _queues.AckAsync(lease, [TxnOp.Put("receipt", J("1"), Expect.Absent), TxnOp.Put("acct", J("""{"balance":0}"""), Expect.Version(99))], Ct);

        Assert.Equal(AckStatus.EffectConflict, ack.Status);
        Assert.Equal(1, ack.EffectIndex);
        Assert.Equal(before, await Store.GetRevisionAsync(Ct));
        Assert.Null(await Store.GetAsync(Ns, "receipt", null, Ct));
        Assert.Equal(1L, await SqlAsync($"SELECT count(*) FROM {{s}}.queue_tasks WHERE id = '{lease.TaskId}' AND receipt = '{lease.Receipt}'"));
        Assert.True((await _queues.AckAsync(lease, [TxnOp.Put("receipt", J("1"), Expect.Absent)], Ct)).IsAcked);
        Assert.Equal(0L, await SqlAsync("SELECT count(*) FROM {s}.queue_tasks"));
    }

    [Fact]
    public async Task AckWithoutEffects_TombstoneWrittenWithTheDelete_ReplaysWithinWindow_SweptAfter()
    {
        var lease = await EnqueueAndLeaseAsync();
        // A failing delete writes no tombstone either: the retry then finds the task still leased and acks it.
        await SqlAsync("""
            CREATE FUNCTION {s}.fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$;
            CREATE TRIGGER fail_delete BEFORE DELETE ON {s}.queue_tasks FOR EACH ROW EXECUTE FUNCTION {s}.fail();
            """);
        await Assert.ThrowsAsync<StoreUnavailableException>(async () => await _queues.AckAsync(lease, cancellationToken: Ct));
        Assert.Equal(0L, await SqlAsync("SELECT count(*) FROM {s}.queue_acked"));
        await SqlAsync("DROP TRIGGER fail_delete ON {s}.queue_tasks");

        var first = await _queues.AckAsync(lease, cancellationToken: Ct);
        Assert.True(first.IsAcked && !first.Replayed);
        Assert.Equal(1L, await SqlAsync($"SELECT count(*) FROM {{s}}.queue_acked WHERE id = '{lease.TaskId}' AND receipt = '{lease.Receipt}'"));
        Time.Advance(PostgresQueueService.AckReplayWindow - TimeSpan.FromSeconds(1));
        var retry = await _queues.AckAsync(lease, cancellationToken: Ct);
        Assert.True(retry.IsAcked && retry.Replayed);
        Assert.Equal(first.Revision, retry.Revision);

        // Bounded: past the window the tombstone no longer answers, and the next reclaim of the queue deletes it.
        Time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(AckStatus.StaleReceipt, (await _queues.AckAsync(lease, cancellationToken: Ct)).Status);
        Assert.Equal(0, await _queues.ReclaimExpiredAsync(Ns, "jobs", Ct));
        Assert.Equal(0L, await SqlAsync("SELECT count(*) FROM {s}.queue_acked"));
    }

    [Fact]
    public async Task AckWithEffects_TransactionFailsInQueueStep_EffectsRolledBack_TaskStaysLeased()
    {
        var lease = await EnqueueAndLeaseAsync();
        var before = await Store.GetRevisionAsync(Ct);
        // The task row's delete fails after the effect's rows, log and idempotency record were written in the same transaction.
        await SqlAsync("""
            CREATE FUNCTION {s}.fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$;
            CREATE TRIGGER fail_delete BEFORE DELETE ON {s}.queue_tasks FOR EACH ROW EXECUTE FUNCTION {s}.fail();
            """);

        await Assert.ThrowsAsync<StoreUnavailableException>(async () => await _queues.AckAsync(lease, [TxnOp.Put("effect", J("1"), Expect.Absent)], Ct));

        Assert.Equal(before, await Store.GetRevisionAsync(Ct));
        Assert.Null(await Store.GetAsync(Ns, "effect", null, Ct));
        Assert.Equal(0L, await SqlAsync("SELECT count(*) FROM {s}.kv_log WHERE key = 'effect'"));
        Assert.Equal(0L, await SqlAsync("SELECT count(*) FROM {s}.idempotency"));
        Assert.Equal(QueueTaskState.Leased, (await _queues.GetTaskAsync(Ns, "jobs", lease.TaskId, Ct))!.State);

        await SqlAsync("DROP TRIGGER fail_delete ON {s}.queue_tasks");
        var ack = await _queues.AckAsync(lease, [TxnOp.Put("effect", J("1"), Expect.Absent)], Ct);
        Assert.True(ack.IsAcked);
        Assert.False(ack.Replayed);
        Assert.Equal(ack.Revision, (await Store.GetAsync(Ns, "effect", null, Ct))!.Revision);
        Assert.Null(await _queues.GetTaskAsync(Ns, "jobs", lease.TaskId, Ct));
    }

    [Fact]
    public async Task AckWithEffects_TransactionFailsWritingEffects_TaskStaysLeased()
    {
        var lease = await EnqueueAndLeaseAsync();
        await SqlAsync("""
            CREATE FUNCTION {s}.fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$;
            CREATE TRIGGER fail_log BEFORE INSERT ON {s}.kv_log FOR EACH ROW EXECUTE FUNCTION {s}.fail();
            """);
        await Assert.ThrowsAsync<StoreUnavailableException>(async () => await _queues.AckAsync(lease, [TxnOp.Put("effect", J("1"), Expect.Absent)], Ct));
        Assert.Null(await Store.GetAsync(Ns, "effect", null, Ct));
        Assert.Equal(QueueTaskState.Leased, (await _queues.GetTaskAsync(Ns, "jobs", lease.TaskId, Ct))!.State);
    }

    [Fact]
    public async Task StaleAckWithEffects_NothingCommitted_NoRevisionConsumed()
    {
        var first = await EnqueueAndLeaseAsync();
        Time.Advance(Vis + TimeSpan.FromSeconds(1));
        Assert.Equal(1, await _queues.ReclaimExpiredAsync(Ns, "jobs", Ct));
        var before = await Store.GetRevisionAsync(Ct);
        var ack = await _queues.AckAsync(first, [TxnOp.Put("effect", J("1"), Expect.Absent)], Ct);
        Assert.Equal(AckStatus.StaleReceipt, ack.Status);
        Assert.Equal(before, await Store.GetRevisionAsync(Ct));
        Assert.Null(await Store.GetAsync(Ns, "effect", null, Ct));
    }

    [Fact]
    public async Task PreparedOps_StaleAckInCallersTransaction_WholeTransactionRefusedOnTheMarker()
    {
        var lease = await EnqueueAndLeaseAsync();
        var prepared = await _queues.PrepareAckAsync(lease, Ct);
        Assert.True((await _queues.AckAsync(lease, cancellationToken: Ct)).IsAcked);
        var before = await Store.GetRevisionAsync(Ct);

        var result = await Store.TransactAsync(Ns, new TxnRequest { Then = [TxnOp.Put("doc", J("1"), Expect.Absent), .. prepared.Ops] }, null, Ct);

        Assert.False(result.IsApplied);
        Assert.Equal(1, result.FailedOpIndex);
        Assert.Equal(ConflictKind.NotFound, result.Conflict!.Conflict);
        Assert.Null(await Store.GetAsync(Ns, "doc", null, Ct));
        Assert.Equal(before, await Store.GetRevisionAsync(Ct));
    }

    [Fact]
    public async Task PreparedEnqueue_DedupTaken_TransactionRefused_MarkersNeverStayInKeySpace()
    {
        var first = await _queues.EnqueueAsync(Ns, "jobs", J("1"), new EnqueueOptions { DedupId = "d1" }, Ct);
        var dup = await _queues.PrepareEnqueueAsync(Ns, "jobs", J("2"), new EnqueueOptions { DedupId = "d1" }, Ct);
        var refused = await Store.TransactAsync(Ns, new TxnRequest { Then = [.. dup.Ops, TxnOp.Put("doc", J("1"), Expect.Absent)] }, null, Ct);
        Assert.False(refused.IsApplied);
        Assert.Equal(0, refused.FailedOpIndex);
        Assert.Equal(ConflictKind.AlreadyExists, refused.Conflict!.Conflict);
        Assert.Contains(first.TaskId, refused.Conflict.Message);
        Assert.Null(await Store.GetAsync(Ns, "doc", null, Ct));

        var fresh = await _queues.PrepareEnqueueAsync(Ns, "jobs", J("3"), new EnqueueOptions { DedupId = "d2" }, Ct);
        Assert.True((await Store.TransactAsync(Ns, new TxnRequest { Then = [.. fresh.Ops, TxnOp.Put("doc", J("1"), Expect.Absent)] }, null, Ct)).IsApplied);
        Assert.NotNull(await _queues.GetTaskAsync(Ns, "jobs", fresh.TaskId, Ct));
        Assert.Empty((await Store.ListAsync(Ns, new ListRequest { Prefix = PostgresQueueService.MarkerPrefix }, Ct)).Records);
    }

    [Fact]
    public async Task WaitingLease_TaskEnqueuedByAnotherNode_WokenByNotifyWithoutTimePassing()
    {
        // Two services on one schema stand for two nodes: only LISTEN/NOTIFY can wake the waiter (virtual time stands still,
        // so neither the fallback poll nor the end of the wait can).
        var otherNode = _native.Create(Store, new QueueServiceOptions { TimeProvider = Clock });
        var waiting = _queues.LeaseAsync(Ns, "jobs", "c1", Vis, TimeSpan.FromMinutes(5), Ct).AsTask();
        for (var i = 0; i < 200 && !waiting.IsCompleted && (long)(await SqlAsync("SELECT count(*) FROM {s}.queue_waiters"))! == 0; i++) await Task.Delay(10, Ct);
        Assert.False(waiting.IsCompleted);
        await otherNode.EnqueueAsync(Ns, "jobs", J("1"), null, Ct);
        var result = await waiting.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.True(result.IsLeased);
    }

    [Fact]
    public async Task PreparedEnqueue_CommittedTwice_SecondRefused_OneTask()
    {
        var prepared = await _queues.PrepareEnqueueAsync(Ns, "jobs", J("1"), null, Ct);
        Assert.True((await Store.TransactAsync(Ns, new TxnRequest { Then = prepared.Ops }, null, Ct)).IsApplied);
        var again = await Store.TransactAsync(Ns, new TxnRequest { Then = prepared.Ops }, null, Ct);
        Assert.False(again.IsApplied);
        Assert.Equal(ConflictKind.AlreadyExists, again.Conflict!.Conflict);
        Assert.Equal(1, (await _queues.GetStatsAsync(Ns, "jobs", Ct)).Ready);
    }

    [Fact]
    public async Task GroupHeadConstraint_SecondInFlightTaskOfAGroup_RefusedByPostgres()
    {
        // The unique index the concurrency tests rely on is real: a second non-waiting task of a group cannot exist.
        await _queues.EnqueueAsync(Ns, "jobs", J("1"), new EnqueueOptions { Group = "g" }, Ct);
        await _queues.EnqueueAsync(Ns, "jobs", J("2"), new EnqueueOptions { Group = "g" }, Ct);
        Assert.Equal(1L, await SqlAsync("SELECT count(*) FROM {s}.queue_tasks WHERE waiting"));
        await Assert.ThrowsAsync<Npgsql.PostgresException>(() => SqlAsync("UPDATE {s}.queue_tasks SET waiting = false"));
    }

    [Fact]
    public async Task EnqueueLeaseAckCycles_HotTableHoldsOnlyUnfinishedTasks()
    {
        async Task CyclesAsync(int n)
        {
            for (var i = 0; i < n; i++)
            {
                await _queues.EnqueueAsync(Ns, "jobs", J(new { i, pad = new string('x', 300) }), new EnqueueOptions { Group = i % 3 == 0 ? "g" : null }, Ct);
                var lease = (await _queues.LeaseAsync(Ns, "jobs", "c", Vis, TimeSpan.Zero, Ct)).Lease!;
                Assert.True((await _queues.AckAsync(lease, cancellationToken: Ct)).IsAcked);
            }
        }
        await CyclesAsync(150);
        await SqlAsync("VACUUM {s}.queue_tasks");
        var size1 = (long)(await SqlAsync("SELECT pg_total_relation_size('{s}.queue_tasks')"))!;
        await CyclesAsync(150);
        await SqlAsync("VACUUM {s}.queue_tasks");
        var size2 = (long)(await SqlAsync("SELECT pg_total_relation_size('{s}.queue_tasks')"))!;

        Assert.Equal(0L, await SqlAsync("SELECT count(*) FROM {s}.queue_tasks"));
        Assert.Equal(0L, await SqlAsync("SELECT count(*) FROM {s}.queue_dead"));
        // Sizes are reported, not asserted: on a shared cluster another session's old snapshot can hold VACUUM back, so
        // whether the second batch reuses the first one's space depends on the neighbours (docs/backends.md has the figures).
        TestContext.Current.SendDiagnosticMessage($"queue_tasks after 150 cycles + VACUUM: {size1} bytes; after 300: {size2} bytes");
    }
}

/// <summary>Real concurrency on the native queue: N consumers, M tasks, groups; checked with data.</summary>
public sealed class PostgresNativeQueueStressTests : StoreTestBase
{
    private readonly NativeQueues _native = new();

    protected override TestBackend Backend => TestBackend.Postgres;

    protected override bool UseRealTime => true;

    public override async ValueTask DisposeAsync()
    {
        await _native.DisposeAsync();
        await base.DisposeAsync();
    }

    [Fact]
    public async Task ManyConsumers_EveryTaskAckedExactlyOnce_GroupsNeverInFlightTogether()
    {
        const int tasks = 160, consumers = 6;
        string?[] groups = ["a", "b", null]; // a period shorter than the consumer count: a group's tasks are next to each other
        var queues = _native.Create(Store, new QueueServiceOptions { TimeProvider = TimeProvider.System });
        using var safety = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        safety.CancelAfter(TimeSpan.FromSeconds(60));
        var ct = safety.Token;
        var ids = new Dictionary<string, (int Seq, string? Group)>();
        for (var i = 0; i < tasks; i++)
        {
            var group = groups[i % groups.Length];
            var r = await queues.EnqueueAsync("s", "w", J(new { i }), new EnqueueOptions { Group = group }, ct);
            ids[r.TaskId] = (i, group);
        }
        // In flight = between the lease and the ack's commit. A consumer claims its group with a create-only key right after
        // the lease, and the ack deletes the claim in the same transaction, so a second task of the group leased before the
        // first one's ack committed finds the claim: an exact, linearized check rather than a timing window.
        var overlaps = 0;
        var acked = new System.Collections.Concurrent.ConcurrentBag<string>();
        var order = new System.Collections.Concurrent.ConcurrentDictionary<string, List<int>>();
        await Task.WhenAll(Enumerable.Range(0, consumers).Select(c => Task.Run(async () =>
        {
            while (acked.Count < tasks)
            {
                var result = await queues.LeaseAsync("s", "w", $"c{c}", TimeSpan.FromMinutes(5), TimeSpan.FromMilliseconds(50), ct);
                if (result.Lease is not { } lease) continue;
                var effects = new List<TxnOp> { TxnOp.PatchKey($"done/{lease.TaskId}", JsonPatch.Create().Increment("/n")) };
                if (lease.Group is { } g)
                {
                    var claim = await Store.PutAsync("s", $"inflight/{g}", J(new { lease.TaskId }), new WriteOptions { Expect = Expect.Absent }, ct);
                    if (!claim.IsApplied) Interlocked.Increment(ref overlaps);
                    else effects.Add(TxnOp.Delete($"inflight/{g}", Expect.Version(claim.Record!.Version)));
                    lock (order) order.GetOrAdd(g, _ => []).Add(lease.Payload.GetProperty("i").GetInt32());
                }
                var ack = await queues.AckAsync(lease, effects, ct);
                Assert.True(ack.IsAcked, ack.Message);
                acked.Add(lease.TaskId);
            }
        }, ct)));

        Assert.Equal(0, overlaps);
        Assert.Equal(tasks, acked.Count);
        Assert.Equal(ids.Keys.Order(), acked.Order());
        foreach (var id in ids.Keys) Assert.Equal(1, (await Store.GetAsync("s", $"done/{id}", null, Ct))!.Value.GetProperty("n").GetInt32());
        foreach (var (group, seqs) in order) Assert.Equal(ids.Values.Where(v => v.Group == group).Select(v => v.Seq).Order(), seqs);
        Assert.Equal(0, (await queues.GetStatsAsync("s", "w", Ct)).Total);
    }
}

/// <summary>The queue suite over HTTP against a server whose queue is the native PostgreSQL one.</summary>
public sealed class PostgresNativeHttpQueueServiceTests : QueueServiceTests
{
    private readonly NativeQueues _native = new();
    private HttpHost? _host;

    protected override TestBackend Backend => TestBackend.Postgres;

    protected override IQueueService CreateQueueService(QueueServiceOptions options)
    {
        _host ??= HttpHost.StartAsync(Store, Clock).GetAwaiter().GetResult();
        _host.Queues = _native.Create(Store, options);
        return new Client.HttpQueueService(_host.Client, _host.ClientOptions);
    }

    public override async ValueTask DisposeAsync()
    {
        if (_host is not null) await _host.DisposeAsync();
        await _native.DisposeAsync();
        await base.DisposeAsync();
    }
}

/// <summary>The server picks the native queue when its store is PostgreSQL.</summary>
public sealed class PostgresNativeQueueWiringTests : IAsyncLifetime
{
    private readonly PostgresStores _stores = new();

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync() => await _stores.DropSchemasAsync();

    [Fact]
    public async Task Server_OnPostgresStore_ServesNativeQueue()
    {
        await using var store = await _stores.CreateAsync(new Conformance.StoreFixtureOptions());
        var app = await Server.ConcordServer.CreateAsync([], o => o.Backend = "postgres", store, b =>
        {
            Microsoft.AspNetCore.TestHost.WebHostBuilderExtensions.UseTestServer(b.WebHost);
            b.Logging.ClearProviders();
        }, TestContext.Current.CancellationToken);
        await using (app)
        {
            Assert.IsType<PostgresQueueService>(app.Services.GetService(typeof(IQueueService)));
        }
    }
}
