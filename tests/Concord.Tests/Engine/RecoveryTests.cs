using System.Text.Json;
using Concord.Engine;
using Microsoft.Extensions.Time.Testing;

namespace Concord.Tests.Engine;

/// <summary>
/// Deterministic recovery tests: crash traces (torn tails, header-less segments, leftover temp files) are accepted,
/// real damage (sealed segments, snapshots, gaps) is reported as <see cref="CorruptDataException"/>, and what the
/// engine promised (acknowledged writes, idempotency records, TTLs, watch history) survives restarts.
/// </summary>
public sealed class RecoveryTests
{
    private const string Ns = "t";
    private static readonly DateTimeOffset T0 = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static JsonElement J(string json) => JsonDocument.Parse(json).RootElement.Clone();

    private static JsonElement ValueOf(int i) => J($$"""{"i":{{i}}}""");

    /// <summary>Writes k/from..k/(from+count-1), one revision each.</summary>
    private static async Task WriteAsync(ConcordEngine engine, int from, int count)
    {
        for (var i = from; i < from + count; i++)
        {
            var w = await engine.PutAsync(Ns, $"k/{i}", ValueOf(i), new WriteOptions { Expect = Expect.Absent }, Ct);
            Assert.True(w.IsApplied, w.ToString());
        }
    }

    private static async Task AssertKeysAsync(ConcordEngine engine, int from, int count)
    {
        for (var i = from; i < from + count; i++)
        {
            var r = await engine.GetAsync(Ns, $"k/{i}", cancellationToken: Ct);
            Assert.True(r is not null, $"k/{i} is missing");
            Assert.Equal(1, r.Version);
            Assert.True(JsonElement.DeepEquals(ValueOf(i), r.Value), $"k/{i} is {r}");
        }
    }

    /// <summary>A directory with one segment holding revisions 1..count (the newest segment).</summary>
    private static async Task<TempDataDirectory> OneSegmentAsync(int count)
    {
        var dir = new TempDataDirectory();
        await using var engine = await dir.OpenAsync();
        await WriteAsync(engine, 1, count);
        return dir;
    }

    /// <summary>Segments 1.log (1..5), 6.log (6..8), 9.log (9..10): every reopen starts a new segment.</summary>
    private static async Task<TempDataDirectory> ThreeSegmentsAsync()
    {
        var dir = new TempDataDirectory();
        await using (var engine = await dir.OpenAsync()) await WriteAsync(engine, 1, 5);
        await using (var engine = await dir.OpenAsync()) await WriteAsync(engine, 6, 3);
        await using (var engine = await dir.OpenAsync()) await WriteAsync(engine, 9, 2);
        Assert.Equal(3, dir.Segments().Count);
        return dir;
    }

    /// <summary>Puts the log back to a single segment with the given bytes (recovery cut it, OpenAsync started a new one).</summary>
    private static void ResetLog(TempDataDirectory dir, string segment, byte[] bytes)
    {
        foreach (var file in dir.Segments()) File.Delete(file);
        File.WriteAllBytes(segment, bytes);
    }

    // ------------------------------------------------------------------ torn tails

    [Fact]
    public async Task Open_NewestSegmentCutAtEveryByteOfLastFrame_DropsOnlyThatRecord()
    {
        using var dir = await OneSegmentAsync(5);
        var segment = dir.Segments().Single();
        var original = File.ReadAllBytes(segment);
        var last = DiskFrames.Read(original)[^1];
        Assert.Equal(5, last.Revision);

        for (var cut = (int)last.Offset; cut < last.End; cut++)
        {
            ResetLog(dir, segment, original[..cut]);
            await using (var engine = await dir.OpenAsync())
            {
                Assert.Equal(4, await engine.GetRevisionAsync(Ct));
                await AssertKeysAsync(engine, 1, 4);
                Assert.Null(await engine.GetAsync(Ns, "k/5", cancellationToken: Ct));
                // The store goes on at the dropped revision.
                var w = await engine.PutAsync(Ns, "after", J("1"), cancellationToken: Ct);
                Assert.Equal(5, w.Revision);
            }
            // The torn bytes were cut for good, so the old segment is clean when it is no longer the newest.
            Assert.Equal(last.Offset, new FileInfo(segment).Length);
            if ((cut - last.Offset) % 16 != 0 && cut != last.End - 1) continue; // the second restart for a sample of cuts (fsync-bound)
            await using (var engine = await dir.OpenAsync())
            {
                Assert.Equal(5, await engine.GetRevisionAsync(Ct));
                await AssertKeysAsync(engine, 1, 4);
                Assert.NotNull(await engine.GetAsync(Ns, "after", cancellationToken: Ct));
            }
        }
    }

    [Fact]
    public async Task Open_FlippedByteInLastFrameOfNewestSegment_DropsThatRecord()
    {
        using var dir = await OneSegmentAsync(5);
        var segment = dir.Segments().Single();
        var original = File.ReadAllBytes(segment);
        var last = DiskFrames.Read(original)[^1];

        for (var offset = (int)last.Offset; offset < last.End; offset++)
        {
            var damaged = original.ToArray();
            damaged[offset] ^= 0xFF;
            ResetLog(dir, segment, damaged);
            await using var engine = await dir.OpenAsync();
            Assert.Equal(4, await engine.GetRevisionAsync(Ct));
            await AssertKeysAsync(engine, 1, 4);
            Assert.Null(await engine.GetAsync(Ns, "k/5", cancellationToken: Ct));
        }
    }

    [Fact]
    public async Task Open_FlippedByteInSealedSegment_ThrowsCorruptDataNamingFileAndOffset()
    {
        using var source = await ThreeSegmentsAsync();
        var sealedSegment = source.Segments()[0];
        var frames = DiskFrames.Read(sealedSegment);
        Assert.Equal(5, frames.Count);

        // The middle of a frame's payload, a header byte, and the last frame of the sealed segment (never a torn tail).
        foreach (var (frame, at) in new[] { (frames[2], frames[2].Length / 2), (frames[2], 0), (frames[4], frames[4].Length - 1), (frames[4], 5) })
        {
            using var dir = new TempDataDirectory(source.Path);
            var path = dir.Segments()[0];
            DiskFrames.FlipByte(path, frame.Offset + at);
            var e = await Assert.ThrowsAsync<CorruptDataException>(() => dir.OpenAsync());
            Assert.Equal(Path.GetFullPath(path), e.Path);
            Assert.Equal(frame.Offset, e.Offset);
            Assert.Contains(Path.GetFileName(path), e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Open_SealedSegmentCutShort_ThrowsCorruptData()
    {
        using var source = await ThreeSegmentsAsync();
        var frames = DiskFrames.Read(source.Segments()[1]);
        var last = frames[^1];
        foreach (var cut in new[] { last.Offset + 3, last.End - 1 })
        {
            using var dir = new TempDataDirectory(source.Path);
            var path = dir.Segments()[1];
            DiskFrames.Truncate(path, cut);
            var e = await Assert.ThrowsAsync<CorruptDataException>(() => dir.OpenAsync());
            Assert.Equal(Path.GetFullPath(path), e.Path);
            Assert.Equal(last.Offset, e.Offset);
        }
    }

    [Fact]
    public async Task Open_SealedSegmentWithBadMagic_ThrowsCorruptDataAtOffsetZero()
    {
        using var dir = await ThreeSegmentsAsync();
        var path = dir.Segments()[0];
        DiskFrames.FlipByte(path, 2);
        var e = await Assert.ThrowsAsync<CorruptDataException>(() => dir.OpenAsync());
        Assert.Equal(Path.GetFullPath(path), e.Path);
        Assert.Equal(0, e.Offset);
    }

    [Fact]
    public async Task Open_NewestSegmentWithBadMagicButCommits_ThrowsInsteadOfDroppingThem()
    {
        // A segment's header is fsynced before any commit is appended, so a bad header in front of commits is damage,
        // not the trace of a crash: dropping the whole segment would silently lose acknowledged writes.
        using var dir = await OneSegmentAsync(5);
        var path = dir.Segments().Single();
        DiskFrames.FlipByte(path, 0);
        var e = await Assert.ThrowsAsync<CorruptDataException>(() => dir.OpenAsync());
        Assert.Equal(Path.GetFullPath(path), e.Path);
        Assert.Equal(0, e.Offset);
    }

    // ------------------------------------------------------------------ new, empty and header-only segments

    [Fact]
    public async Task Open_CrashRightAfterRecoveryStartedNewSegment_ReopensAndContinues()
    {
        // Disposing an engine that wrote nothing leaves exactly what a crash right after OpenAsync leaves:
        // the new segment (named by the next revision) holding only its header.
        using var source = await OneSegmentAsync(5);
        await (await source.OpenAsync()).DisposeAsync();
        var segments = source.Segments();
        Assert.Equal(2, segments.Count);
        Assert.Equal(WriteAheadLog.SegmentPath(source.Path, 6), segments[1]);
        Assert.Equal(Framing.LogMagic.Length, new FileInfo(segments[1]).Length);

        // ... and a crash before its header reached the disk leaves it empty or with part of the header.
        foreach (var length in new long[] { 8, 0, 3 })
        {
            using var dir = new TempDataDirectory(source.Path);
            DiskFrames.Truncate(dir.Segments()[1], length);
            for (var reopen = 0; reopen < 3; reopen++)
            {
                await using var engine = await dir.OpenAsync();
                Assert.Equal(5 + reopen, await engine.GetRevisionAsync(Ct));
                await AssertKeysAsync(engine, 1, 5 + reopen);
                await WriteAsync(engine, 6 + reopen, 1);
            }
            await using (var engine = await dir.OpenAsync()) await AssertKeysAsync(engine, 1, 8);
        }
    }

    [Fact]
    public async Task Open_HeaderOnlyOrEmptyOlderSegment_IsNotCorruption()
    {
        using var source = await ThreeSegmentsAsync();
        foreach (var content in new[] { Framing.LogMagic.ToArray(), [] })
        {
            using var dir = new TempDataDirectory(source.Path);
            // A segment holding no commit, sorted between two others. The engine itself never leaves one behind (a new
            // segment is named by the next revision, so re-creating it replaces an empty one); this checks the rule alone.
            File.WriteAllBytes(Path.Combine(dir.LogDirectory, $"{5:D20}.log"), content);
            await using var engine = await dir.OpenAsync();
            Assert.Equal(10, await engine.GetRevisionAsync(Ct));
            await AssertKeysAsync(engine, 1, 10);
        }
    }

    // ------------------------------------------------------------------ gaps

    [Fact]
    public async Task Open_MissingMiddleSegment_ThrowsCorruptDataForTheGap()
    {
        using var dir = await ThreeSegmentsAsync();
        var segments = dir.Segments();
        File.Delete(segments[1]);
        var e = await Assert.ThrowsAsync<CorruptDataException>(() => dir.OpenAsync());
        Assert.Equal(Path.GetFullPath(segments[2]), e.Path);
        Assert.Contains("gap", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Open_RevisionSkippedInsideSegment_ThrowsCorruptData()
    {
        using var dir = await OneSegmentAsync(5);
        var path = dir.Segments().Single();
        var bytes = File.ReadAllBytes(path);
        var frames = DiskFrames.Read(bytes);
        // Rebuild the segment without revision 3 (every frame still checksums correctly).
        using (var stream = new FileStream(path, FileMode.Create))
        {
            stream.Write(Framing.LogMagic);
            foreach (var f in frames.Where(f => f.Revision != 3)) stream.Write(bytes, (int)f.Offset, f.Length);
        }
        var e = await Assert.ThrowsAsync<CorruptDataException>(() => dir.OpenAsync());
        Assert.Equal(Path.GetFullPath(path), e.Path);
        Assert.Equal(frames[2].Offset, e.Offset);
        Assert.Contains("gap", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Open_SnapshotMissingAndNoCommitAfterIt_ThrowsInsteadOfOpeningEmpty()
    {
        // The log after a snapshot holds no commit yet; the segment's name still says revisions 1..5 existed.
        using var dir = await OneSegmentAsync(5);
        await using (var engine = await dir.OpenAsync()) Assert.Equal(5, await engine.SnapshotAsync(Ct));
        File.Delete(dir.Snapshots().Single());
        var e = await Assert.ThrowsAsync<CorruptDataException>(() => dir.OpenAsync());
        Assert.Contains("missing", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Open_SnapshotMissingWithCommitsAfterIt_ThrowsCorruptData()
    {
        using var dir = await OneSegmentAsync(5);
        await using (var engine = await dir.OpenAsync())
        {
            await engine.SnapshotAsync(Ct);
            await WriteAsync(engine, 6, 2);
        }
        File.Delete(dir.Snapshots().Single());
        await Assert.ThrowsAsync<CorruptDataException>(() => dir.OpenAsync());
    }

    // ------------------------------------------------------------------ snapshots

    /// <summary>Snapshot at revision 5 (with an idempotency record), then revisions 6..7 in the log.</summary>
    private static async Task<TempDataDirectory> SnapshotThenLogAsync()
    {
        var dir = new TempDataDirectory();
        await using var engine = await dir.OpenAsync();
        await WriteAsync(engine, 1, 4);
        await engine.PutAsync(Ns, "k/5", ValueOf(5), new WriteOptions { IdempotencyKey = "op-5" }, Ct);
        Assert.Equal(5, await engine.SnapshotAsync(Ct));
        await WriteAsync(engine, 6, 2);
        return dir;
    }

    [Fact]
    public async Task Open_SnapshotPlusLog_RestoresEverything()
    {
        using var dir = await SnapshotThenLogAsync();
        Assert.Single(dir.Snapshots());
        Assert.Equal([WriteAheadLog.SegmentPath(dir.Path, 6)], dir.Segments()); // segments covered by the snapshot are gone
        await using var engine = await dir.OpenAsync();
        Assert.Equal(7, await engine.GetRevisionAsync(Ct));
        await AssertKeysAsync(engine, 1, 7);
    }

    [Fact]
    public async Task Open_SnapshotCutAtEveryOffset_ThrowsCorruptDataNeverLoadsIt()
    {
        using var dir = await SnapshotThenLogAsync();
        var snapshot = dir.Snapshots().Single();
        var original = File.ReadAllBytes(snapshot);
        for (var cut = 0; cut < original.Length; cut++)
        {
            // A refused open changes nothing on disk, so one directory serves every case.
            File.WriteAllBytes(snapshot, original[..cut]);
            var e = await Assert.ThrowsAsync<CorruptDataException>(() => dir.OpenAsync());
            Assert.Equal(Path.GetFullPath(snapshot), e.Path);
        }
    }

    [Fact]
    public async Task Open_SnapshotWithFlippedByteAtEveryOffset_ThrowsCorruptDataNeverLoadsIt()
    {
        using var dir = await SnapshotThenLogAsync();
        var snapshot = dir.Snapshots().Single();
        var original = File.ReadAllBytes(snapshot);
        for (var offset = 0; offset < original.Length; offset++)
        {
            var damaged = original.ToArray();
            damaged[offset] ^= 0xFF;
            File.WriteAllBytes(snapshot, damaged);
            var e = await Assert.ThrowsAsync<CorruptDataException>(() => dir.OpenAsync());
            Assert.Equal(Path.GetFullPath(snapshot), e.Path);
        }
        File.WriteAllBytes(snapshot, original);
        await using var engine = await dir.OpenAsync(); // the same directory with the intact snapshot opens
        await AssertKeysAsync(engine, 1, 7);
    }

    [Fact]
    public async Task Open_LeftoverSnapshotTempFiles_AreIgnoredAndRemoved()
    {
        using var dir = await SnapshotThenLogAsync();
        var snapshot = dir.Snapshots().Single();
        // An interrupted snapshot of a newer revision: a complete-looking copy and a half-written one.
        var complete = Snapshots.PathFor(dir.Path, 7) + ".tmp";
        var partial = Snapshots.PathFor(dir.Path, 8) + ".tmp";
        File.Copy(snapshot, complete);
        File.WriteAllBytes(partial, File.ReadAllBytes(snapshot)[..20]);

        await using (var engine = await dir.OpenAsync())
        {
            Assert.Equal(7, await engine.GetRevisionAsync(Ct));
            await AssertKeysAsync(engine, 1, 7);
        }
        Assert.False(File.Exists(complete));
        Assert.False(File.Exists(partial));
    }

    [Fact]
    public async Task Open_CrashAfterSnapshotBeforeOldFilesDeleted_RecoversWithoutReplayingTwice()
    {
        // The snapshot is renamed into place before the files it covers are deleted: a crash in between leaves both.
        using var dir = new TempDataDirectory();
        var saved = new TempDataDirectory();
        try
        {
            await using (var engine = await dir.OpenAsync())
            {
                await WriteAsync(engine, 1, 3);
                await engine.SnapshotAsync(Ct);
                await WriteAsync(engine, 4, 3);
                TempDataDirectory.CopyDirectory(dir.Path, saved.Path); // snapshot 3 and segment 4.log
                await engine.SnapshotAsync(Ct);
                await engine.PatchAsync(Ns, "k/1", JsonPatch.Create().Increment("/i", 10), cancellationToken: Ct);
            }
            foreach (var file in Directory.EnumerateFiles(saved.Path, "*.snap"))
                File.Copy(file, Path.Combine(dir.Path, Path.GetFileName(file)), overwrite: true);
            foreach (var file in Directory.EnumerateFiles(saved.LogDirectory))
                File.Copy(file, Path.Combine(dir.LogDirectory, Path.GetFileName(file)), overwrite: false);
            Assert.Equal(2, dir.Snapshots().Count);

            await using (var engine = await dir.OpenAsync())
            {
                Assert.Equal(7, await engine.GetRevisionAsync(Ct));
                await AssertKeysAsync(engine, 2, 5);
                var k1 = await engine.GetAsync(Ns, "k/1", cancellationToken: Ct);
                Assert.Equal(2, k1!.Version);
                Assert.Equal(11, k1.Value.GetProperty("i").GetInt32());
            }
        }
        finally
        {
            saved.Dispose();
        }
    }

    // ------------------------------------------------------------------ restarts and the directory lock

    [Fact]
    public async Task Open_AfterCleanDispose_RepeatedlyContinuesTheRevisionSequence()
    {
        using var dir = new TempDataDirectory();
        for (var round = 0; round < 5; round++)
        {
            await using var engine = await dir.OpenAsync();
            Assert.Equal(3 * round, await engine.GetRevisionAsync(Ct));
            await AssertKeysAsync(engine, 1, 3 * round);
            await WriteAsync(engine, 3 * round + 1, 3);
            Assert.Equal(3 * round + 3, await engine.GetRevisionAsync(Ct));
            if (round == 2) await engine.SnapshotAsync(Ct);
        }
    }

    [Fact]
    public async Task Open_DirectoryInUse_ThrowsStoreUnavailableUntilTheOwnerCloses()
    {
        using var dir = new TempDataDirectory();
        var first = await dir.OpenAsync();
        await using (first)
        {
            await WriteAsync(first, 1, 2);
            var e = await Assert.ThrowsAsync<StoreUnavailableException>(() => dir.OpenAsync());
            Assert.True(e.IsTransient);
            // The refused open changed nothing: the owner goes on.
            await WriteAsync(first, 3, 1);
        }
        await using var second = await dir.OpenAsync();
        await AssertKeysAsync(second, 1, 3);
    }

    [Fact]
    public async Task DisposeAsync_WhileBackgroundSnapshotRuns_WaitsForIt()
    {
        using var dir = new TempDataDirectory();
        var options = dir.Options();
        options.SnapshotEveryBytes = 4096;
        var big = J($$"""{"pad":"{{new string('x', 8000)}}"}""");
        for (var round = 0; round < 2; round++)
        {
            await using (var engine = await ConcordEngine.OpenAsync(options, Ct))
            {
                // One big commit crosses the threshold; the next one starts a background snapshot of ~16 MB.
                var ops = Enumerable.Range(0, 2000).Select(i => TxnOp.Put($"big/{round}/{i}", big)).ToList();
                Assert.True((await engine.TransactAsync(Ns, new TxnRequest { Then = ops }, cancellationToken: Ct)).IsApplied);
                Assert.True((await engine.PutAsync(Ns, $"small/{round}", J("1"), cancellationToken: Ct)).IsApplied);
            }
            // Once DisposeAsync returned, nothing may touch the directory any more (another process may own it now).
            var before = Listing(dir.Path);
            await Task.Delay(200, Ct);
            Assert.Equal(before, Listing(dir.Path));
        }

        static string Listing(string path) => string.Join("\n", Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories)
            .Order(StringComparer.Ordinal).Select(f => $"{Path.GetFileName(f)} {new FileInfo(f).Length}"));
    }

    // ------------------------------------------------------------------ idempotency, TTL and watch across restarts

    [Fact]
    public async Task Idempotency_SurvivesSnapshotAndRestart_AndExpiresPerRetention()
    {
        using var dir = new TempDataDirectory();
        var time = new FakeTimeProvider(T0);
        var options = dir.Options(time);
        options.IdempotencyRetention = TimeSpan.FromHours(1);
        var opA = new WriteOptions { IdempotencyKey = "op-a" };
        var opC = new WriteOptions { IdempotencyKey = "op-c" };

        WriteResult a, c;
        await using (var engine = await ConcordEngine.OpenAsync(options, Ct))
        {
            a = await engine.PutAsync(Ns, "a", J("1"), opA, Ct);
            await engine.SnapshotAsync(Ct); // op-a is carried by the snapshot
            c = await engine.PutAsync(Ns, "c", J("3"), opC, Ct); // op-c only by the log
        }

        time.Advance(TimeSpan.FromMinutes(50));
        await using (var engine = await ConcordEngine.OpenAsync(options, Ct))
        {
            foreach (var (key, value, op, original) in new[] { ("a", "1", opA, a), ("c", "3", opC, c) })
            {
                var replay = await engine.PutAsync(Ns, key, J(value), op, Ct);
                Assert.True(replay.Replayed, $"{op.IdempotencyKey}: {replay}");
                Assert.Equal(original.Version, replay.Version);
                Assert.Equal(original.Revision, replay.Revision);
                await Assert.ThrowsAsync<IdempotencyKeyReusedException>(async () => await engine.PutAsync(Ns, key, J("99"), op, Ct));
            }
            Assert.Equal(c.Revision, await engine.GetRevisionAsync(Ct)); // replays wrote nothing
            await engine.SnapshotAsync(Ct);
        }

        time.Advance(TimeSpan.FromMinutes(11)); // past the retention of both records
        await using (var engine = await ConcordEngine.OpenAsync(options, Ct))
        {
            var again = await engine.PutAsync(Ns, "a", J("1"), opA, Ct);
            Assert.False(again.Replayed);
            Assert.Equal(2, again.Version);
            var other = await engine.PutAsync(Ns, "c", J("99"), opC, Ct);
            Assert.True(other.IsApplied && !other.Replayed);
        }
    }

    [Fact]
    public async Task Idempotency_RecordExpiresWhileRunning_AndStaysExpiredAfterRestart()
    {
        using var dir = new TempDataDirectory();
        var time = new FakeTimeProvider(T0);
        var options = dir.Options(time);
        options.IdempotencyRetention = TimeSpan.FromMinutes(10);
        var op = new WriteOptions { IdempotencyKey = "op-d" };
        await using (var engine = await ConcordEngine.OpenAsync(options, Ct))
        {
            Assert.False((await engine.PutAsync(Ns, "d", J("1"), op, Ct)).Replayed);
            Assert.True((await engine.PutAsync(Ns, "d", J("1"), op, Ct)).Replayed);
            time.Advance(TimeSpan.FromMinutes(11)); // the sweeper forgets it
            var fresh = await engine.PutAsync(Ns, "d", J("2"), op, Ct);
            Assert.True(fresh.IsApplied && !fresh.Replayed);
            Assert.Equal(2, fresh.Version);
        }
        await using (var engine = await ConcordEngine.OpenAsync(options, Ct))
        {
            // The new record (for the second payload) is the one that survives.
            Assert.True((await engine.PutAsync(Ns, "d", J("2"), op, Ct)).Replayed);
            await Assert.ThrowsAsync<IdempotencyKeyReusedException>(async () => await engine.PutAsync(Ns, "d", J("1"), op, Ct));
        }
    }

    [Fact]
    public async Task Ttl_ExpirySurvivesRestart_FromLogAndFromSnapshot()
    {
        using var dir = new TempDataDirectory();
        var time = new FakeTimeProvider(T0);
        var options = dir.Options(time);
        await using (var engine = await ConcordEngine.OpenAsync(options, Ct))
        {
            await engine.PutAsync(Ns, "short", J("1"), new WriteOptions { Ttl = TimeSpan.FromMinutes(10) }, Ct);
            await engine.PutAsync(Ns, "long", J("2"), new WriteOptions { Ttl = TimeSpan.FromHours(2) }, Ct);
            await engine.PutAsync(Ns, "forever", J("3"), cancellationToken: Ct);
        }

        time.Advance(TimeSpan.FromMinutes(5));
        await using (var engine = await ConcordEngine.OpenAsync(options, Ct))
        {
            var s = await engine.GetAsync(Ns, "short", cancellationToken: Ct);
            Assert.Equal(T0 + TimeSpan.FromMinutes(10), s!.ExpiresAt);
            Assert.NotNull(await engine.GetAsync(Ns, "long", cancellationToken: Ct));
            time.Advance(TimeSpan.FromMinutes(6)); // the sweeper writes the expiry tombstone (revision 4)
            Assert.Null(await engine.GetAsync(Ns, "short", cancellationToken: Ct));
            await DurableBarrierAsync(engine);
            Assert.Equal(4, await engine.GetRevisionAsync(Ct));
        }

        await using (var engine = await ConcordEngine.OpenAsync(options, Ct))
        {
            Assert.Equal(4, await engine.GetRevisionAsync(Ct));
            Assert.Null(await engine.GetAsync(Ns, "short", cancellationToken: Ct));
            var events = await ReadAsync(engine.WatchAsync(Ns, new WatchRequest { Key = "short", FromRevision = 1 }, Ct), 2);
            Assert.Equal([ChangeKind.Put, ChangeKind.Expire], events.Select(e => e.Kind));
            Assert.Equal(T0 + TimeSpan.FromHours(2), (await engine.GetAsync(Ns, "long", cancellationToken: Ct))!.ExpiresAt);
            await engine.SnapshotAsync(Ct);
        }

        time.Advance(TimeSpan.FromHours(2));
        await using (var engine = await ConcordEngine.OpenAsync(options, Ct))
        {
            Assert.Null(await engine.GetAsync(Ns, "long", cancellationToken: Ct)); // hidden at once, even before the sweep
            time.Advance(TimeSpan.FromSeconds(1));
            await DurableBarrierAsync(engine);
            Assert.Equal(5, await engine.GetRevisionAsync(Ct)); // and the restored expiry queue swept it
            Assert.NotNull(await engine.GetAsync(Ns, "forever", cancellationToken: Ct));
        }
    }

    [Fact]
    public async Task Watch_FromRevisionAfterRestart_ReplaysAfterSnapshotAndRefusesBefore()
    {
        using var dir = new TempDataDirectory();
        await using (var engine = await dir.OpenAsync())
        {
            await WriteAsync(engine, 1, 5);
            await engine.SnapshotAsync(Ct);
            await WriteAsync(engine, 6, 3);
        }

        await using (var engine = await dir.OpenAsync())
        {
            await using var watch = engine.WatchAsync(Ns, new WatchRequest { Prefix = "k/", FromRevision = 6 }, Ct).GetAsyncEnumerator(Ct);
            foreach (var revision in new long[] { 6, 7, 8 })
            {
                Assert.True(await watch.MoveNextAsync());
                Assert.Equal(revision, watch.Current.Revision);
                Assert.Equal($"k/{revision}", watch.Current.Key);
            }
            await WriteAsync(engine, 9, 1);
            Assert.True(await watch.MoveNextAsync());
            Assert.Equal(9, watch.Current.Revision);

            foreach (var from in new long[] { 5, 1 })
            {
                var e = await Assert.ThrowsAsync<RevisionCompactedException>(() => ReadAsync(engine.WatchAsync(Ns, new WatchRequest { FromRevision = from }, Ct), 1));
                Assert.Equal(5, e.CompactedRevision);
            }
            // Reads at a past revision follow the same rule.
            Assert.NotNull(await engine.GetAsync(Ns, "k/5", new ReadOptions { AtRevision = 5 }, Ct));
            var read = await Assert.ThrowsAsync<RevisionCompactedException>(async () => await engine.GetAsync(Ns, "k/4", new ReadOptions { AtRevision = 4 }, Ct));
            Assert.Equal(4, read.CompactedRevision);
        }
    }

    [Fact]
    public async Task Watch_FromFirstRevisionAfterRestartWithoutSnapshot_ReplaysTheWholeLog()
    {
        using var dir = await ThreeSegmentsAsync();
        await using var engine = await dir.OpenAsync();
        var events = await ReadAsync(engine.WatchAsync(Ns, new WatchRequest { FromRevision = 1 }, Ct), 10);
        Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i), events.Select(e => e.Revision));
    }

    /// <summary>A read-only transaction returns once everything committed before it is durable and visible.</summary>
    private static async Task DurableBarrierAsync(ConcordEngine engine) =>
        await engine.TransactAsync(Ns, new TxnRequest { Then = [TxnOp.Get("barrier")] }, cancellationToken: Ct);

    private static async Task<List<ChangeEvent>> ReadAsync(IAsyncEnumerable<ChangeEvent> watch, int count)
    {
        var events = new List<ChangeEvent>();
        await foreach (var e in watch)
        {
            events.Add(e);
            if (events.Count == count) break;
        }
        return events;
    }
}
