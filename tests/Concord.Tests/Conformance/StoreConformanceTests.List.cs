namespace Concord.Tests.Conformance;

/// <summary>Prefix scans: order, paging, snapshots.</summary>
public abstract partial class StoreConformanceTests
{
    [Fact]
    public async Task List_Prefix_ReturnsLiveRecordsInOrdinalKeyOrder()
    {
        var (_, s) = await OpenAsync();
        foreach (var key in new[] { "q/b", "q/a/2", "q/A", "q/a", "q/a/10", "qx", "q", "p/z", "q/é", "q/~" })
            await s.PutAsync(key, N(1), cancellationToken: Ct);
        await s.PutAsync("q/deleted", N(1), cancellationToken: Ct);
        await s.DeleteAsync("q/deleted", cancellationToken: Ct);

        var page = await s.ListAsync("q/", cancellationToken: Ct);

        Assert.Equal(["q/A", "q/a", "q/a/10", "q/a/2", "q/b", "q/~", "q/é"], page.Records.Select(r => r.Key));
        Assert.Null(page.NextAfter);
        Assert.All(page.Records, r => Assert.False(r.IsDeleted));
    }

    [Fact]
    public async Task List_EmptyPrefix_ListsTheWholeNamespaceOnly()
    {
        var store = await OpenStoreAsync();
        await Session(store, "a", Ns).PutAsync("x", N(1), cancellationToken: Ct);
        await Session(store, "a", Ns).PutAsync("y/z", N(1), cancellationToken: Ct);
        await Session(store, "a", "other-ns").PutAsync("w", N(1), cancellationToken: Ct);

        var page = await Session(store).ListAsync(cancellationToken: Ct);

        Assert.Equal(["x", "y/z"], page.Records.Select(r => r.Key));
    }

    [Fact]
    public async Task List_Paging_VisitsEveryKeyOnceAcrossPages()
    {
        var (store, s) = await OpenAsync();
        var keys = Enumerable.Range(0, 25).Select(i => $"items/{i:D3}").ToList();
        foreach (var key in keys.AsEnumerable().Reverse()) await s.PutAsync(key, N(1), cancellationToken: Ct);
        await s.PutAsync("items0", N(1), cancellationToken: Ct);

        var seen = new List<string>();
        string? after = null;
        var pages = 0;
        long? revision = null;
        do
        {
            var page = await store.ListAsync(Ns, new ListRequest { Prefix = "items/", After = after, Limit = 10, AtRevision = revision }, Ct);
            revision ??= page.Revision;
            Assert.Equal(revision, page.Revision);
            Assert.True(page.Records.Count <= 10);
            seen.AddRange(page.Records.Select(r => r.Key));
            after = page.NextAfter;
            pages++;
        }
        while (after is not null);

        Assert.Equal(keys, seen);
        Assert.InRange(pages, 3, 4);
    }

    [Fact]
    public async Task List_AtRevision_IsAConsistentSnapshotWhileWritesContinue()
    {
        var (store, s) = await OpenAsync();
        for (var i = 0; i < 6; i++) await s.PutAsync($"s/{i}", N(i), cancellationToken: Ct);

        var first = await store.ListAsync(Ns, new ListRequest { Prefix = "s/", Limit = 3 }, Ct);
        await s.PutAsync("s/00", N(100), cancellationToken: Ct);  // sorts into the first page: must not appear later
        await s.PutAsync("s/4", N(400), cancellationToken: Ct);
        await s.DeleteAsync("s/5", cancellationToken: Ct);
        await s.PutAsync("s/9", N(900), cancellationToken: Ct);
        var second = await store.ListAsync(Ns, new ListRequest { Prefix = "s/", Limit = 3, After = first.NextAfter, AtRevision = first.Revision }, Ct);

        Assert.Equal(["s/0", "s/1", "s/2"], first.Records.Select(r => r.Key));
        Assert.Equal(["s/3", "s/4", "s/5"], second.Records.Select(r => r.Key));
        Assert.Equal(4, NOf(second.Records[1]));
        Assert.Equal(first.Revision, second.Revision);

        var latest = await s.ListAsync("s/", cancellationToken: Ct);
        Assert.Equal(["s/0", "s/00", "s/1", "s/2", "s/3", "s/4", "s/9"], latest.Records.Select(r => r.Key));
    }

    [Fact]
    public async Task List_AtOldRevision_ShowsDeletedKeysAsTheyWereAndHidesLaterCreates()
    {
        var (_, s) = await OpenAsync();
        await s.PutAsync("d/a", N(1), cancellationToken: Ct);
        var r1 = (await s.PutAsync("d/b", N(1), cancellationToken: Ct)).Revision;
        await s.DeleteAsync("d/a", cancellationToken: Ct);
        await s.PutAsync("d/c", N(1), cancellationToken: Ct);
        await s.PutAsync("d/b", N(2), cancellationToken: Ct);

        var page = await s.Store.ListAsync(Ns, new ListRequest { Prefix = "d/", AtRevision = r1 }, Ct);

        Assert.Equal(["d/a", "d/b"], page.Records.Select(r => r.Key));
        Assert.Equal(1, NOf(page.Records[1]));
        Assert.Equal(r1, page.Revision);
    }

    [Fact]
    public async Task List_AfterAKey_StartsStrictlyAfterIt()
    {
        var (_, s) = await OpenAsync();
        foreach (var key in new[] { "a/1", "a/2", "a/3" }) await s.PutAsync(key, N(1), cancellationToken: Ct);

        Assert.Equal(["a/3"], (await s.ListAsync("a/", after: "a/2", cancellationToken: Ct)).Records.Select(r => r.Key));
        Assert.Equal(["a/2", "a/3"], (await s.ListAsync("a/", after: "a/15", cancellationToken: Ct)).Records.Select(r => r.Key));
        Assert.Equal(["a/1", "a/2", "a/3"], (await s.ListAsync("a/", after: "0", cancellationToken: Ct)).Records.Select(r => r.Key));
        Assert.Empty((await s.ListAsync("a/", after: "b", cancellationToken: Ct)).Records);
    }

    [Fact]
    public async Task List_EmptyResult_HasNoContinuation()
    {
        var (_, s) = await OpenAsync();
        var page = await s.ListAsync("nothing/", cancellationToken: Ct);
        Assert.Empty(page.Records);
        Assert.Null(page.NextAfter);
    }
}
