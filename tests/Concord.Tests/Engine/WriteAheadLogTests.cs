using Concord.Engine;

namespace Concord.Tests.Engine;

public sealed class WriteAheadLogTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task WaitDurableAsync_WhileDurableRevisionIsBeingPublished_CompletesOnlyAfterPublication()
    {
        // The engine answers a conflict or an idempotent replay with WaitDurableAsync(lastRevision): the caller may
        // then read what the answer showed. So the wait must not complete before onDurable made the revision visible.
        using var dir = new TempDataDirectory();
        WriteAheadLog? log = null;
        var completedDuringPublication = new List<bool>();
        log = WriteAheadLog.Open(dir.Path, 1, revision =>
        {
            // Runs on the flusher after the fsync, before readers may see 'revision'.
            var wait = log!.WaitDurableAsync(revision);
            completedDuringPublication.Add(wait.IsCompleted);
        });
        await using (log)
        {
            for (var revision = 1; revision <= 20; revision++)
            {
                await log.Append(revision, "{}"u8).WaitAsync(Ct);
                Assert.True(log.WaitDurableAsync(revision).IsCompletedSuccessfully);
            }
        }
        Assert.NotEmpty(completedDuringPublication);
        Assert.DoesNotContain(true, completedDuringPublication);
    }

    [Fact]
    public async Task Append_EveryAcknowledgedFrame_IsOnDiskInOrder()
    {
        using var dir = new TempDataDirectory();
        var durable = new List<long>();
        var log = WriteAheadLog.Open(dir.Path, 1, r => { lock (durable) durable.Add(r); });
        await using (log)
        {
            var waits = new List<Task>();
            for (var revision = 1; revision <= 100; revision++) waits.Add(log.Append(revision, System.Text.Encoding.UTF8.GetBytes($$"""{"rev":{{revision}}}""")));
            await Task.WhenAll(waits).WaitAsync(Ct);
            var frames = DiskFrames.Read(dir.Segments().Single());
            Assert.Equal(100, frames.Count);
        }
        Assert.Equal(durable.Order(), durable); // onDurable is called in revision order
        Assert.Equal(100, durable[^1]);
    }
}
