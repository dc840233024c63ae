using System.Text.Json;
using Microsoft.Extensions.Time.Testing;

namespace Concord.Tests.Conformance;

/// <summary>Reads, whole-value writes, expectations, strict mode, deletes and versions.</summary>
public abstract partial class StoreConformanceTests
{
    [Fact]
    public async Task Get_AbsentKey_ReturnsNull()
    {
        var (_, s) = await OpenAsync();
        Assert.Null(await s.GetAsync("never/written", Ct));
    }

    [Fact]
    public async Task Put_NewKey_CreatesVersion1WithRecordFields()
    {
        var (store, s) = await OpenAsync(agent: "fees");
        var before = await store.GetRevisionAsync(Ct);

        var w = await s.PutAsync("acct/1", J("""{"fees":1}"""), Expect.Absent, cancellationToken: Ct);

        Assert.True(w.IsApplied);
        Assert.Equal(ConflictKind.None, w.Conflict);
        Assert.False(w.Replayed);
        Assert.Equal("acct/1", w.Key);
        Assert.Equal(1, w.Version);
        Assert.Equal(before + 1, w.Revision);
        Assert.Equal(w.Revision, await store.GetRevisionAsync(Ct));
        var r = w.Record!;
        Assert.Equal("acct/1", r.Key);
        Assert.Equal(1, r.Version);
        Assert.Equal(w.Revision, r.Revision);
        Assert.Equal(w.Revision, r.CreateRevision);
        Assert.Equal("fees", r.Writer);
        Assert.False(r.IsDeleted);
        Assert.Null(r.ExpiresAt);
        AssertJson("""{"fees":1}""", r.Value);

        var g = await s.GetAsync("acct/1", Ct);
        Assert.NotNull(g);
        Assert.Equal(1, g.Version);
        Assert.Equal(w.Revision, g.Revision);
        Assert.Equal("fees", g.Writer);
        AssertJson("""{"fees":1}""", g.Value);
    }

    [Theory]
    [InlineData("null")]
    [InlineData("42")]
    [InlineData("\"text\"")]
    [InlineData("[1,\"two\",{\"three\":3}]")]
    [InlineData("true")]
    public async Task Put_AnyJsonValue_RoundTrips(string json)
    {
        var (_, s) = await OpenAsync();
        Assert.True((await s.PutAsync("v", J(json), cancellationToken: Ct)).IsApplied);
        AssertJson(json, (await s.GetAsync("v", Ct))!.Value);
    }

    [Fact]
    public async Task Put_ExpectAny_OverwritesAndBumpsVersion()
    {
        var (_, s) = await OpenAsync();
        var first = await s.PutAsync("k", N(1), cancellationToken: Ct);
        var second = await s.PutAsync("k", N(2), Expect.Any, cancellationToken: Ct);

        Assert.True(second.IsApplied);
        Assert.Equal(2, second.Version);
        Assert.Equal(first.Revision + 1, second.Revision);
        Assert.Equal(first.Record!.CreateRevision, second.Record!.CreateRevision);
        Assert.Equal(2, NOf(await s.GetAsync("k", Ct)));
    }

    [Fact]
    public async Task Put_ExpectAbsent_KeyExists_ConflictAlreadyExistsCarryingCurrentRecord()
    {
        var (store, s) = await OpenAsync();
        await s.PutAsync("k", N(1), cancellationToken: Ct);
        var revision = await store.GetRevisionAsync(Ct);

        var c = await s.PutAsync("k", N(2), Expect.Absent, cancellationToken: Ct);

        Assert.False(c.IsApplied);
        Assert.Equal(ConflictKind.AlreadyExists, c.Conflict);
        Assert.Equal(1, c.Version);
        Assert.Equal(1, NOf(c.Record));
        Assert.Equal(revision, c.Revision);
        Assert.False(string.IsNullOrWhiteSpace(c.Message));
        Assert.Equal(revision, await store.GetRevisionAsync(Ct));
        Assert.Equal(1, NOf(await s.GetAsync("k", Ct)));
    }

    [Fact]
    public async Task Put_ExpectExists_KeyAbsent_ConflictNotFoundWithNullRecord()
    {
        var (store, s) = await OpenAsync();
        var c = await s.PutAsync("k", N(1), Expect.Exists, cancellationToken: Ct);

        Assert.Equal(ConflictKind.NotFound, c.Conflict);
        Assert.Null(c.Record);
        Assert.Equal(0, c.Version);
        Assert.Null(await s.GetAsync("k", Ct));
        Assert.Equal(0, await store.GetRevisionAsync(Ct));
    }

    [Fact]
    public async Task Put_ExpectExists_KeyPresent_Applies()
    {
        var (_, s) = await OpenAsync();
        await s.PutAsync("k", N(1), cancellationToken: Ct);
        var w = await s.PutAsync("k", N(2), Expect.Exists, cancellationToken: Ct);
        Assert.True(w.IsApplied);
        Assert.Equal(2, w.Version);
    }

    [Fact]
    public async Task Put_ExpectVersion_Matching_Applies()
    {
        var (_, s) = await OpenAsync();
        await s.PutAsync("k", N(1), cancellationToken: Ct);
        await s.PutAsync("k", N(2), cancellationToken: Ct);
        var w = await s.PutAsync("k", N(3), Expect.Version(2), cancellationToken: Ct);
        Assert.True(w.IsApplied);
        Assert.Equal(3, w.Version);
        Assert.Equal(3, NOf(await s.GetAsync("k", Ct)));
    }

    [Fact]
    public async Task Put_ExpectVersion_Stale_ConflictVersionMismatchCarryingCurrentRecord()
    {
        var (store, s) = await OpenAsync();
        var other = Session(store, "other-agent");
        await s.PutAsync("k", N(1), cancellationToken: Ct);
        await other.PutAsync("k", N(2), Expect.Version(1), cancellationToken: Ct);
        var revision = await store.GetRevisionAsync(Ct);

        // The classic lost update: s read version 1, other wrote version 2 meanwhile.
        var c = await s.PutAsync("k", N(10), Expect.Version(1), cancellationToken: Ct);

        Assert.Equal(ConflictKind.VersionMismatch, c.Conflict);
        Assert.Equal(2, c.Version);
        Assert.Equal(2, NOf(c.Record));
        Assert.Equal("other-agent", c.Record!.Writer);
        Assert.Equal(revision, c.Revision);
        Assert.Equal(revision, await store.GetRevisionAsync(Ct));
        Assert.Equal(2, NOf(await s.GetAsync("k", Ct)));
    }

    [Fact]
    public async Task Put_ExpectVersionZero_CreatesWhenAbsentAndConflictsWhenPresent()
    {
        var (_, s) = await OpenAsync();
        Assert.True((await s.PutAsync("k", N(1), Expect.Version(0), cancellationToken: Ct)).IsApplied);
        var c = await s.PutAsync("k", N(2), Expect.Version(0), cancellationToken: Ct);
        Assert.Equal(ConflictKind.VersionMismatch, c.Conflict);
        Assert.Equal(1, c.Version);
    }

    [Fact]
    public async Task Put_ExpectVersion_AbsentKey_ConflictWithNullRecord()
    {
        var (_, s) = await OpenAsync();
        var c = await s.PutAsync("k", N(1), Expect.Version(3), cancellationToken: Ct);
        Assert.Equal(ConflictKind.VersionMismatch, c.Conflict);
        Assert.Null(c.Record);
        Assert.Null(await s.GetAsync("k", Ct));
    }

    [Fact]
    public async Task Writes_VersionsArePerKeyAndRevisionsGlobal()
    {
        var (store, s) = await OpenAsync();
        var start = await store.GetRevisionAsync(Ct);
        var a1 = await s.PutAsync("a", N(1), cancellationToken: Ct);
        var b1 = await s.PutAsync("b", N(1), cancellationToken: Ct);
        var a2 = await s.PutAsync("a", N(2), cancellationToken: Ct);

        Assert.Equal([1L, 1L, 2L], new[] { a1.Version, b1.Version, a2.Version });
        Assert.Equal([start + 1, start + 2, start + 3], new[] { a1.Revision, b1.Revision, a2.Revision });
        Assert.Equal(a1.Revision, a2.Record!.CreateRevision);
    }

    [Fact]
    public async Task Delete_ThenRecreate_VersionsContinueThroughTombstone()
    {
        var (store, s) = await OpenAsync(agent: "ops");
        await s.PutAsync("k", N(1), cancellationToken: Ct);
        await s.PutAsync("k", N(2), cancellationToken: Ct);
        var v3 = await s.PutAsync("k", N(3), cancellationToken: Ct);

        var del = await s.DeleteAsync("k", Expect.Version(3), cancellationToken: Ct);

        Assert.True(del.IsApplied);
        Assert.Equal(4, del.Version);
        Assert.True(del.Record!.IsDeleted);
        Assert.Equal(JsonValueKind.Undefined, del.Record.Value.ValueKind);
        Assert.Equal("ops", del.Record.Writer);
        Assert.Equal(v3.Revision + 1, del.Revision);
        Assert.Equal(del.Revision, await store.GetRevisionAsync(Ct));
        Assert.Null(await s.GetAsync("k", Ct));

        // A deleted key is absent: create-only and version-0 writes succeed, and the version continues.
        var v5 = await s.PutAsync("k", N(5), Expect.Absent, cancellationToken: Ct);
        Assert.True(v5.IsApplied);
        Assert.Equal(5, v5.Version);
        Assert.Equal(v5.Revision, v5.Record!.CreateRevision);
        Assert.Equal(5, NOf(await s.GetAsync("k", Ct)));

        // History is still readable at the old revisions.
        Assert.Equal(3, NOf(await s.GetAsync("k", v3.Revision, Ct)));
        Assert.Null(await s.GetAsync("k", del.Revision, Ct));
    }

    [Fact]
    public async Task Put_AfterDelete_ExpectTombstoneVersion_ConflictsBecauseAbsentIsVersion0()
    {
        var (_, s) = await OpenAsync();
        await s.PutAsync("k", N(1), cancellationToken: Ct);
        var del = await s.DeleteAsync("k", cancellationToken: Ct);

        var c = await s.PutAsync("k", N(2), Expect.Version(del.Version), cancellationToken: Ct);
        Assert.Equal(ConflictKind.VersionMismatch, c.Conflict);
        Assert.Null(c.Record);

        var w = await s.PutAsync("k", N(2), Expect.Version(0), cancellationToken: Ct);
        Assert.True(w.IsApplied);
        Assert.Equal(3, w.Version);
    }

    [Fact]
    public async Task Delete_ExpectVersion_Stale_ConflictAndKeyKept()
    {
        var (store, s) = await OpenAsync();
        await s.PutAsync("k", N(1), cancellationToken: Ct);
        await s.PutAsync("k", N(2), cancellationToken: Ct);
        var revision = await store.GetRevisionAsync(Ct);

        var c = await s.DeleteAsync("k", Expect.Version(1), cancellationToken: Ct);

        Assert.Equal(ConflictKind.VersionMismatch, c.Conflict);
        Assert.Equal(2, NOf(c.Record));
        Assert.Equal(revision, await store.GetRevisionAsync(Ct));
        Assert.Equal(2, NOf(await s.GetAsync("k", Ct)));
    }

    [Fact]
    public async Task Delete_AbsentOrDeletedKey_ConflictNotFound()
    {
        var (store, s) = await OpenAsync();
        Assert.Equal(ConflictKind.NotFound, (await s.DeleteAsync("never", cancellationToken: Ct)).Conflict);

        await s.PutAsync("k", N(1), cancellationToken: Ct);
        await s.DeleteAsync("k", cancellationToken: Ct);
        var revision = await store.GetRevisionAsync(Ct);
        var again = await s.DeleteAsync("k", cancellationToken: Ct);
        Assert.Equal(ConflictKind.NotFound, again.Conflict);
        Assert.Null(again.Record);
        Assert.Equal(revision, await store.GetRevisionAsync(Ct));
    }

    [Fact]
    public async Task GetAtRevision_ReturnsTheVersionCurrentAtThatRevision()
    {
        var (store, s) = await OpenAsync();
        var empty = await store.GetRevisionAsync(Ct);
        var w1 = await s.PutAsync("k", N(1), cancellationToken: Ct);
        var other = await s.PutAsync("other", N(0), cancellationToken: Ct);
        var w2 = await s.PutAsync("k", N(2), cancellationToken: Ct);
        var del = await s.DeleteAsync("k", cancellationToken: Ct);
        var w4 = await s.PutAsync("k", N(4), cancellationToken: Ct);

        if (empty > 0) Assert.Null(await s.GetAsync("k", empty, Ct));
        Assert.Equal(1, NOf(await s.GetAsync("k", w1.Revision, Ct)));
        Assert.Equal(1, NOf(await s.GetAsync("k", other.Revision, Ct)));
        var atW2 = await s.GetAsync("k", w2.Revision, Ct);
        Assert.Equal(2, NOf(atW2));
        Assert.Equal(2, atW2!.Version);
        Assert.Equal(w2.Revision, atW2.Revision);
        Assert.Null(await s.GetAsync("k", del.Revision, Ct));
        Assert.Equal(4, NOf(await s.GetAsync("k", w4.Revision, Ct)));
        Assert.Null(await s.GetAsync("other", w1.Revision, Ct));
    }

    [Fact]
    public async Task GetAtRevision_Future_ThrowsUnknownRevision()
    {
        var (store, s) = await OpenAsync();
        await s.PutAsync("k", N(1), cancellationToken: Ct);
        var current = await store.GetRevisionAsync(Ct);

        var e = await Assert.ThrowsAsync<UnknownRevisionException>(async () => await s.GetAsync("k", current + 5, Ct));

        Assert.Equal(current + 5, e.Requested);
        Assert.Equal(current, e.Current);
        Assert.Contains((current + 5).ToString(System.Globalization.CultureInfo.InvariantCulture), e.Message, StringComparison.Ordinal);
        Assert.Equal("unknown-revision", e.Code);
        Assert.False(e.IsTransient);
    }

    [Fact]
    public async Task GetAtRevision_Compacted_ThrowsRevisionCompactedNamingTheOldestReadable()
    {
        RequireRetention();
        var (store, s) = await OpenAsync(new StoreFixtureOptions { RetainedRevisions = 3 });
        var revisions = new List<long>();
        for (var i = 1; i <= 10; i++) revisions.Add((await s.PutAsync("k", N(i), cancellationToken: Ct)).Revision);

        var e = await Assert.ThrowsAsync<RevisionCompactedException>(async () => await s.GetAsync("k", revisions[0], Ct));

        Assert.Equal(revisions[0], e.Requested);
        Assert.Contains(revisions[0].ToString(System.Globalization.CultureInfo.InvariantCulture), e.Message, StringComparison.Ordinal);
        Assert.Equal("revision-compacted", e.Code);
        // "Revisions up to and including CompactedRevision are compacted": it must fail, the next one must be readable.
        Assert.InRange(e.CompactedRevision, revisions[0], revisions[^1] - 1);
        await Assert.ThrowsAsync<RevisionCompactedException>(async () => await s.GetAsync("k", e.CompactedRevision, Ct));
        var oldest = e.CompactedRevision + 1;
        Assert.Contains($"oldest readable revision is {oldest}", e.Message, StringComparison.Ordinal);
        var record = await s.GetAsync("k", oldest, Ct);
        Assert.Equal(revisions.FindIndex(r => r == oldest) + 1, NOf(record));
        // The last retained revisions are readable.
        Assert.Equal(10, NOf(await s.GetAsync("k", revisions[^1], Ct)));
        Assert.Equal(9, NOf(await s.GetAsync("k", revisions[^2], Ct)));
        _ = store;
    }

    [Fact]
    public async Task StrictMode_BlindOverwrite_RefusedWithCurrentRecord()
    {
        var (store, s) = await OpenAsync(new StoreFixtureOptions { StrictMode = true });
        Assert.True((await s.PutAsync("acct/42", N(1), cancellationToken: Ct)).IsApplied); // blind create of an absent key is fine
        var revision = await store.GetRevisionAsync(Ct);

        var c = await s.PutAsync("acct/42", N(2), Expect.Any, cancellationToken: Ct);

        Assert.Equal(ConflictKind.BlindWriteRefused, c.Conflict);
        Assert.Equal(1, c.Version);
        Assert.Equal(1, NOf(c.Record));
        Assert.Contains("acct/42", c.Message, StringComparison.Ordinal);
        Assert.Equal(revision, await store.GetRevisionAsync(Ct));
        Assert.Equal(1, NOf(await s.GetAsync("acct/42", Ct)));
    }

    [Fact]
    public async Task StrictMode_BlindDelete_RefusedWithCurrentRecord()
    {
        var (store, s) = await OpenAsync(new StoreFixtureOptions { StrictMode = true });
        await s.PutAsync("k", N(1), cancellationToken: Ct);
        var revision = await store.GetRevisionAsync(Ct);

        var c = await s.DeleteAsync("k", cancellationToken: Ct);

        Assert.Equal(ConflictKind.BlindWriteRefused, c.Conflict);
        Assert.Equal(1, NOf(c.Record));
        Assert.Equal(revision, await store.GetRevisionAsync(Ct));
        Assert.NotNull(await s.GetAsync("k", Ct));
    }

    [Fact]
    public async Task StrictMode_WritesThatStateAnExpectation_Apply()
    {
        var (_, s) = await OpenAsync(new StoreFixtureOptions { StrictMode = true });
        Assert.True((await s.PutAsync("k", N(1), Expect.Absent, cancellationToken: Ct)).IsApplied);
        Assert.True((await s.PutAsync("k", N(2), Expect.Version(1), cancellationToken: Ct)).IsApplied);
        Assert.True((await s.PatchAsync("k", JsonPatch.Create().Increment("/n"), cancellationToken: Ct)).IsApplied);
        Assert.Equal(3, NOf(await s.GetAsync("k", Ct)));
        Assert.True((await s.DeleteAsync("k", Expect.Version(3), cancellationToken: Ct)).IsApplied);
        // After a delete the key is absent again, so a blind write is a create.
        Assert.True((await s.PutAsync("k", N(9), cancellationToken: Ct)).IsApplied);
    }

    [Fact]
    public async Task NonStrictMode_BlindOverwriteAndDelete_Apply()
    {
        var (_, s) = await OpenAsync(new StoreFixtureOptions { StrictMode = false });
        await s.PutAsync("k", N(1), cancellationToken: Ct);
        Assert.True((await s.PutAsync("k", N(2), cancellationToken: Ct)).IsApplied);
        Assert.True((await s.DeleteAsync("k", cancellationToken: Ct)).IsApplied);
    }

    [Fact]
    public async Task Writes_RecordTheSessionAgentAsWriter()
    {
        var store = await OpenStoreAsync();
        var fees = Session(store, "fees");
        var compliance = Session(store, "compliance");

        var put = await fees.PutAsync("acct/1", J("""{"fees":0}"""), cancellationToken: Ct);
        var patch = await compliance.PatchAsync("acct/1", JsonPatch.Create().Add("/kyc", Node("true")), cancellationToken: Ct);
        var txn = await fees.TransactAsync(new TxnRequest { Then = [TxnOp.Put("acct/2", N(2))] }, cancellationToken: Ct);
        var del = await compliance.DeleteAsync("acct/2", cancellationToken: Ct);
        var anonymous = await store.PutAsync(Ns, "acct/3", N(3), cancellationToken: Ct);

        Assert.Equal("fees", put.Record!.Writer);
        Assert.Equal("compliance", patch.Record!.Writer);
        Assert.Equal("fees", txn.Results[0].Record!.Writer);
        Assert.Equal("compliance", del.Record!.Writer);
        Assert.Null(anonymous.Record!.Writer);
        Assert.Equal("compliance", (await fees.GetAsync("acct/1", Ct))!.Writer);
        Assert.Equal("fees", (await fees.GetAsync("acct/2", txn.Revision, Ct))!.Writer);
    }

    [Fact]
    public async Task Namespaces_AreIsolated()
    {
        var store = await OpenStoreAsync();
        var a = Session(store, "a", "tenant-a");
        var b = Session(store, "b", "tenant-b");
        await a.PutAsync("k", N(1), cancellationToken: Ct);
        await a.PutAsync("k", N(2), cancellationToken: Ct);

        Assert.Null(await b.GetAsync("k", Ct));
        var wb = await b.PutAsync("k", N(7), Expect.Absent, cancellationToken: Ct);
        Assert.Equal(1, wb.Version);
        Assert.Equal(2, NOf(await a.GetAsync("k", Ct)));
        Assert.Single((await b.ListAsync(cancellationToken: Ct)).Records);
    }

    [Fact]
    public async Task CommittedAt_StrictlyIncreases_EvenWhenTheClockStandsStillOrStepsBack()
    {
        RequireFakeTime();
        var time = new FakeTimeProvider(Epoch);
        var (_, s) = await OpenAsync(new StoreFixtureOptions { TimeProvider = time });

        var first = await s.PutAsync("a", N(1), cancellationToken: Ct);
        var second = await s.PutAsync("b", N(1), cancellationToken: Ct);
        time.AdjustTime(Epoch - TimeSpan.FromMinutes(5));
        var third = await s.PutAsync("c", N(1), cancellationToken: Ct);

        Assert.Equal(Epoch, first.Record!.CommittedAt);
        Assert.True(second.Record!.CommittedAt > first.Record.CommittedAt);
        Assert.True(third.Record!.CommittedAt > second.Record.CommittedAt);
    }

    [Fact]
    public async Task Restart_KeepsRecordsVersionsRevisionsAndTombstones()
    {
        RequireRestart();
        var (store, s) = await OpenAsync();
        await s.PutAsync("a", N(1), cancellationToken: Ct);
        await s.PutAsync("a", N(2), cancellationToken: Ct);
        await s.PutAsync("gone", N(1), cancellationToken: Ct);
        await s.DeleteAsync("gone", cancellationToken: Ct);
        var before = await CaptureAsync(store);
        var revision = await store.GetRevisionAsync(Ct);

        var reopened = await RestartStoreAsync(store);
        var s2 = Session(reopened);

        Assert.Equal(before, await CaptureAsync(reopened));
        Assert.Equal(revision, await reopened.GetRevisionAsync(Ct));
        var recreated = await s2.PutAsync("gone", N(3), Expect.Absent, cancellationToken: Ct);
        Assert.Equal(3, recreated.Version);
        Assert.Equal(revision + 1, recreated.Revision);
    }
}
