using Concord.Coordination.Streams;
using Concord.Engine;

namespace Concord.Tests.Coordination.Streams;

/// <summary>Functional tests of <see cref="StoreStreamService"/>, run on every engine mode.</summary>
public abstract class StreamServiceTests : StoreTestBase
{
    protected const string Ns = "s";

    protected StoreStreamService Streams { get; private set; } = null!;

    protected override ValueTask OnStoreOpenedAsync()
    {
        Streams = new StoreStreamService(Store, new StreamServiceOptions { TimeProvider = Clock, PageSize = 4 });
        return ValueTask.CompletedTask;
    }

    protected static EventData E(string type, int n) => EventData.From(type, new { n });

    protected ValueTask<AppendResult> Append(string stream, ExpectedVersion expected, params EventData[] events) =>
        Streams.AppendAsync(Ns, stream, events, expected, null, Ct);

    protected static int N(RecordedEvent e) => e.Data.GetProperty("n").GetInt32();

    [Fact]
    public async Task Append_NewStream_VersionsAndPositionsInCommitOrder()
    {
        var result = await Append("orders/1", ExpectedVersion.NoStream, E("Created", 1), E("Paid", 2), E("Shipped", 3));
        Assert.True(result.IsAppended);
        Assert.Equal(3, result.Version);
        Assert.Equal(new StreamPosition(result.Revision, 0), result.FirstPosition);
        Assert.Equal(new StreamPosition(result.Revision, 2), result.LastPosition);

        var events = await Streams.ReadStreamAsync(Ns, "orders/1", 1, 10, cancellationToken: Ct);
        Assert.Equal([1L, 2L, 3L], events.Select(e => e.Version));
        Assert.Equal(["Created", "Paid", "Shipped"], events.Select(e => e.Type));
        Assert.Equal([0, 1, 2], events.Select(e => e.Position.Index));
        Assert.All(events, e => Assert.Equal("orders/1", e.Stream));
        Assert.Equal(new StreamInfo("orders/1", 3, result.Revision), await Streams.GetStreamAsync(Ns, "orders/1", Ct));
        Assert.Null(await Streams.GetStreamAsync(Ns, "orders/2", Ct));
    }

    [Fact]
    public async Task Append_WrongExpectedVersion_RefusedWithCurrentVersion_NothingWritten()
    {
        await Append("s1", ExpectedVersion.NoStream, E("A", 1), E("A", 2));
        var stale = await Append("s1", ExpectedVersion.Exactly(1), E("B", 3));
        Assert.Equal(AppendStatus.WrongExpectedVersion, stale.Status);
        Assert.Equal(2, stale.Version);
        Assert.Contains("version 2", stale.Message);
        Assert.Equal(AppendStatus.WrongExpectedVersion, (await Append("s1", ExpectedVersion.NoStream, E("B", 3))).Status);
        Assert.Equal(AppendStatus.WrongExpectedVersion, (await Append("nope", ExpectedVersion.StreamExists, E("B", 3))).Status);
        Assert.Equal(2, (await Streams.GetStreamAsync(Ns, "s1", Ct))!.Version);

        Assert.Equal(3, (await Append("s1", ExpectedVersion.Exactly(2), E("C", 3))).Version);
        Assert.Equal(4, (await Append("s1", ExpectedVersion.StreamExists, E("D", 4))).Version);
        Assert.Equal(5, (await Append("s1", ExpectedVersion.Any, E("E", 5))).Version);
        Assert.Equal([1, 2, 3, 4, 5], (await Streams.ReadStreamAsync(Ns, "s1", 1, 100, cancellationToken: Ct)).Select(N));
    }

    [Fact]
    public async Task ReadStream_ForwardAndBackwardWithCounts()
    {
        for (var i = 1; i <= 10; i++) await Append("s", ExpectedVersion.Any, E("X", i));
        Assert.Equal([4, 5, 6], (await Streams.ReadStreamAsync(Ns, "s", 4, 3, cancellationToken: Ct)).Select(N));
        Assert.Equal([9, 10], (await Streams.ReadStreamAsync(Ns, "s", 9, 5, cancellationToken: Ct)).Select(N));
        Assert.Empty(await Streams.ReadStreamAsync(Ns, "s", 11, 5, cancellationToken: Ct));
        Assert.Equal([10, 9, 8], (await Streams.ReadStreamAsync(Ns, "s", long.MaxValue, 3, ReadDirection.Backward, Ct)).Select(N));
        Assert.Equal([5, 4, 3, 2, 1], (await Streams.ReadStreamAsync(Ns, "s", 5, 50, ReadDirection.Backward, Ct)).Select(N));
        Assert.Empty(await Streams.ReadStreamAsync(Ns, "missing", long.MaxValue, 5, ReadDirection.Backward, Ct));
    }

    [Fact]
    public async Task ReadAll_InterleavedStreams_GlobalOrderBothDirections_FromPositions()
    {
        var appended = new List<(string Stream, int N)>();
        for (var i = 0; i < 12; i++)
        {
            var stream = $"acct/{i % 3}";
            await Append(stream, ExpectedVersion.Any, E("T", i));
            appended.Add((stream, i));
        }
        await Append("other", ExpectedVersion.Any, E("O", 99));

        var all = await Streams.ReadAllAsync(Ns, StreamPosition.Start, 100, StreamFilter.ForPrefix("acct/"), cancellationToken: Ct);
        Assert.Equal(Enumerable.Range(0, 12), all.Select(N));
        Assert.True(all.Zip(all.Skip(1)).All(p => p.First.Position < p.Second.Position));

        var page2 = await Streams.ReadAllAsync(Ns, all[4].Position, 3, StreamFilter.ForPrefix("acct/"), cancellationToken: Ct);
        Assert.Equal([5, 6, 7], page2.Select(N));
        var back = await Streams.ReadAllAsync(Ns, all[4].Position, 3, StreamFilter.ForPrefix("acct/"), ReadDirection.Backward, Ct);
        Assert.Equal([3, 2, 1], back.Select(N));
        var newest = await Streams.ReadAllAsync(Ns, StreamPosition.End, 2, null, ReadDirection.Backward, Ct);
        Assert.Equal([99, 11], newest.Select(N));
        Assert.Equal([1, 4, 7, 10], (await Streams.ReadAllAsync(Ns, StreamPosition.Start, 100, StreamFilter.ForStream("acct/1"), cancellationToken: Ct)).Select(N));
    }

    [Fact]
    public async Task PrepareAppend_TwoStreamsInCallersTransaction_OneCommitDistinctIndexes()
    {
        await Append("b", ExpectedVersion.NoStream, E("B", 0));
        var prepared = await Streams.PrepareAppendAsync(Ns,
        [
            new StreamAppend("a", [E("A", 1), E("A", 2)], ExpectedVersion.NoStream),
            new StreamAppend("b", [E("B", 3)], ExpectedVersion.Exactly(1)),
        ], Ct);
        Assert.True(prepared.IsReady);
        var txn = await Store.TransactAsync(Ns, new TxnRequest { Then = [.. prepared.Ops, TxnOp.Put("state/x", J("1"), Expect.Absent)] }, null, Ct);
        Assert.True(txn.IsApplied);
        var results = prepared.ResultsAt(txn.Revision);
        Assert.Equal(new StreamPosition(txn.Revision, 2), results[1].FirstPosition);
        var fromCommit = await Streams.ReadAllAsync(Ns, StreamPosition.AfterRevision(txn.Revision - 1), 10, cancellationToken: Ct);
        Assert.Equal([1, 2, 3], fromCommit.Select(N));
        Assert.Equal([0, 1, 2], fromCommit.Select(e => e.Position.Index));

        var refused = await Streams.PrepareAppendAsync(Ns, [new StreamAppend("a", [E("A", 9)], ExpectedVersion.NoStream)], Ct);
        Assert.False(refused.IsReady);
        Assert.Equal(2, refused.Refused!.Version);
    }

    [Fact]
    public async Task AppendWith_StateWrite_BothOrNeither()
    {
        var ok = await Streams.AppendWithAsync(Ns, "acct/7", [E("FeeCharged", 5)], ExpectedVersion.NoStream,
            [TxnOp.Put("accounts/7", J("""{"fees":5}"""), Expect.Absent)], null, Ct);
        Assert.True(ok.IsAppended);
        Assert.Equal(ok.Revision, (await Store.GetAsync(Ns, "accounts/7", null, Ct))!.Revision);

        // The state write's expectation fails: no event either.
        var stateConflict = await Streams.AppendWithAsync(Ns, "acct/7", [E("FeeCharged", 6)], ExpectedVersion.Exactly(1),
            [TxnOp.Put("accounts/7", J("""{"fees":11}"""), Expect.Version(9))], null, Ct);
        Assert.Equal(AppendStatus.StateConflict, stateConflict.Status);
        Assert.Equal(ConflictKind.VersionMismatch, stateConflict.Conflict!.Conflict);
        Assert.Equal(1, (await Streams.GetStreamAsync(Ns, "acct/7", Ct))!.Version);

        // The stream is not at the expected version: no state write either.
        var wrong = await Streams.AppendWithAsync(Ns, "acct/7", [E("FeeCharged", 6)], ExpectedVersion.NoStream,
            [TxnOp.Put("accounts/7", J("""{"fees":11}"""), Expect.Version(1))], null, Ct);
        Assert.Equal(AppendStatus.WrongExpectedVersion, wrong.Status);
        Assert.Equal(5, (await Store.GetAsync(Ns, "accounts/7", null, Ct))!.Value.GetProperty("fees").GetInt32());
    }

    [Fact]
    public async Task Append_RetriedWithIdempotencyKey_ReplaysOriginalResult()
    {
        var events = new[] { E("A", 1), E("A", 2) };
        var options = new AppendOptions { IdempotencyKey = "op-1" };
        var first = await Streams.AppendAsync(Ns, "s", events, ExpectedVersion.NoStream, options, Ct);
        var retry = await Streams.AppendAsync(Ns, "s", events, ExpectedVersion.NoStream, options, Ct);
        Assert.True(first.IsAppended && !first.Replayed);
        Assert.True(retry.IsAppended && retry.Replayed);
        Assert.Equal(first.FirstPosition, retry.FirstPosition);
        Assert.Equal(first.LastPosition, retry.LastPosition);
        Assert.Equal(2, (await Streams.GetStreamAsync(Ns, "s", Ct))!.Version);
        // Any-version retry takes the replay too, instead of appending again.
        Assert.True((await Streams.AppendAsync(Ns, "s", events, ExpectedVersion.Any, options, Ct)).Replayed);
        Assert.Equal(2, (await Streams.GetStreamAsync(Ns, "s", Ct))!.Version);
        await Assert.ThrowsAsync<IdempotencyKeyReusedException>(async () => await Streams.AppendAsync(Ns, "s", [E("B", 3)], ExpectedVersion.Any, options, Ct));
    }

    [Fact]
    public async Task Subscribe_ByStreamPrefixAndAll_SeeStoredThenLiveEventsOnce()
    {
        await Append("orders/1", ExpectedVersion.Any, E("O", 1));
        await Append("users/1", ExpectedVersion.Any, E("U", 2));
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var all = Collect(Streams.SubscribeAsync(Ns, StreamFilter.All, StreamPosition.Start, cts.Token), 5);
        var orders = Collect(Streams.SubscribeAsync(Ns, StreamFilter.ForPrefix("orders/"), StreamPosition.Start, cts.Token), 3);
        var one = Collect(Streams.SubscribeAsync(Ns, StreamFilter.ForStream("orders/1"), StreamPosition.Start, cts.Token), 2);

        await Append("orders/12", ExpectedVersion.Any, E("O", 3));
        await Append("orders/1", ExpectedVersion.Any, E("O", 4));
        await Append("users/2", ExpectedVersion.Any, E("U", 5));

        Assert.Equal([1, 2, 3, 4, 5], (await all.WaitAsync(TimeSpan.FromSeconds(30), Ct)).Select(N));
        Assert.Equal([1, 3, 4], (await orders.WaitAsync(TimeSpan.FromSeconds(30), Ct)).Select(N));
        Assert.Equal([1, 4], (await one.WaitAsync(TimeSpan.FromSeconds(30), Ct)).Select(N));
    }

    [Fact]
    public async Task Subscribe_FromPosition_StartsStrictlyAfterIt()
    {
        var first = await Append("s", ExpectedVersion.Any, E("A", 1), E("A", 2), E("A", 3));
        await Append("s", ExpectedVersion.Any, E("A", 4));
        var after = new StreamPosition(first.Revision, 1);
        var seen = await Collect(Streams.SubscribeAsync(Ns, StreamFilter.All, after, Ct), 2).WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.Equal([3, 4], seen.Select(N));
        var end = await Streams.GetEndPositionAsync(Ns, Ct);
        var live = Collect(Streams.SubscribeAsync(Ns, StreamFilter.All, end, Ct), 1);
        await Append("s", ExpectedVersion.Any, E("A", 5));
        Assert.Equal([5], (await live.WaitAsync(TimeSpan.FromSeconds(30), Ct)).Select(N));
    }

    protected static async Task<List<RecordedEvent>> Collect(IAsyncEnumerable<RecordedEvent> source, int count)
    {
        var list = new List<RecordedEvent>();
        if (count == 0) return list;
        await foreach (var e in source)
        {
            list.Add(e);
            if (list.Count == count) break;
        }
        return list;
    }

    [Fact]
    public async Task ConsumerGroup_Restart_ResumesAfterCheckpoint()
    {
        for (var i = 1; i <= 6; i++) await Append("s", ExpectedVersion.Any, E("A", i));
        var firstRun = new List<int>();
        using (var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct))
        {
            var run = Streams.RunConsumerGroupAsync(Ns, "billing", StreamFilter.All, async (e, _) =>
            {
                firstRun.Add(N(e));
                if (firstRun.Count == 4) await stop.CancelAsync(); // the process stops after handling event 4
            }, null, stop.Token);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
        }
        Assert.Equal([1, 2, 3, 4], firstRun);
        var checkpoint = await Streams.GetCheckpointAsync(Ns, "billing", Ct);
        Assert.Equal(4, (await Streams.ReadAllAsync(Ns, StreamPosition.Start, 10, cancellationToken: Ct)).Single(e => e.Position == checkpoint).Data.GetProperty("n").GetInt32());

        if (Durable) await RestartAsync(); // the store restarts too; in memory mode only the consumer does
        await Append("s", ExpectedVersion.Exactly(6), E("A", 7));
        var secondRun = new List<int>();
        using (var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct))
        {
            var run = Streams.RunConsumerGroupAsync(Ns, "billing", StreamFilter.All, async (e, _) =>
            {
                secondRun.Add(N(e));
                if (secondRun.Count == 3) await stop.CancelAsync();
            }, null, stop.Token);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(TimeSpan.FromSeconds(30), Ct));
        }
        Assert.Equal([5, 6, 7], secondRun);
    }

    [Fact]
    public async Task HandleOnce_RedeliveredAfterCrashBeforeCheckpoint_EffectAppliedOnce()
    {
        for (var i = 1; i <= 3; i++) await Append("s", ExpectedVersion.Any, E("Fee", i));
        var crashed = false;
        var outcomes = new List<HandleStatus>();
        async ValueTask Handler(RecordedEvent e, CancellationToken ct)
        {
            var result = await Streams.HandleOnceAsync(Ns, "fees", e, [TxnOp.PatchKey("total", JsonPatch.Create().Increment("/sum", N(e)))], ct);
            outcomes.Add(result.Status);
            if (N(e) == 2 && !crashed)
            {
                crashed = true;
                throw new InvalidOperationException("crash after the effect, before the checkpoint");
            }
        }

        await Assert.ThrowsAsync<InvalidOperationException>(() => Streams.RunConsumerGroupAsync(Ns, "fees", StreamFilter.All, Handler, null, Ct));
        using (var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct))
        {
            var run = Streams.RunConsumerGroupAsync(Ns, "fees", StreamFilter.All, async (e, ct) =>
            {
                await Handler(e, ct);
                if (N(e) == 3) await stop.CancelAsync();
            }, null, stop.Token);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(TimeSpan.FromSeconds(30), Ct));
        }
        // Event 2 was delivered twice (at-least-once) but applied once.
        Assert.Equal([HandleStatus.Applied, HandleStatus.Applied, HandleStatus.Duplicate, HandleStatus.Applied], outcomes);
        Assert.Equal(6, (await Store.GetAsync(Ns, "total", null, Ct))!.Value.GetProperty("sum").GetInt32());
    }

    [Fact]
    public async Task HandleOnce_EffectConflict_NotMarkedHandled()
    {
        await Append("s", ExpectedVersion.Any, E("A", 1));
        var e = (await Streams.ReadStreamAsync(Ns, "s", 1, 1, cancellationToken: Ct))[0];
        var conflict = await Streams.HandleOnceAsync(Ns, "g", e, [TxnOp.Put("x", J("1"), Expect.Version(4))], Ct);
        Assert.Equal(HandleStatus.EffectConflict, conflict.Status);
        Assert.Equal(HandleStatus.Applied, (await Streams.HandleOnceAsync(Ns, "g", e, [TxnOp.Put("x", J("1"), Expect.Absent)], Ct)).Status);
        Assert.Equal(HandleStatus.Duplicate, (await Streams.HandleOnceAsync(Ns, "g", e, [TxnOp.Put("x", J("2"), Expect.Version(1))], Ct)).Status);
        Assert.Equal(HandleStatus.Applied, (await Streams.HandleOnceAsync(Ns, "other-group", e, [TxnOp.Put("y", J("1"), Expect.Absent)], Ct)).Status);
    }

    [Fact]
    public async Task SaveCheckpoint_NeverMovesBackwards()
    {
        Assert.True(await Streams.SaveCheckpointAsync(Ns, "g", new StreamPosition(10, 1), Ct));
        Assert.False(await Streams.SaveCheckpointAsync(Ns, "g", new StreamPosition(10, 0), Ct));
        Assert.Equal(new StreamPosition(10, 1), await Streams.GetCheckpointAsync(Ns, "g", Ct));
        Assert.True(await Streams.SaveCheckpointAsync(Ns, "g", new StreamPosition(11, 0), Ct));
    }

    [Fact]
    public async Task ReadChanges_StateWritesAsStream_WithPositions_SystemKeysHidden()
    {
        var from = await Store.GetRevisionAsync(Ct) + 1;
        var session = new ConcordSession(Store, Ns, "agent");
        await session.TransactAsync(new TxnRequest { Then = [TxnOp.Put("acct/1", J("1"), Expect.Absent), TxnOp.Put("acct/2", J("2"), Expect.Absent)] }, cancellationToken: Ct);
        await Append("s", ExpectedVersion.Any, E("A", 1)); // _sys keys: not part of the state feed
        await session.DeleteAsync("acct/1", Expect.Exists, cancellationToken: Ct);
        var changes = new List<StateChange>();
        await foreach (var c in Streams.ReadChangesAsync(Ns, "", from, Ct))
        {
            changes.Add(c);
            if (changes.Count == 3) break;
        }
        Assert.Equal(["acct/1", "acct/2", "acct/1"], changes.Select(c => c.Key));
        Assert.Equal([ChangeKind.Put, ChangeKind.Put, ChangeKind.Delete], changes.Select(c => c.Kind));
        Assert.Equal(changes[0].Position.Revision, changes[1].Position.Revision);
        Assert.Equal([0, 1, 0], changes.Select(c => c.Position.Index));
    }

    [Fact]
    public void StreamPosition_OrdersAndParses()
    {
        Assert.True(new StreamPosition(3, 9) < new StreamPosition(4, 0));
        Assert.True(new StreamPosition(4, 1) > new StreamPosition(4, 0));
        Assert.True(StreamPosition.Start < new StreamPosition(1, 0));
        Assert.True(StreamPosition.AfterRevision(4) < new StreamPosition(5, 0));
        Assert.True(StreamPosition.TryParse("12:3", out var p));
        Assert.Equal(new StreamPosition(12, 3), p);
        Assert.Equal("12:3", p.ToString());
        Assert.False(StreamPosition.TryParse("12", out _));
    }

    [Fact]
    public async Task InvalidStreamNames_Refused()
    {
        await Assert.ThrowsAsync<InvalidRequestException>(async () => await Append("a/@b", ExpectedVersion.Any, E("X", 1)));
        await Assert.ThrowsAsync<InvalidRequestException>(async () => await Append("a//b", ExpectedVersion.Any, E("X", 1)));
        await Assert.ThrowsAsync<InvalidRequestException>(async () => await Append("/a", ExpectedVersion.Any, E("X", 1)));
        await Assert.ThrowsAsync<InvalidRequestException>(async () => await Streams.AppendAsync(Ns, "a", [], ExpectedVersion.Any, null, Ct));
        // Names that only share a prefix stay separate streams.
        await Append("a", ExpectedVersion.Any, E("X", 1));
        await Append("a/b", ExpectedVersion.Any, E("X", 2));
        await Append("ab", ExpectedVersion.Any, E("X", 3));
        Assert.Equal([1], (await Streams.ReadStreamAsync(Ns, "a", 1, 10, cancellationToken: Ct)).Select(N));
    }
}

public sealed class MemoryStreamServiceTests : StreamServiceTests
{
    protected override TestBackend Backend => TestBackend.Memory;

    [Fact]
    public async Task Subscribe_FromBeforeRetainedHistory_CatchesUpFromStoredEvents()
    {
        // A store that keeps only a little watch history: starting from the beginning must fall back to the stored events.
        await using var store = ConcordEngine.CreateInMemory(new ConcordEngineOptions { RetainedRevisions = 1, TimeProvider = Clock });
        var streams = new StoreStreamService(store, new StreamServiceOptions { PageSize = 7 });
        const int total = 1300;
        for (var i = 0; i < total; i++)
            await streams.AppendAsync(Ns, $"s/{i % 5}", [E("A", i)], ExpectedVersion.Any, null, Ct);
        await Assert.ThrowsAsync<RevisionCompactedException>(async () =>
        {
            await foreach (var _ in store.WatchAsync(Ns, new WatchRequest { FromRevision = 1 }, Ct)) break;
        });
        var sub = Collect(streams.SubscribeAsync(Ns, StreamFilter.ForPrefix("s/"), StreamPosition.Start, Ct), total + 1);
        await streams.AppendAsync(Ns, "s/9", [E("A", total)], ExpectedVersion.Any, null, Ct);
        var seen = await sub.WaitAsync(TimeSpan.FromSeconds(60), Ct);
        Assert.Equal(Enumerable.Range(0, total + 1), seen.Select(N));
    }
}

public sealed class PostgresStreamServiceTests : StreamServiceTests
{
    protected override TestBackend Backend => TestBackend.Postgres;
}

public sealed class EmbeddedStreamServiceTests : StreamServiceTests
{
    protected override TestBackend Backend => TestBackend.Embedded;

    [Fact]
    public async Task Subscribe_AfterRestartFromSnapshot_CatchesUpFromStoredEvents()
    {
        for (var i = 0; i < 30; i++) await Append($"s/{i % 4}", ExpectedVersion.Any, E("A", i));
        await RestartAsync(snapshotFirst: true); // the watch history now starts after the snapshot
        var sub = Collect(Streams.SubscribeAsync(Ns, StreamFilter.All, StreamPosition.Start, Ct), 31);
        await Append("s/0", ExpectedVersion.Any, E("A", 30));
        Assert.Equal(Enumerable.Range(0, 31), (await sub.WaitAsync(TimeSpan.FromSeconds(30), Ct)).Select(N));
    }
}
