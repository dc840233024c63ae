using System.Text.Json;
using Concord.Engine;

namespace Concord.Tests.Engine;

public sealed class KeyEntryTests
{
    private static ConcordRecord Version(long n) =>
        new("k", JsonSerializer.SerializeToElement(n), n, n, 1, null, default, null, false);

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(1000)]
    public void Prepend_ManyVersions_EveryRevisionInTheRetentionWindowStaysReadable(long retained)
    {
        var entry = new KeyEntry("k");
        for (long revision = 1; revision <= 5000; revision++)
        {
            var compact = Math.Max(1, revision - retained + 1);
            entry.Prepend(Version(revision), compact);
            // Trimming may be lazy, but never below the compaction point.
            foreach (var at in new[] { compact, (compact + revision) / 2, revision })
                Assert.Equal(at, entry.At(at)!.Version);
        }
    }

    [Fact]
    public void Prepend_SparseWrites_KeepTheVersionAReaderAtTheCompactionPointSees()
    {
        var entry = new KeyEntry("k");
        entry.Prepend(Version(10), 1);
        entry.Prepend(Version(500), 400);
        entry.Prepend(Version(900), 800);
        entry.Prepend(Version(2000), 1900);

        Assert.Equal(900, entry.At(1900)!.Version);
        Assert.Equal(2000, entry.At(2000)!.Version);
    }
}
