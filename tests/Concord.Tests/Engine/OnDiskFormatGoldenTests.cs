using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Concord.Engine;
using Microsoft.Extensions.Time.Testing;

namespace Concord.Tests.Engine;

/// <summary>
/// Freezes the on-disk format (like Garnet's PersistedEnumStabilityTests): data directories written by the current code
/// are checked in under Engine/Golden/v1. Today's code must (a) open them and find exactly what was written, and
/// (b) write exactly the same bytes again. A failure here means existing data directories would no longer open, or would
/// open differently: bump the format version (the file magic) and keep a reader for v1 instead of editing the golden files.
/// </summary>
/// <remarks>
/// <para>
/// Golden/v1/engine is today's format; Golden/v1/engine-before-causal was written before records carried causal stamps
/// (the optional "cc" field) and must keep opening: an additive change adds a new golden directory, it never edits an old one.
/// </para>
/// To regenerate after an intentional format change: set CONCORD_UPDATE_GOLDEN=1, run these tests once (they rewrite
/// the files in the source tree and fail), review the diff, commit.
/// </remarks>
public sealed class OnDiskFormatGoldenTests
{
    private const string Ns = "golden";
    private static readonly DateTimeOffset T0 = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
    private static readonly string GoldenRoot = Path.Combine(AppContext.BaseDirectory, "Engine", "Golden", "v1");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static JsonElement J(string json) => JsonDocument.Parse(json).RootElement.Clone();

    // ------------------------------------------------------------------ the engine-written directory

    private static readonly JsonPatch AddFees = JsonPatch.Create().Increment("/fees", 2);

    private static TxnRequest OpenSecondAccount => new()
    {
        Compares = [TxnCompare.Version("acct/1", CompareOp.Equal, 2)],
        Then = [TxnOp.Put("acct/2", J("""{"fees":0}"""), Expect.Absent), TxnOp.PatchKey("acct/1", JsonPatch.Create().Increment("/fees", 10))],
    };

    /// <summary>
    /// Revisions 1..4, a snapshot at 4, then 5..7 in the log: creates, a patch and a transaction with idempotency keys,
    /// a delete (tombstone), a write without agent and with a TTL, and the sweeper's expiry tombstone.
    /// </summary>
    private static async Task WriteEngineScenarioAsync(string dir)
    {
        var time = new FakeTimeProvider(T0);
        await using var engine = await ConcordEngine.OpenAsync(new ConcordEngineOptions { DataDirectory = dir, TimeProvider = time }, Ct);
        var s = new ConcordSession(engine, Ns, "agent-1", new SessionOptions { TimeProvider = time });
        Assert.True((await s.PutAsync("acct/1", J("""{"fees":1,"name":"Zoë \"Z\""}"""), Expect.Absent, cancellationToken: Ct)).IsApplied);
        Assert.True((await s.PatchAsync("acct/1", AddFees, idempotencyKey: "op-2", cancellationToken: Ct)).IsApplied);
        Assert.True((await s.PutAsync("tmp/1", J("[1,2.5,null]"), Expect.Absent, cancellationToken: Ct)).IsApplied);
        Assert.True((await s.DeleteAsync("tmp/1", Expect.Version(1), cancellationToken: Ct)).IsApplied);
        Assert.Equal(4, await engine.SnapshotAsync(Ct));
        Assert.True((await s.TransactAsync(OpenSecondAccount, idempotencyKey: "op-5", cancellationToken: Ct)).Succeeded);
        Assert.True((await engine.PutAsync(Ns, "ttl/1", J("true"), new WriteOptions { Ttl = TimeSpan.FromMinutes(1) }, Ct)).IsApplied);
        time.Advance(TimeSpan.FromMinutes(2)); // the sweeper (run once, at T0 + 2 min) writes revision 7; DisposeAsync flushes it
    }

    [Theory]
    [InlineData("engine")]
    [InlineData("engine-before-causal")]
    public async Task EngineDirectory_OpenedByCurrentCode_HasExactlyTheWrittenContents(string golden)
    {
        using var dir = new TempDataDirectory(Path.Combine(GoldenRoot, golden));
        var time = new FakeTimeProvider(T0 + TimeSpan.FromMinutes(3));
        await using var engine = await ConcordEngine.OpenAsync(dir.Options(time), Ct);
        Assert.Equal(7, await engine.GetRevisionAsync(Ct));

        var acct1 = await engine.GetAsync(Ns, "acct/1", cancellationToken: Ct);
        AssertRecord(acct1, "acct/1", """{"fees":13,"name":"Zoë \"Z\""}""", version: 3, revision: 5, createRevision: 1, "agent-1", T0.UtcTicks + 4, expires: null);
        var acct2 = await engine.GetAsync(Ns, "acct/2", cancellationToken: Ct);
        AssertRecord(acct2, "acct/2", """{"fees":0}""", version: 1, revision: 5, createRevision: 5, "agent-1", T0.UtcTicks + 4, expires: null);
        Assert.Null(await engine.GetAsync(Ns, "tmp/1", cancellationToken: Ct));
        Assert.Null(await engine.GetAsync(Ns, "ttl/1", cancellationToken: Ct));

        // The log after the snapshot is history: watch from 5 replays it exactly, 4 is compacted.
        var events = new List<ChangeEvent>();
        await foreach (var e in engine.WatchAsync(Ns, new WatchRequest { FromRevision = 5 }, Ct))
        {
            events.Add(e);
            if (events.Count == 4) break;
        }
        Assert.Equal(["5 Put acct/2", "5 Put acct/1", "6 Put ttl/1", "7 Expire ttl/1"], events.Select(e => $"{e.Revision} {e.Kind} {e.Key}"));
        AssertRecord(events[2].Record, "ttl/1", "true", version: 1, revision: 6, createRevision: 6, writer: null, T0.UtcTicks + 5, expires: T0.UtcTicks + TimeSpan.FromMinutes(1).Ticks);
        var expiry = events[3].Record;
        Assert.True(expiry.IsDeleted);
        Assert.Equal((2L, 7L, "concord:ttl", (T0 + TimeSpan.FromMinutes(2)).UtcTicks), (expiry.Version, expiry.Revision, expiry.Writer, expiry.CommittedAt.UtcTicks));
        await Assert.ThrowsAsync<RevisionCompactedException>(async () => { await foreach (var _ in engine.WatchAsync(Ns, new WatchRequest { FromRevision = 4 }, Ct)) break; });

        // Idempotency records (one from the snapshot, one from the log) still recognise their requests: the stored
        // fingerprints are part of the format too.
        var s = new ConcordSession(engine, Ns, "agent-1");
        var patch = await s.PatchAsync("acct/1", AddFees, idempotencyKey: "op-2", cancellationToken: Ct);
        Assert.True(patch.Replayed);
        Assert.Equal((2L, 2L), (patch.Version, patch.Revision));
        Assert.Equal(3, patch.Record!.Value.GetProperty("fees").GetInt32());
        var txn = await s.TransactAsync(OpenSecondAccount, idempotencyKey: "op-5", cancellationToken: Ct);
        Assert.True(txn.Replayed && txn.Succeeded);
        Assert.Equal(5, txn.Revision);
        Assert.Equal(["acct/2@1", "acct/1@3"], txn.Results.Select(r => $"{r.Key}@{r.Record!.Version}"));
        await Assert.ThrowsAsync<IdempotencyKeyReusedException>(async () => await s.PatchAsync("acct/1", JsonPatch.Create().Increment("/fees", 3), idempotencyKey: "op-2", cancellationToken: Ct));
        Assert.Equal(7, await engine.GetRevisionAsync(Ct));
    }

    [Fact]
    public async Task EngineDirectory_WrittenAgainByCurrentCode_IsByteIdentical()
    {
        using var dir = new TempDataDirectory();
        await WriteEngineScenarioAsync(dir.Path);
        var golden = Path.Combine(GoldenRoot, "engine");
        if (Regenerate(dir.Path, "engine")) return;

        // The log segment is fully deterministic (fake clock, HLC, fingerprints).
        var segment = Path.GetFileName(WriteAheadLog.SegmentPath(dir.Path, 5));
        Assert.Equal([segment], dir.Segments().Select(Path.GetFileName));
        AssertBytes(File.ReadAllBytes(Path.Combine(golden, "log", segment)), File.ReadAllBytes(dir.Segments().Single()), segment);

        // The snapshot lists keys in hash order, which differs between processes: compare its frames as a set,
        // with the header first and the footer last.
        var snapshot = Path.GetFileName(Snapshots.PathFor(dir.Path, 4));
        Assert.Equal([snapshot], dir.Snapshots().Select(Path.GetFileName));
        var expected = SnapshotFrames(File.ReadAllBytes(Path.Combine(golden, snapshot)));
        var actual = SnapshotFrames(File.ReadAllBytes(dir.Snapshots().Single()));
        Assert.Equal(expected[0], actual[0]);
        Assert.Equal(expected[^1], actual[^1]);
        Assert.Equal(expected.Order(StringComparer.Ordinal), actual.Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("engine")]
    [InlineData("engine-before-causal")]
    public void EngineDirectory_FramesDecodedAndEncodedAgain_AreByteIdentical(string name)
    {
        var golden = Path.Combine(GoldenRoot, name);
        var segment = File.ReadAllBytes(Path.Combine(golden, "log", Path.GetFileName(WriteAheadLog.SegmentPath(golden, 5))));
        Assert.True(segment.AsSpan(0, 8).SequenceEqual("CNCDLOG1"u8));
        var frames = DiskFrames.Read(segment);
        Assert.Equal([5L, 6L, 7L], frames.Select(f => f.Revision));
        Assert.Equal(segment.Length, frames[^1].End);
        foreach (var frame in frames)
        {
            var buffer = new ArrayBufferWriter<byte>();
            Codec.WriteCommit(buffer, Codec.ReadCommit(frame.Payload.Span));
            AssertBytes(frame.Payload.ToArray(), buffer.WrittenSpan.ToArray(), $"commit {frame.Revision}");
        }

        var snapshotPath = Snapshots.PathFor(golden, 4);
        using var dir = new TempDataDirectory();
        Directory.CreateDirectory(dir.LogDirectory);
        Snapshots.Write(dir.Path, Snapshots.Read(snapshotPath));
        AssertBytes(File.ReadAllBytes(snapshotPath), File.ReadAllBytes(Snapshots.PathFor(dir.Path, 4)), "snapshot");
    }

    // ------------------------------------------------------------------ a hand-built directory: fences

    /// <summary>
    /// Parts of the format no engine path writes today (fencing tokens in commits and snapshots: fences now live in lock
    /// records) are still read, so this directory is built from the codec directly: a snapshot at 2 holding a record, an
    /// idempotency record and a fence, and one commit (3) that raises the fence.
    /// </summary>
    private static void WriteHandmade(string dir)
    {
        var at = new DateTimeOffset(T0.UtcTicks, TimeSpan.Zero);
        var doc2 = new ConcordRecord("doc/1", J("""{"v":2}"""), 2, 2, 1, "holder", at.AddTicks(1), null, false);
        var result = new TxnResult(true, [new TxnOpResult(TxnOpKind.Put, "doc/1", doc2)], 2, null);
        var idem = new IdempotencyEntry("op-doc", [1, 2, 3, 4], at + TimeSpan.FromHours(24), result);
        Directory.CreateDirectory(WriteAheadLog.SegmentDirectory(dir));
        Snapshots.Write(dir, new SnapshotImage(2, at.UtcTicks + 1,
            [new SnapshotImage.Namespace(Ns, [doc2], [idem], new Dictionary<string, long> { ["lock/a"] = 3 })]));

        var doc3 = new ConcordRecord("doc/1", J("""{"v":3}"""), 3, 3, 1, "holder", at.AddTicks(2), at + TimeSpan.FromDays(365), false);
        var commit = new CommitEntry
        {
            Revision = 3,
            Namespace = Ns,
            Time = at.AddTicks(2),
            Changes = [new ChangeEvent(Ns, ChangeKind.Put, doc3)],
            Fences = new Dictionary<string, long> { ["lock/a"] = 7, ["lock/b"] = 1 },
        };
        var payload = new ArrayBufferWriter<byte>();
        Codec.WriteCommit(payload, commit);
        var frame = new ArrayBufferWriter<byte>();
        frame.Write(Framing.LogMagic);
        Framing.WriteFrame(frame, payload.WrittenSpan);
        File.WriteAllBytes(WriteAheadLog.SegmentPath(dir, 3), frame.WrittenSpan.ToArray());
    }

    [Fact]
    public void HandmadeDirectory_WrittenAgainByCurrentCode_IsByteIdentical()
    {
        using var dir = new TempDataDirectory();
        WriteHandmade(dir.Path);
        if (Regenerate(dir.Path, "handmade")) return;
        var golden = Path.Combine(GoldenRoot, "handmade");
        foreach (var file in new[] { Path.GetFileName(Snapshots.PathFor(dir.Path, 2)), Path.Combine("log", Path.GetFileName(WriteAheadLog.SegmentPath(dir.Path, 3))) })
            AssertBytes(File.ReadAllBytes(Path.Combine(golden, file)), File.ReadAllBytes(Path.Combine(dir.Path, file)), file);
    }

    [Fact]
    public async Task HandmadeDirectory_OpenedByCurrentCode_HasTheWrittenContents()
    {
        using var dir = new TempDataDirectory(Path.Combine(GoldenRoot, "handmade"));
        var time = new FakeTimeProvider(T0 + TimeSpan.FromHours(1));
        await using var engine = await ConcordEngine.OpenAsync(dir.Options(time), Ct);
        Assert.Equal(3, await engine.GetRevisionAsync(Ct));
        var doc = await engine.GetAsync(Ns, "doc/1", cancellationToken: Ct);
        AssertRecord(doc, "doc/1", """{"v":3}""", version: 3, revision: 3, createRevision: 1, "holder", T0.UtcTicks + 2, expires: (T0 + TimeSpan.FromDays(365)).UtcTicks);
        Assert.Null(doc!.Causal);
        var old = await engine.GetAsync(Ns, "doc/1", new ReadOptions { AtRevision = 2 }, Ct);
        AssertRecord(old, "doc/1", """{"v":2}""", version: 2, revision: 2, createRevision: 1, "holder", T0.UtcTicks + 1, expires: null);

        // The idempotency record from the snapshot is live (its fingerprint is synthetic, so any re-sent request counts
        // as another payload); the store goes on at revision 4.
        await Assert.ThrowsAsync<IdempotencyKeyReusedException>(async () =>
            await engine.PutAsync(Ns, "doc/1", J("""{"v":2}"""), new WriteOptions { IdempotencyKey = "op-doc" }, Ct));
        Assert.Equal(4, (await engine.PutAsync(Ns, "doc/2", J("1"), cancellationToken: Ct)).Revision);
    }

    // ------------------------------------------------------------------ helpers

    private static void AssertRecord(ConcordRecord? r, string key, string value, long version, long revision, long createRevision, string? writer, long committedTicks, long? expires)
    {
        Assert.NotNull(r);
        Assert.Equal(key, r.Key);
        Assert.True(JsonElement.DeepEquals(J(value), r.Value), $"{key} is {r.Value.GetRawText()}, expected {value}");
        Assert.Equal((version, revision, createRevision, writer, committedTicks, expires, false),
            (r.Version, r.Revision, r.CreateRevision, r.Writer, r.CommittedAt.UtcTicks, r.ExpiresAt?.UtcTicks, r.IsDeleted));
    }

    private static List<string> SnapshotFrames(byte[] file)
    {
        Assert.True(file.AsSpan(0, 8).SequenceEqual("CNCDSNP1"u8));
        var frames = DiskFrames.Read(file);
        Assert.Equal(file.Length, frames[^1].End);
        return [.. frames.Select(f => Convert.ToHexString(file, (int)f.Offset, f.Length))];
    }

    private static void AssertBytes(byte[] expected, byte[] actual, string what)
    {
        if (expected.AsSpan().SequenceEqual(actual)) return;
        var at = expected.AsSpan().CommonPrefixLength(actual);
        Assert.Fail($"{what}: on-disk bytes changed at offset {at} (golden {expected.Length} bytes, now {actual.Length}).\n" +
            $"golden: {Context(expected, at)}\nnow:    {Context(actual, at)}");

        // Printable ASCII as is, anything else (frame headers, checksums) as '.'.
        static string Context(byte[] bytes, int at) =>
            new([.. bytes.Skip(Math.Max(0, at - 40)).Take(80).Select(b => b is >= 0x20 and < 0x7F ? (char)b : '.')]);
    }

    /// <summary>With CONCORD_UPDATE_GOLDEN=1, copies a freshly written directory over the checked-in golden one and fails.</summary>
    private static bool Regenerate(string written, string name, [CallerFilePath] string source = "")
    {
        if (Environment.GetEnvironmentVariable("CONCORD_UPDATE_GOLDEN") != "1") return false;
        var target = Path.Combine(Path.GetDirectoryName(source)!, "Golden", "v1", name);
        if (Directory.Exists(target)) Directory.Delete(target, recursive: true);
        TempDataDirectory.CopyDirectory(written, target);
        File.Delete(Path.Combine(target, "LOCK"));
        Assert.Fail($"golden files regenerated in {target}: review the diff and commit them, then run without CONCORD_UPDATE_GOLDEN");
        return true;
    }
}
