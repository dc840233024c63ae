namespace Concord.Tests.Conformance;

/// <summary>The change feed: watch a key or a prefix from a revision, then live.</summary>
public abstract partial class StoreConformanceTests
{
    private static string Describe(ChangeEvent e) => $"{e.Kind} {e.Key} v{e.Record.Version} r{e.Revision}";

    [Fact]
    public async Task Watch_KeyFromRevision_DeliversOnlyThatKeyInOrder()
    {
        var (store, s) = await OpenAsync(agent: "writer");
        var from = await store.GetRevisionAsync(Ct) + 1;
        await s.PutAsync("acct/1", N(1), cancellationToken: Ct);
        await s.PutAsync("acct/10", N(1), cancellationToken: Ct);
        await s.PutAsync("acct/1/sub", N(1), cancellationToken: Ct);
        await s.PatchAsync("acct/1", JsonPatch.Create().Increment("/n"), cancellationToken: Ct);
        var del = await s.DeleteAsync("acct/1", cancellationToken: Ct);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        await using var watch = Watch(store, new WatchRequest { Key = "acct/1", FromRevision = from }, cts.Token);

        var events = await TakeAsync(watch, 3);

        Assert.Equal(["Put acct/1 v1", "Put acct/1 v2", "Delete acct/1 v3"], events.Select(e => $"{e.Kind} {e.Key} v{e.Record.Version}"));
        Assert.Equal(Ns, events[0].Namespace);
        Assert.Equal(2, NOf(events[1].Record));
        Assert.True(events[2].Record.IsDeleted);
        Assert.Equal(del.Revision, events[2].Revision);
        Assert.All(events, e => Assert.Equal("writer", e.Record.Writer));

        // Nothing else was queued for this key: the next event is the next change of acct/1.
        await s.PutAsync("acct/10", N(2), cancellationToken: Ct);
        var next = await s.PutAsync("acct/1", N(9), cancellationToken: Ct);
        var live = await TakeAsync(watch, 1);
        Assert.Equal(next.Revision, live[0].Revision);
        cts.Cancel();
    }

    [Fact]
    public async Task Watch_PrefixFromRevision_BacklogThenLiveWithoutGapsOrDuplicates()
    {
        var (store, s) = await OpenAsync();
        var from = await store.GetRevisionAsync(Ct) + 1;
        var expected = new List<string>();
        void Expect(WriteResult w, ChangeKind kind) => expected.Add($"{kind} {w.Key} v{w.Version} r{w.Revision}");

        Expect(await s.PutAsync("jobs/a", N(1), cancellationToken: Ct), ChangeKind.Put);
        await s.PutAsync("other/x", N(1), cancellationToken: Ct);
        Expect(await s.PutAsync("jobs/b", N(1), cancellationToken: Ct), ChangeKind.Put);
        Expect(await s.DeleteAsync("jobs/a", cancellationToken: Ct), ChangeKind.Delete);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        await using var watch = Watch(store, new WatchRequest { Prefix = "jobs/", FromRevision = from }, cts.Token);
        var backlog = await TakeAsync(watch, 3);

        Expect(await s.PatchAsync("jobs/b", JsonPatch.Create().Increment("/n"), cancellationToken: Ct), ChangeKind.Put);
        await s.PutAsync("jobsx", N(1), cancellationToken: Ct);
        Expect(await s.PutAsync("jobs/c", N(1), cancellationToken: Ct), ChangeKind.Put);
        var live = await TakeAsync(watch, 2);

        Assert.Equal(expected, backlog.Concat(live).Select(Describe));
        cts.Cancel();
    }

    [Fact]
    public async Task Watch_FromZero_DeliversOnlyLiveChanges()
    {
        var (store, s) = await OpenAsync();
        await s.PutAsync("k", N(1), cancellationToken: Ct);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        await using var watch = Watch(store, new WatchRequest { Prefix = "" }, cts.Token);
        var first = watch.MoveNextAsync();

        var w = await s.PutAsync("k", N(2), cancellationToken: Ct);

        Assert.True(await first);
        Assert.Equal(w.Revision, watch.Current.Revision);
        Assert.Equal(2, NOf(watch.Current.Record));
        cts.Cancel();
    }

    [Fact]
    public async Task Watch_FromFutureRevision_SkipsEarlierChanges()
    {
        var (store, s) = await OpenAsync();
        var current = await store.GetRevisionAsync(Ct);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        await using var watch = Watch(store, new WatchRequest { Prefix = "", FromRevision = current + 3 }, cts.Token);
        var pending = watch.MoveNextAsync();

        await s.PutAsync("a", N(1), cancellationToken: Ct);
        await s.PutAsync("b", N(1), cancellationToken: Ct);
        var third = await s.PutAsync("c", N(1), cancellationToken: Ct);

        // "Deliver every change with revision ≥ FromRevision": the first two are before it.
        Assert.True(await pending);
        Assert.Equal(current + 3, third.Revision);
        Assert.Equal(third.Revision, watch.Current.Revision);
        cts.Cancel();
    }

    [Fact]
    public async Task Watch_TransactionChanges_ShareOneRevisionInOperationOrder()
    {
        var (store, s) = await OpenAsync();
        var from = await store.GetRevisionAsync(Ct) + 1;
        var txn = await s.TransactAsync(new TxnRequest { Then = [TxnOp.Put("t/b", N(1)), TxnOp.Put("t/a", N(1)), TxnOp.Put("u/x", N(1))] }, cancellationToken: Ct);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        await using var watch = Watch(store, new WatchRequest { Prefix = "t/", FromRevision = from }, cts.Token);

        var events = await TakeAsync(watch, 2);

        Assert.Equal(["t/b", "t/a"], events.Select(e => e.Key));
        Assert.All(events, e => Assert.Equal(txn.Revision, e.Revision));
        cts.Cancel();
    }

    [Fact]
    public async Task Watch_OtherNamespaces_AreNotDelivered()
    {
        var store = await OpenStoreAsync();
        var mine = Session(store, "a", Ns);
        var theirs = Session(store, "b", "elsewhere");
        var from = await store.GetRevisionAsync(Ct) + 1;
        await theirs.PutAsync("k", N(1), cancellationToken: Ct);
        var w = await mine.PutAsync("k", N(2), cancellationToken: Ct);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        await using var watch = Watch(store, new WatchRequest { Key = "k", FromRevision = from }, cts.Token);

        var events = await TakeAsync(watch, 1);

        Assert.Equal(w.Revision, events[0].Revision);
        Assert.Equal(Ns, events[0].Namespace);
        cts.Cancel();
    }

    [Fact]
    public async Task Watch_Cancelled_EndsTheStream()
    {
        var (store, s) = await OpenAsync();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var received = new List<ChangeEvent>();
        var from = await store.GetRevisionAsync(Ct) + 1;
        var firstSeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var consumer = Task.Run(async () =>
        {
            await foreach (var e in store.WatchAsync(Ns, new WatchRequest { FromRevision = from }, cts.Token))
            {
                received.Add(e);
                firstSeen.TrySetResult();
            }
        }, Ct);
        await s.PutAsync("k", N(1), cancellationToken: Ct);
        await firstSeen.Task.WaitAsync(Ct);

        await cts.CancelAsync();

        // Ending with OperationCanceledException or by completing are both an end of the stream.
        try { await consumer.WaitAsync(Ct); }
        catch (OperationCanceledException) when (cts.IsCancellationRequested) { }
        Assert.Single(received);
        Assert.True((await s.PutAsync("k", N(2), cancellationToken: Ct)).IsApplied);
    }

    [Fact]
    public async Task Watch_ManyWatchersOnOneKey_EachSeesEveryChangeOnce()
    {
        var (store, s) = await OpenAsync();
        var from = await store.GetRevisionAsync(Ct) + 1;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var watches = Enumerable.Range(0, 5).Select(_ => Watch(store, new WatchRequest { Key = "hot", FromRevision = from }, cts.Token)).ToList();
        var revisions = new List<long>();
        for (var i = 0; i < 20; i++) revisions.Add((await s.PatchAsync("hot", JsonPatch.Create().Increment("/n"), cancellationToken: Ct)).Revision);

        foreach (var watch in watches)
        {
            Assert.Equal(revisions, (await TakeAsync(watch, 20)).Select(e => e.Revision));
            await using (watch) { }
        }
        cts.Cancel();
    }

    [Fact]
    public async Task Watch_FromCompactedRevision_ThrowsRevisionCompacted()
    {
        RequireRetention();
        var (store, s) = await OpenAsync(new StoreFixtureOptions { RetainedRevisions = 4 });
        // Write until the history behind revision 1 is gone: backends trim the change history lazily (the engine in
        // chunks of about a thousand revisions), so write in rounds rather than guess one backend's threshold.
        RevisionCompactedException? e = null;
        for (var round = 0; round < 40 && e is null; round++)
        {
            await Parallel.ForEachAsync(Enumerable.Range(round * 100, 100), new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = Ct },
                async (i, ct) => await s.PutAsync($"k/{i % 50}", N(i), cancellationToken: ct));
            try
            {
                await FirstEventAsync(store, new WatchRequest { FromRevision = 1 });
            }
            catch (RevisionCompactedException compacted)
            {
                e = compacted;
            }
        }

        Assert.True(e is not null, "watching from revision 1 still worked after 4000 revisions with RetainedRevisions = 4");
        Assert.Equal(1, e.Requested);
        Assert.True(e.CompactedRevision >= 1);
        // "Revisions up to and including CompactedRevision are compacted."
        await Assert.ThrowsAsync<RevisionCompactedException>(async () => await FirstEventAsync(store, new WatchRequest { FromRevision = e.CompactedRevision }));
        // Resuming just after the compacted point works.
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        await using var resumed = Watch(store, new WatchRequest { FromRevision = e.CompactedRevision + 1 }, cts.Token);
        var first = await TakeAsync(resumed, 1);
        Assert.Equal(e.CompactedRevision + 1, first[0].Revision);
        cts.Cancel();
    }
}
