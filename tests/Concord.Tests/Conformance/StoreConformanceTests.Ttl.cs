using Microsoft.Extensions.Time.Testing;

namespace Concord.Tests.Conformance;

/// <summary>Time to live, under a fake clock.</summary>
public abstract partial class StoreConformanceTests
{
    private async Task<(IConcordStore Store, ConcordSession Session, FakeTimeProvider Time)> OpenWithClockAsync(TimeSpan? sweep = null)
    {
        RequireFakeTime();
        var time = new FakeTimeProvider(Epoch);
        var (store, s) = await OpenAsync(new StoreFixtureOptions { TimeProvider = time, ExpirySweepInterval = sweep ?? TimeSpan.FromSeconds(1) });
        return (store, s, time);
    }

    [Fact]
    public async Task Ttl_RecordCarriesItsExpiryAndIsReadableUntilThen()
    {
        var (_, s, time) = await OpenWithClockAsync();
        var w = await s.PutAsync("session/1", N(1), ttl: TimeSpan.FromSeconds(30), cancellationToken: Ct);

        Assert.Equal(Epoch + TimeSpan.FromSeconds(30), w.Record!.ExpiresAt);
        time.Advance(TimeSpan.FromSeconds(29));
        var r = await s.GetAsync("session/1", Ct);
        Assert.Equal(1, NOf(r));
        Assert.Equal(Epoch + TimeSpan.FromSeconds(30), r!.ExpiresAt);
    }

    [Fact]
    public async Task Ttl_ExpiredBeforeTheSweeperRan_ReadsAsAbsentEverywhere()
    {
        var (_, s, time) = await OpenWithClockAsync(sweep: TimeSpan.FromHours(1));
        await s.PutAsync("lease/a", N(1), cancellationToken: Ct);
        var w = await s.PutAsync("lease/a", N(2), ttl: TimeSpan.FromSeconds(10), cancellationToken: Ct);
        await s.PutAsync("lease/b", N(1), cancellationToken: Ct);

        time.Advance(TimeSpan.FromSeconds(11));

        Assert.Null(await s.GetAsync("lease/a", Ct));
        Assert.Equal(["lease/b"], (await s.ListAsync("lease/", cancellationToken: Ct)).Records.Select(r => r.Key));
        Assert.True((await s.TransactAsync(new TxnRequest { Compares = [TxnCompare.Absent("lease/a")] }, cancellationToken: Ct)).Succeeded);
        Assert.Equal(ConflictKind.NotFound, (await s.PutAsync("lease/a", N(3), Expect.Exists, cancellationToken: Ct)).Conflict);
        var recreated = await s.PutAsync("lease/a", N(3), Expect.Absent, cancellationToken: Ct);
        Assert.True(recreated.IsApplied);
        Assert.True(recreated.Version > w.Version);
        Assert.Equal(3, NOf(await s.GetAsync("lease/a", Ct)));
    }

    [Fact]
    public async Task Ttl_Sweeper_WritesAnExpireChangeVisibleToWatchers()
    {
        var (store, s, time) = await OpenWithClockAsync();
        var w = await s.PutAsync("presence/agent-7", N(1), ttl: TimeSpan.FromSeconds(5), cancellationToken: Ct);
        await s.PutAsync("presence/agent-8", N(1), cancellationToken: Ct);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        await using var watch = Watch(store, new WatchRequest { Prefix = "presence/", FromRevision = w.Revision }, cts.Token);
        var created = await TakeAsync(watch, 2);

        time.Advance(TimeSpan.FromSeconds(6));
        var expired = (await TakeAsync(watch, 1))[0];

        Assert.Equal(ChangeKind.Expire, expired.Kind);
        Assert.Equal("presence/agent-7", expired.Key);
        Assert.True(expired.Record.IsDeleted);
        Assert.Equal(w.Version + 1, expired.Record.Version);
        Assert.True(expired.Revision > created[^1].Revision);
        Assert.Null(await s.GetAsync("presence/agent-7", Ct));
        Assert.True(await store.GetRevisionAsync(Ct) >= expired.Revision);
        Assert.Null(await s.GetAsync("presence/agent-7", expired.Revision, Ct));
        // The tombstone keeps version continuity.
        Assert.Equal(w.Version + 2, (await s.PutAsync("presence/agent-7", N(2), Expect.Absent, cancellationToken: Ct)).Version);
    }

    [Fact]
    public async Task Ttl_OverwriteWithoutTtl_ClearsTheExpiry()
    {
        var (_, s, time) = await OpenWithClockAsync();
        await s.PutAsync("k", N(1), ttl: TimeSpan.FromSeconds(5), cancellationToken: Ct);
        var w = await s.PutAsync("k", N(2), Expect.Version(1), cancellationToken: Ct);

        time.Advance(TimeSpan.FromSeconds(10));

        Assert.Null(w.Record!.ExpiresAt);
        Assert.Equal(2, NOf(await s.GetAsync("k", Ct)));
    }

    [Fact]
    public async Task Ttl_PatchKeepsTheExistingExpiry()
    {
        var (_, s, time) = await OpenWithClockAsync();
        await s.PutAsync("k", N(1), ttl: TimeSpan.FromSeconds(5), cancellationToken: Ct);
        var p = await s.PatchAsync("k", JsonPatch.Create().Increment("/n"), cancellationToken: Ct);

        Assert.Equal(Epoch + TimeSpan.FromSeconds(5), p.Record!.ExpiresAt);
        time.Advance(TimeSpan.FromSeconds(6));
        Assert.Null(await s.GetAsync("k", Ct));
    }

    [Fact]
    public async Task Ttl_RenewedBeforeExpiry_StaysAlive()
    {
        var (_, s, time) = await OpenWithClockAsync();
        var w = await s.PutAsync("lease", N(1), ttl: TimeSpan.FromSeconds(10), cancellationToken: Ct);
        time.Advance(TimeSpan.FromSeconds(8));
        await s.PutAsync("lease", N(1), Expect.Version(w.Version), ttl: TimeSpan.FromSeconds(10), cancellationToken: Ct);

        time.Advance(TimeSpan.FromSeconds(8));

        Assert.NotNull(await s.GetAsync("lease", Ct));
        time.Advance(TimeSpan.FromSeconds(3));
        Assert.Null(await s.GetAsync("lease", Ct));
    }
}
