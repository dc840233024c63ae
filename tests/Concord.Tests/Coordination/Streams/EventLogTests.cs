using Concord.Coordination.Streams;
using Concord.Postgres;
using Concord.Redis;
using Concord.Tests.Postgres;
using Concord.Tests.Redis;
using Npgsql;
using StackExchange.Redis;
using StreamPosition = Concord.Coordination.Streams.StreamPosition;

namespace Concord.Tests.Coordination.Streams;

/// <summary>
/// The native event logs (<see cref="IEventLog"/>) of PostgreSQL and Redis: written in the append's commit, read by the
/// stream service instead of the per-stream merge, with the same events at the same positions.
/// </summary>
public abstract class EventLogTests : StoreTestBase
{
    protected const string Ns = "s";

    protected override bool UseRealTime => true;

    private protected StoreStreamService Native => new(Store, new StreamServiceOptions { PageSize = 4 });

    private StoreStreamService Merge => new(Store, new StreamServiceOptions { PageSize = 4, UseEventLog = false });

    private IEventLog Log => (IEventLog)Store;

    /// <summary>Another node over the same database, polling only every hour: what it sees live was pushed.</summary>
    protected abstract Task<IConcordStore> OpenPushOnlyNodeAsync();

    /// <summary>Empties the native log behind the service's back (to tell which path a read took).</summary>
    protected abstract Task ClearLogAsync();

    protected static EventData E(string type, int n) => EventData.From(type, new { n });

    protected static int N(RecordedEvent e) => e.Data.GetProperty("n").GetInt32();

    /// <summary>A mix of appends: several streams, multi-event appends, two streams in one commit, an append with a state write.</summary>
    private async Task<int> SeedAsync()
    {
        var streams = Native;
        var n = 0;
        for (var i = 0; i < 9; i++)
        {
            var stream = i % 3 == 0 ? $"orders/{i % 2}" : $"users/{i % 4}";
            await streams.AppendAsync(Ns, stream, [E("A", n++), E("B", n++)], ExpectedVersion.Any, null, Ct);
        }
        var prepared = await streams.PrepareAppendAsync(Ns, [new StreamAppend("orders/7", [E("C", n++)], ExpectedVersion.NoStream), new StreamAppend("users/7", [E("C", n++), E("D", n++)], ExpectedVersion.NoStream)], Ct);
        Assert.True((await Store.TransactAsync(Ns, new TxnRequest { Then = [.. prepared.Ops, TxnOp.Put("state/x", EventData.From("S", new { }).Data, Expect.Absent)] }, null, Ct)).IsApplied);
        await streams.AppendWithAsync(Ns, "orders/0", [E("A", n++)], ExpectedVersion.Any, [TxnOp.Put("state/y", EventData.From("S", new { }).Data, Expect.Absent)], null, Ct);
        await Store.PutAsync(Ns, "state/z", EventData.From("S", new { }).Data, new WriteOptions { Expect = Expect.Absent }, Ct);
        return n;
    }

    private static void AssertSame(IReadOnlyList<RecordedEvent> expected, IReadOnlyList<RecordedEvent> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            var (x, y) = (expected[i], actual[i]);
            Assert.Equal((x.Stream, x.Version, x.Position, x.Id, x.Type, x.RecordedAt, x.Writer, x.TraceParent), (y.Stream, y.Version, y.Position, y.Id, y.Type, y.RecordedAt, y.Writer, y.TraceParent));
            Assert.Equal(x.Data.GetRawText(), y.Data.GetRawText());
            Assert.Equal(x.Metadata.ValueKind, y.Metadata.ValueKind);
        }
    }

    [Fact]
    public async Task ReadAll_NativeLog_SameEventsAndPositionsAsTheMerge_BothDirectionsAndFilters()
    {
        var total = await SeedAsync();
        var all = await Log.ReadEventLogAsync(Ns, StreamFilter.All, StreamPosition.Start, 1000, ReadDirection.Forward, Ct);
        Assert.Equal(total, all.Count); // every event is in the log (the store's own read, not the service's)
        Assert.Equal(Enumerable.Range(0, total), all.Select(N));
        var middle = all[7].Position;
        foreach (var filter in new[] { StreamFilter.All, StreamFilter.ForPrefix("orders/"), StreamFilter.ForPrefix("users/"), StreamFilter.ForStream("users/7"), StreamFilter.ForPrefix("none/") })
        {
            foreach (var (from, direction) in new[] { (StreamPosition.Start, ReadDirection.Forward), (middle, ReadDirection.Forward), (StreamPosition.End, ReadDirection.Backward), (middle, ReadDirection.Backward) })
            {
                foreach (var count in new[] { 1, 3, 1000 })
                    AssertSame(await Merge.ReadAllAsync(Ns, from, count, filter, direction, Ct), await Native.ReadAllAsync(Ns, from, count, filter, direction, Ct));
            }
        }
        var backward = await Native.ReadAllAsync(Ns, StreamPosition.End, 1000, StreamFilter.ForPrefix("orders/"), ReadDirection.Backward, Ct);
        Assert.NotEmpty(backward);
        Assert.Equal(backward.OrderByDescending(e => e.Position).Select(e => e.Position), backward.Select(e => e.Position));
        Assert.All(backward, e => Assert.StartsWith("orders/", e.Stream));
    }

    [Fact]
    public async Task ReadAll_ThroughTheInstrumentedStore_ReadsTheLog()
    {
        // The server hands the stream service an InstrumentedStore: the log must still be found behind it.
        var streams = new StoreStreamService(new Concord.Diagnostics.InstrumentedStore(Store));
        await streams.AppendAsync(Ns, "a/1", [E("A", 0)], ExpectedVersion.Any, null, Ct);
        Assert.Single(await streams.ReadAllAsync(Ns, StreamPosition.Start, 10, StreamFilter.ForPrefix("a/"), cancellationToken: Ct));
        await ClearLogAsync();
        Assert.Empty(await streams.ReadAllAsync(Ns, StreamPosition.Start, 10, StreamFilter.ForPrefix("a/"), cancellationToken: Ct));
        Assert.Single(await Merge.ReadAllAsync(Ns, StreamPosition.Start, 10, StreamFilter.ForPrefix("a/"), cancellationToken: Ct));
    }

    [Fact]
    public async Task Append_RefusedOrReplayed_AddsNothingToTheLog()
    {
        var streams = Native;
        var first = E("A", 0);
        await streams.AppendAsync(Ns, "a", [first], ExpectedVersion.NoStream, new AppendOptions { IdempotencyKey = "op-1" }, Ct);
        await Store.PutAsync(Ns, "state/taken", EventData.From("S", new { }).Data, new WriteOptions { Expect = Expect.Absent }, Ct);

        Assert.Equal(AppendStatus.WrongExpectedVersion, (await streams.AppendAsync(Ns, "a", [E("A", 1)], ExpectedVersion.NoStream, null, Ct)).Status);
        var stateConflict = await streams.AppendWithAsync(Ns, "a", [E("A", 2)], ExpectedVersion.Any, [TxnOp.Put("state/taken", EventData.From("S", new { }).Data, Expect.Absent)], null, Ct);
        Assert.Equal(AppendStatus.StateConflict, stateConflict.Status);
        var replay = await streams.AppendAsync(Ns, "a", [first], ExpectedVersion.NoStream, new AppendOptions { IdempotencyKey = "op-1" }, Ct);
        Assert.True(replay.Replayed);

        var log = await Log.ReadEventLogAsync(Ns, StreamFilter.All, StreamPosition.Start, 100, ReadDirection.Forward, Ct);
        Assert.Equal([0], log.Select(N));
        Assert.Equal(replay.FirstPosition, log[0].Position);
    }

    [Fact]
    public async Task ConcurrentAppends_FromTwoNodes_LogHoldsEveryAppendOnceInPositionOrder_SameAsTheMerge()
    {
        // Real concurrency through group commit (and Redis's pipelined commits): clients on two nodes append to a few hot
        // streams with expected versions, retrying a lost race. The log must hold exactly the appended events, in
        // position order, with per-stream versions 1..n — the same as the per-stream merge.
        await using var nodeB = await OpenPushOnlyNodeAsync();
        var services = new[] { Native, new StoreStreamService(nodeB, new StreamServiceOptions { PageSize = 4 }) };
        const int clientsPerNode = 6, appendsPerClient = 15;
        var appended = 0;
        await Task.WhenAll(Enumerable.Range(0, 2 * clientsPerNode).Select(client => Task.Run(async () =>
        {
            var streams = services[client % 2];
            var random = new Random(client);
            for (var i = 0; i < appendsPerClient; i++)
            {
                var stream = $"hot/{random.Next(4)}";
                var version = (await streams.GetStreamAsync(Ns, stream, Ct))?.Version ?? 0;
                while (true)
                {
                    var result = await streams.AppendAsync(Ns, stream, [E("A", client * 1000 + i)], ExpectedVersion.Exactly(version), null, Ct);
                    if (result.IsAppended)
                    {
                        Interlocked.Increment(ref appended);
                        break;
                    }
                    Assert.Equal(AppendStatus.WrongExpectedVersion, result.Status);
                    version = (await streams.GetStreamAsync(Ns, stream, Ct))?.Version ?? 0;
                }
            }
        }, Ct)));

        Assert.Equal(2 * clientsPerNode * appendsPerClient, appended);
        var logged = await Log.ReadEventLogAsync(Ns, StreamFilter.All, StreamPosition.Start, 10_000, ReadDirection.Forward, Ct);
        Assert.Equal(appended, logged.Count);
        for (var i = 1; i < logged.Count; i++) Assert.True(logged[i - 1].Position < logged[i].Position, $"positions out of order at {i}");
        Assert.Equal(appended, logged.Select(N).Distinct().Count());
        foreach (var stream in logged.GroupBy(e => e.Stream))
            Assert.Equal(Enumerable.Range(1, stream.Count()).Select(v => (long)v), stream.Select(e => e.Version));
        AssertSame(await Merge.ReadAllAsync(Ns, StreamPosition.Start, 10_000, null, ReadDirection.Forward, Ct), logged);
        AssertSame(logged, await services[1].ReadAllAsync(Ns, StreamPosition.Start, 10_000, null, ReadDirection.Forward, Ct));
    }

    [Fact]
    public async Task Subscribe_OnAnotherNode_SeesAppendsPushed()
    {
        await using var nodeB = await OpenPushOnlyNodeAsync();
        var streamsA = Native;
        var streamsB = new StoreStreamService(nodeB, new StreamServiceOptions { PageSize = 4 });
        await streamsA.AppendAsync(Ns, "x/1", [E("A", 0)], ExpectedVersion.Any, null, Ct);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        await using var sub = streamsB.SubscribeAsync(Ns, StreamFilter.ForPrefix("x/"), StreamPosition.Start, cts.Token).GetAsyncEnumerator(cts.Token);
        Assert.True(await sub.MoveNextAsync());
        Assert.Equal(0, N(sub.Current)); // stored before the subscription: its first read
        // From here node B's subscriber waits for a notification: its poll interval is an hour.
        for (var i = 1; i <= 3; i++)
        {
            var appended = await streamsA.AppendAsync(Ns, $"x/{i}", [E("A", i)], ExpectedVersion.Any, null, Ct);
            var next = sub.MoveNextAsync().AsTask();
            var delivered = await Task.WhenAny(next, Task.Delay(TimeSpan.FromSeconds(15), Ct)) == next;
            if (!delivered)
            {
                await cts.CancelAsync(); // end the pending wait so the enumerator can be disposed
                await Assert.ThrowsAnyAsync<OperationCanceledException>(() => next);
            }
            Assert.True(delivered, $"event {i} appended on node A was not pushed to node B's subscriber");
            Assert.True(await next);
            Assert.Equal(i, N(sub.Current));
            Assert.Equal(appended.FirstPosition, sub.Current.Position);
        }
        await cts.CancelAsync();
    }

    [Fact]
    public async Task ConsumerGroup_CatchesUpFromTheLog_ThenLive()
    {
        var streams = Native;
        for (var i = 0; i < 10; i++) await streams.AppendAsync(Ns, $"g/{i % 3}", [E("A", i)], ExpectedVersion.Any, null, Ct);
        var seen = new List<int>();
        var done = new TaskCompletionSource();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var run = streams.RunConsumerGroupAsync(Ns, "grp", StreamFilter.ForPrefix("g/"), (e, _) =>
        {
            lock (seen)
            {
                seen.Add(N(e));
                if (seen.Count == 12) done.TrySetResult();
            }
            return ValueTask.CompletedTask;
        }, new ConsumerGroupOptions { CheckpointEvery = 5 }, cts.Token);
        await streams.AppendAsync(Ns, "g/1", [E("A", 10), E("A", 11)], ExpectedVersion.Any, null, Ct);
        await done.Task.WaitAsync(TimeSpan.FromSeconds(15), Ct);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
        lock (seen) Assert.Equal(Enumerable.Range(0, 12), seen);
        var checkpoint = await streams.GetCheckpointAsync(Ns, "grp", Ct);
        Assert.Equal((await Log.ReadEventLogAsync(Ns, StreamFilter.All, StreamPosition.End, 1, ReadDirection.Backward, Ct))[0].Position, checkpoint);
    }
}

public sealed class PostgresEventLogTests : EventLogTests
{
    protected override TestBackend Backend => TestBackend.Postgres;

    private string Schema => ((PostgresStore)Store).SchemaName;

    protected override async Task<IConcordStore> OpenPushOnlyNodeAsync() =>
        await PostgresStore.OpenAsync(new PostgresStoreOptions { ConnectionString = PostgresStores.ConnectionString, Schema = Schema, PollInterval = TimeSpan.FromHours(1) }, Ct);

    protected override async Task ClearLogAsync()
    {
        await using var conn = new NpgsqlConnection(PostgresStores.ConnectionString);
        await conn.OpenAsync(Ct);
        await using var delete = new NpgsqlCommand($"DELETE FROM {Schema}.stream_events", conn);
        await delete.ExecuteNonQueryAsync(Ct);
    }

    [Fact]
    public async Task Open_DatabaseFromBeforeTheLog_BackfillsStoredEventsInPositionOrder()
    {
        var streams = new StoreStreamService(Store);
        for (var i = 0; i < 20; i++) await streams.AppendAsync(Ns, $"old/{i % 6}", [E("A", 2 * i), E("B", 2 * i + 1)], ExpectedVersion.Any, null, Ct);
        await using (var conn = new NpgsqlConnection(PostgresStores.ConnectionString))
        {
            await conn.OpenAsync(Ct);
            await using var drop = new NpgsqlCommand($"DROP TABLE {Schema}.stream_events", conn);
            await drop.ExecuteNonQueryAsync(Ct);
        }
        await RestartAsync(); // the schema step finds no log and fills it from kv
        streams = new StoreStreamService(Store);
        await streams.AppendAsync(Ns, "old/0", [E("A", 40)], ExpectedVersion.Any, null, Ct);

        var log = await ((IEventLog)Store).ReadEventLogAsync(Ns, StreamFilter.All, StreamPosition.Start, 1000, ReadDirection.Forward, Ct);
        Assert.Equal(Enumerable.Range(0, 41), log.Select(e => e.Data.GetProperty("n").GetInt32()));
        var merged = await new StoreStreamService(Store, new StreamServiceOptions { UseEventLog = false }).ReadAllAsync(Ns, StreamPosition.Start, 1000, cancellationToken: Ct);
        Assert.Equal(merged.Select(e => (e.Stream, e.Version, e.Position, e.Id, e.RecordedAt)), log.Select(e => (e.Stream, e.Version, e.Position, e.Id, e.RecordedAt)));
    }
}

public sealed class RedisEventLogTests : EventLogTests
{
    protected override TestBackend Backend => TestBackend.Redis;

    private string Prefix => ((RedisStore)Store).Prefix;

    protected override async Task<IConcordStore> OpenPushOnlyNodeAsync() =>
        await RedisStore.OpenAsync(new RedisStoreOptions { Configuration = Environment.GetEnvironmentVariable("CONCORD_REDIS") ?? "127.0.0.1:6379", Prefix = Prefix, PollInterval = TimeSpan.FromHours(1) }, Ct);

    protected override Task ClearLogAsync() => RedisStores.Multiplexer.GetDatabase().KeyDeleteAsync($"{Prefix}:events:{Ns}");

    [Fact]
    public async Task Append_EntryIdsAreThePositions()
    {
        var result = await Native.AppendAsync(Ns, "a", [E("A", 0), E("A", 1)], ExpectedVersion.Any, null, Ct);
        var entries = await RedisStores.Multiplexer.GetDatabase().StreamRangeAsync($"{Prefix}:events:{Ns}");
        Assert.Equal([$"{result.Revision}-0", $"{result.Revision}-1"], entries.Select(e => (string)e.Id!));
    }

    [Fact]
    public async Task Open_StoreFromBeforeTheLog_MergesOlderEventsThenReadsTheLog()
    {
        var streams = new StoreStreamService(Store);
        for (var i = 0; i < 20; i++) await streams.AppendAsync(Ns, $"old/{i % 6}", [E("A", i)], ExpectedVersion.Any, null, Ct);
        await RedisStores.Multiplexer.GetDatabase().KeyDeleteAsync([$"{Prefix}:events:{Ns}", $"{Prefix}:events-from"]);
        await RestartAsync(); // starts logging at the next revision
        Assert.True(((IEventLog)Store).EventLogStart > 20);
        streams = new StoreStreamService(Store, new StreamServiceOptions { PageSize = 4 });
        for (var i = 20; i < 25; i++) await streams.AppendAsync(Ns, $"old/{i % 6}", [E("A", i)], ExpectedVersion.Any, null, Ct);

        Assert.Equal(Enumerable.Range(0, 25), (await streams.ReadAllAsync(Ns, StreamPosition.Start, 100, cancellationToken: Ct)).Select(N));
        Assert.Equal(Enumerable.Range(0, 25).Reverse(), (await streams.ReadAllAsync(Ns, StreamPosition.End, 100, direction: ReadDirection.Backward, cancellationToken: Ct)).Select(N));
        var seen = new List<int>();
        await foreach (var e in streams.SubscribeAsync(Ns, StreamFilter.All, StreamPosition.Start, Ct))
        {
            seen.Add(N(e));
            if (seen.Count == 25) break;
        }
        Assert.Equal(Enumerable.Range(0, 25), seen);
    }
}
