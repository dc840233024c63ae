using System.Text.Json;
using Concord.Engine;

namespace Concord.Tests.Causality;

public sealed class CausalContextTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static JsonElement J(string json) => JsonDocument.Parse(json).RootElement.Clone();

    [Fact]
    public async Task Put_StampsDotAndContextFromTheStoreReplica()
    {
        await using var store = ConcordEngine.CreateInMemory(new ConcordEngineOptions { ReplicaId = "east" });
        var s = new ConcordSession(store, "t", "agent-1");
        var w = await s.PutAsync("k", J("1"), cancellationToken: Ct);
        var causal = w.Record!.Causal!;
        Assert.Equal(new Dot("east", w.Revision), causal.Dot);
        Assert.Equal($"east:{w.Revision}", causal.Context.ToString());
        Assert.False(causal.Concurrent);
        Assert.Equal(causal, (await s.GetAsync("k", Ct))!.Causal);
    }

    [Fact]
    public async Task Context_HasOneEntryPerStoreReplica_NotPerAgent()
    {
        await using var store = ConcordEngine.CreateInMemory();
        for (var i = 0; i < 200; i++)
        {
            var agent = new ConcordSession(store, "t", "short-lived-" + i);
            await agent.GetAsync("shared", Ct);
            Assert.True((await agent.PutAsync("shared", J(i.ToString(System.Globalization.CultureInfo.InvariantCulture)), cancellationToken: Ct)).IsApplied);
        }
        var record = await store.GetAsync("t", "shared", cancellationToken: Ct);
        Assert.Equal(1, record!.Causal!.Context.Count);
    }

    [Fact]
    public async Task Write_AfterReadingTheCurrentValue_IsOrdered_StaleWriteIsReportedConcurrent()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var a = new ConcordSession(store, "t", "status");
        var b = new ConcordSession(store, "t", "fees");
        await a.PutAsync("acct", J("""{"v":0}"""), Expect.Absent, cancellationToken: Ct);
        await a.GetAsync("acct", Ct);
        await b.GetAsync("acct", Ct);

        var first = await a.PutAsync("acct", J("""{"v":"a"}"""), cancellationToken: Ct);
        Assert.False(first.Record!.Causal!.Concurrent);

        var second = await b.PutAsync("acct", J("""{"v":"b"}"""), cancellationToken: Ct); // b never saw a's write
        Assert.True(second.IsApplied); // not strict: allowed, but not silent
        Assert.True(second.Record!.Causal!.Concurrent);

        await b.GetAsync("acct", Ct);
        var third = await b.PutAsync("acct", J("""{"v":"b2"}"""), cancellationToken: Ct);
        Assert.False(third.Record!.Causal!.Concurrent);
    }

    [Fact]
    public async Task Write_WithoutContextButWithTheExactVersion_IsOrdered()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var w1 = await store.PutAsync("t", "k", J("1"), cancellationToken: Ct);
        var blind = await store.PutAsync("t", "k", J("2"), cancellationToken: Ct);
        Assert.True(blind.Record!.Causal!.Concurrent); // no context, no version: the writer had not seen version 1
        var cas = await store.PutAsync("t", "k", J("3"), new WriteOptions { Expect = Expect.Version(2) }, Ct);
        Assert.False(cas.Record!.Causal!.Concurrent);
        Assert.Equal(1, w1.Version);
    }

    [Fact]
    public async Task StrictMode_StillRefusesBlindOverwrites_ContextDoesNotBypassIt()
    {
        await using var store = ConcordEngine.CreateInMemory(new ConcordEngineOptions { StrictMode = true });
        var a = new ConcordSession(store, "t", "a");
        await a.PutAsync("k", J("1"), Expect.Absent, cancellationToken: Ct);
        await a.GetAsync("k", Ct);
        var refused = await a.PutAsync("k", J("2"), cancellationToken: Ct); // descends, but states no version
        Assert.Equal(ConflictKind.BlindWriteRefused, refused.Conflict);
        var read = await a.GetAsync("k", Ct);
        Assert.True((await a.PutAsync("k", J("2"), Expect.Version(read!.Version), cancellationToken: Ct)).IsApplied);
    }

    [Fact]
    public async Task Patch_And_Delete_AreStamped()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var s = new ConcordSession(store, "t", "a");
        await s.PutAsync("k", J("""{"n":1}"""), cancellationToken: Ct);
        var p = await s.PatchAsync("k", JsonPatch.Create().Increment("/n", 1), cancellationToken: Ct);
        Assert.Equal(p.Revision, p.Record!.Causal!.Dot.Counter);
        Assert.False(p.Record.Causal.Concurrent);
        var d = await s.DeleteAsync("k", cancellationToken: Ct);
        Assert.True(d.Record!.IsDeleted);
        Assert.Equal(d.Revision, d.Record.Causal!.Dot.Counter);
        var again = await s.PutAsync("k", J("1"), cancellationToken: Ct);
        Assert.True(again.Record!.Causal!.Context.Descends(d.Record.Causal.Context)); // the context survives a delete
    }

    [Fact]
    public async Task Watch_DeliversStampedRecords()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var s = new ConcordSession(store, "t", "a");
        var w = await s.PutAsync("k", J("1"), cancellationToken: Ct);
        await foreach (var change in s.WatchAsync(new WatchRequest { Key = "k", FromRevision = 1 }, Ct))
        {
            Assert.Equal(w.Record!.Causal, change.Record.Causal);
            break;
        }
    }

    [Fact]
    public async Task IdempotentRetry_AfterTheSessionLearnedANewerContext_IsReplayedNotRefused()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var s = new ConcordSession(store, "t", "a");
        await s.PutAsync("k", J("1"), cancellationToken: Ct);
        var first = await s.PutAsync("k", J("2"), idempotencyKey: "op-7", cancellationToken: Ct);
        await s.GetAsync("k", Ct); // the session's context for k has moved on
        var retry = await s.PutAsync("k", J("2"), idempotencyKey: "op-7", cancellationToken: Ct);
        Assert.True(retry.Replayed);
        Assert.Equal(first.Version, retry.Version);
    }

    [Fact]
    public async Task Session_ContextCache_IsBounded()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var s = new ConcordSession(store, "t", "a", new SessionOptions { CausalContextCapacity = 2 });
        foreach (var k in new[] { "x", "y", "z" }) await s.PutAsync(k, J("1"), cancellationToken: Ct);
        Assert.Null(s.GetContext("x"));
        Assert.NotNull(s.GetContext("y"));
        Assert.NotNull(s.GetContext("z"));
        s.ForgetContext("z");
        Assert.Null(s.GetContext("z"));
    }

    [Fact]
    public async Task OptimisticTransaction_WritesCarryTheContextsItRead()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var setup = new ConcordSession(store, "t", "setup");
        await setup.PutAsync("a", J("1"), cancellationToken: Ct);
        var s = new ConcordSession(store, "t", "agent");
        var commit = await s.RunTransactionAsync(async (tx, ct) =>
        {
            var a = await tx.GetAsync("a", ct);
            tx.Put("a", JsonSerializer.SerializeToElement(a!.Value.GetInt32() + 1));
        }, cancellationToken: Ct);
        Assert.True(commit.Committed);
        Assert.False((await s.GetAsync("a", Ct))!.Causal!.Concurrent);
    }

    [Fact]
    public void Codec_PersistsTheStamp_AndOldRecordsReadAsUnstamped()
    {
        var record = new ConcordRecord("k", J("""{"x":1}"""), 3, 17, 2, "a", new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero), null, false)
        {
            Causal = new CausalStamp(new Dot("n1", 17), VersionVector.Parse("n1:17,n2:4"), concurrent: true, siblingMode: true),
        };
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer)) Codec.WriteRecord(w, record);
        var json = System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
        // Golden: the optional "cc" member of the on-disk record.
        Assert.EndsWith(""","cc":{"dot":["n1",17],"ctx":{"n1":17,"n2":4},"concurrent":true,"siblings":true}}""", json);
        Assert.Equal(record.Causal, Codec.ReadRecord(J(json)).Causal);

        var old = Codec.ReadRecord(J("""{"k":"k","v":1,"ver":1,"rev":1,"crev":1,"t":0}"""));
        Assert.Null(old.Causal);
    }

    [Fact]
    public async Task UnstampedVersion_FromOlderData_CountsAsAnEventOfThisStore()
    {
        // Write a log entry the way a build without causal stamps did: a record with no "cc" member.
        var dir = Path.Combine(Path.GetTempPath(), "concord-causal-" + Guid.NewGuid().ToString("N"));
        try
        {
            var old = new ConcordRecord("k", J("1"), 1, 1, 1, "old-agent", new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero), null, false);
            var commit = new CommitEntry { Revision = 1, Namespace = "t", Time = old.CommittedAt, Changes = [new ChangeEvent("t", ChangeKind.Put, old)] };
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            Codec.WriteCommit(buffer, commit);
            Assert.DoesNotContain("\"cc\"", System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan), StringComparison.Ordinal);
            await using (var log = WriteAheadLog.Open(dir, 1, _ => { }))
            {
                await log.Append(1, buffer.WrittenSpan);
            }

            await using var store = await ConcordEngine.OpenAsync(new ConcordEngineOptions { DataDirectory = dir }, Ct);
            var s = new ConcordSession(store, "t", "new-agent");
            var read = await s.GetAsync("k", Ct);
            Assert.Null(read!.Causal);
            Assert.Null(s.GetContext("k")); // nothing to remember from an unstamped version

            var blind = await s.PutAsync("k", J("2"), cancellationToken: Ct);
            Assert.True(blind.Record!.Causal!.Concurrent);
            Assert.True(blind.Record.Causal.Context.Covers(new Dot("n1", 1))); // the old version's derived dot
            var cas = await s.PutAsync("k", J("3"), Expect.Version(2), cancellationToken: Ct);
            Assert.False(cas.Record!.Causal!.Concurrent);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
