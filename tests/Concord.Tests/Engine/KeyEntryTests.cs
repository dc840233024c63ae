using System.Text.Json;
using Concord.Engine;

namespace Concord.Tests.Engine;

public sealed class KeyEntryTests
{
    private static ConcordRecord Version(long revision) =>
        new("k", JsonDocument.Parse(revision.ToString(System.Globalization.CultureInfo.InvariantCulture)).RootElement.Clone(),
            revision, revision, 1, null, DateTimeOffset.UnixEpoch, null, false);

    [Fact]
    public void Prepend_CompactionAdvances_KeepsExactlyTheVersionsReadersAtOrAfterItNeed()
    {
        var entry = new KeyEntry("k");
        for (var revision = 1L; revision <= 1000; revision++) entry.Prepend(Version(revision), compactRevision: revision - 10);

        // Readers at 990..1000 see their own version; the version a reader at 990 sees is kept, everything older dropped.
        for (var revision = 990L; revision <= 1000; revision++) Assert.Equal(revision, entry.At(revision)!.Revision);
        Assert.Null(entry.At(989));
        Assert.Equal(1000, entry.Latest!.Revision);
    }

    [Fact]
    public void Prepend_CompactionBetweenVersions_KeepsTheVersionVisibleAtTheCompactionPoint()
    {
        var entry = new KeyEntry("k");
        entry.Prepend(Version(10), compactRevision: 0);
        entry.Prepend(Version(20), compactRevision: 0);
        entry.Prepend(Version(30), compactRevision: 25);

        Assert.Equal(20, entry.At(25)!.Revision);
        Assert.Equal(30, entry.At(30)!.Revision);
        Assert.Null(entry.At(15));
    }

    [Fact]
    public void Prepend_CompactionDoesNotMove_KeepsEveryVersion()
    {
        var entry = new KeyEntry("k");
        for (var revision = 1L; revision <= 50; revision++) entry.Prepend(Version(revision), compactRevision: 0);

        for (var revision = 1L; revision <= 50; revision++) Assert.Equal(revision, entry.At(revision)!.Revision);
    }

    [Fact]
    public void Reset_ThenPrepend_TrimsFromTheRecoveredVersion()
    {
        var entry = new KeyEntry("k");
        for (var revision = 1L; revision <= 5; revision++) entry.Prepend(Version(revision), compactRevision: 0);
        entry.Reset(Version(100));
        entry.Prepend(Version(101), compactRevision: 0);
        entry.Prepend(Version(102), compactRevision: 101);

        Assert.Equal(101, entry.At(101)!.Revision);
        Assert.Null(entry.At(100));
        Assert.Null(entry.At(5));
    }

    [Fact]
    public async Task PutAsync_HotKeyPastRetention_SnapshotReadsWorkToTheOldestRetainedRevision()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = ConcordEngine.CreateInMemory(new ConcordEngineOptions { RetainedRevisions = 20 });
        for (var i = 1; i <= 200; i++) await store.PutAsync("t", "hot", JsonDocument.Parse($"{i}").RootElement.Clone(), cancellationToken: ct);

        // Revision i wrote value i; the last 20 revisions (181..200) stay readable.
        for (var revision = 181L; revision <= 200; revision++)
        {
            var record = await store.GetAsync("t", "hot", new ReadOptions { AtRevision = revision }, ct);
            Assert.Equal(revision, record!.Value.GetInt64());
        }
        await Assert.ThrowsAsync<RevisionCompactedException>(async () => await store.GetAsync("t", "hot", new ReadOptions { AtRevision = 100 }, ct));
    }
}
