using System.Text.Json;
using Concord.Crdt;
using Concord.Engine;

namespace Concord.Tests.Crdt;

public sealed class EngineMergeTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static JsonElement J(string json) => JsonDocument.Parse(json).RootElement.Clone();

    [Fact]
    public async Task MergeAsync_16TasksTimes200Increments_ExactTotal()
    {
        await using var store = ConcordEngine.CreateInMemory(new ConcordEngineOptions { StrictMode = true });
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var tasks = Enumerable.Range(0, 16).Select(t => Task.Run(async () =>
        {
            var session = new ConcordSession(store, "t", "agent-" + t);
            var local = PNCounter.Empty; // this task's own contributions: the delta carries its new total
            await start.Task.WaitAsync(Ct);
            for (var i = 0; i < 200; i++)
            {
                var delta = local.Increment("worker-" + t);
                local = local.Merge(delta);
                var result = await session.MergeAsync("hits", delta, cancellationToken: Ct);
                Assert.True(result.IsApplied);
            }
        }, Ct)).ToList();
        start.SetResult();
        await Task.WhenAll(tasks);

        var reader = new ConcordSession(store, "t", "reader");
        var counter = await reader.GetCrdtAsync<PNCounter>("hits", Ct);
        Assert.Equal(16 * 200, counter.Value);
        Assert.Equal(16 * 200, (await reader.GetAsync("hits", Ct))!.Version); // every merge was its own atomic write
    }

    [Fact]
    public async Task MergeAsync_ConcurrentAddsAndRemoves_AddWins()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var seeder = new ConcordSession(store, "t", "seeder");
        var seed = ORSet.Empty;
        for (var i = 0; i < 16; i++)
        {
            foreach (var name in new[] { $"contested-{i}", $"removed-{i}" })
            {
                var d = seed.Add("seeder", name);
                seed = seed.Merge(d);
                await seeder.MergeAsync("set", d, cancellationToken: Ct);
            }
        }

        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var tasks = new List<Task>();
        for (var i = 0; i < 16; i++)
        {
            var n = i;
            // The remover observes the set, then — concurrently with the re-add — removes what it saw.
            var observed = new TaskCompletionSource<ORSet>(TaskCreationOptions.RunContinuationsAsynchronously);
            tasks.Add(Task.Run(async () =>
            {
                var session = new ConcordSession(store, "t", "remover-" + n);
                await start.Task.WaitAsync(Ct);
                var seen = await session.GetCrdtAsync<ORSet>("set", Ct);
                observed.SetResult(seen);
                Assert.True((await session.MergeAsync("set", seen.Remove($"contested-{n}").Merge(seen.Remove($"removed-{n}")), cancellationToken: Ct)).IsApplied);
            }, Ct));
            tasks.Add(Task.Run(async () =>
            {
                var session = new ConcordSession(store, "t", "adder-" + n);
                var mine = await observed.Task; // add after the remover's read: the remove cannot have seen this add
                Assert.True((await session.MergeAsync("set", mine.Add("adder-" + n, $"contested-{n}"), cancellationToken: Ct)).IsApplied);
            }, Ct));
        }
        start.SetResult();
        await Task.WhenAll(tasks);

        var final = await seeder.GetCrdtAsync<ORSet>("set", Ct);
        for (var i = 0; i < 16; i++)
        {
            Assert.True(final.Contains($"contested-{i}"), $"contested-{i}: the concurrent add must win over the remove");
            Assert.False(final.Contains($"removed-{i}"), $"removed-{i}: an observed remove must remove");
        }
        Assert.Equal(16, final.Count);
    }

    [Fact]
    public async Task Merge_IntoAnotherCrdtType_ThrowsTypeMismatch_AndChangesNothing()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var s = new ConcordSession(store, "t", "a");
        await s.MergeAsync("c", PNCounter.Empty.Increment("a"), cancellationToken: Ct);
        var e = await Assert.ThrowsAsync<CrdtTypeMismatchException>(async () => await s.MergeAsync("c", ORSet.Empty.Add("a", 1), cancellationToken: Ct));
        Assert.Equal(("c", "orset", "pncounter"), (e.Key, e.Expected, e.Actual));
        Assert.Equal("crdt-type-mismatch", e.Code);
        Assert.Equal(1, (await s.GetAsync("c", Ct))!.Version);
    }

    [Fact]
    public async Task Merge_IntoPlainValue_ThrowsTypeMismatch()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var s = new ConcordSession(store, "t", "a");
        await s.PutAsync("doc", J("""{"x":1}"""), Expect.Absent, cancellationToken: Ct);
        var e = await Assert.ThrowsAsync<CrdtTypeMismatchException>(async () => await s.MergeAsync("doc", PNCounter.Empty.Increment("a"), cancellationToken: Ct));
        Assert.Equal("json", e.Actual);
    }

    [Fact]
    public async Task Merge_MalformedDelta_ThrowsInvalidRequest()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var s = new ConcordSession(store, "t", "a");
        await Assert.ThrowsAsync<InvalidRequestException>(async () => await s.MergeAsync("k", J("""{"x":1}"""), cancellationToken: Ct));
        await Assert.ThrowsAsync<InvalidRequestException>(async () => await s.MergeAsync("k", J("""{"$crdt":"pncounter","state":{"p":{"a":"many"}}}"""), cancellationToken: Ct));
        await Assert.ThrowsAsync<InvalidRequestException>(async () => await s.MergeAsync("k", default(JsonElement), cancellationToken: Ct));
        Assert.Null(await s.GetAsync("k", Ct));
    }

    [Fact]
    public async Task Patch_OnCrdtKey_IsRefused_PutOfMalformedCrdtIsRefused()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var s = new ConcordSession(store, "t", "a");
        await s.MergeAsync("c", PNCounter.Empty.Increment("a", 5), cancellationToken: Ct);
        await Assert.ThrowsAsync<CrdtTypeMismatchException>(async () => await s.PatchAsync("c", JsonPatch.Create().Increment("/state/p/a", 1), cancellationToken: Ct));
        await Assert.ThrowsAsync<InvalidRequestException>(async () => await s.PutAsync("d", J("""{"$crdt":"orset","state":{"entries":5}}"""), cancellationToken: Ct));
        // A put of a well-formed state is a reset (allowed, under the usual expectation rules).
        Assert.True((await s.PutAsync("c", PNCounter.Empty.ToJson(), Expect.Version(1), cancellationToken: Ct)).IsApplied);
        Assert.Equal(0, (await s.GetCrdtAsync<PNCounter>("c", Ct)).Value);
    }

    [Fact]
    public async Task Merge_WithIdempotencyKey_ReplaysAndCatchesReuse()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var s = new ConcordSession(store, "t", "a");
        var delta = PNCounter.Empty.Increment("a", 3);
        var first = await s.MergeAsync("c", delta, "op-1", Ct);
        var again = await s.MergeAsync("c", delta, "op-1", Ct);
        Assert.False(first.Replayed);
        Assert.True(again.Replayed);
        Assert.Equal(first.Version, again.Version);
        Assert.Equal(1, (await s.GetAsync("c", Ct))!.Version);
        // The fingerprint covers the merge payload: the same key with another delta is a different request.
        await Assert.ThrowsAsync<IdempotencyKeyReusedException>(async () => await s.MergeAsync("c", PNCounter.Empty.Increment("a", 4), "op-1", Ct));
    }

    [Fact]
    public async Task Merge_InTransactionWithOtherOps_CommitsAtomically()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var s = new ConcordSession(store, "t", "a");
        var result = await s.TransactAsync(new TxnRequest
        {
            Compares = [TxnCompare.Absent("task/1/done")],
            Then = [TxnOp.Put("task/1/done", J("true")), TxnOp.Merge("stats", PNCounter.Empty.Increment("a").ToJson())],
        }, cancellationToken: Ct);
        Assert.True(result.Succeeded && result.IsApplied);
        Assert.Equal(result.Revision, result.Results[1].Record!.Revision);
        // A type error in a later op applies nothing.
        await Assert.ThrowsAsync<CrdtTypeMismatchException>(async () => await s.TransactAsync(new TxnRequest
        {
            Then = [TxnOp.Merge("stats", PNCounter.Empty.Increment("b").ToJson()), TxnOp.Merge("task/1/done", PNCounter.Empty.Increment("a").ToJson())],
        }, cancellationToken: Ct));
        Assert.Equal(1, (await s.GetCrdtAsync<PNCounter>("stats", Ct)).Value);
    }

    [Fact]
    public async Task Merge_InStrictNamespace_IsAllowed()
    {
        await using var store = ConcordEngine.CreateInMemory(new ConcordEngineOptions { StrictMode = true });
        var s = new ConcordSession(store, "t", "a");
        Assert.True((await s.MergeAsync("c", PNCounter.Empty.Increment("a"), cancellationToken: Ct)).IsApplied);
        Assert.True((await s.MergeAsync("c", PNCounter.Empty.Increment("b"), cancellationToken: Ct)).IsApplied);
        Assert.Equal(2, (await s.GetCrdtAsync<PNCounter>("c", Ct)).Value);
    }

    [Fact]
    public async Task Merge_Embedded_SurvivesRestartAndSnapshot()
    {
        var dir = Path.Combine(Path.GetTempPath(), "concord-crdt-" + Guid.NewGuid().ToString("N"));
        try
        {
            ORMap expected;
            await using (var store = await ConcordEngine.OpenAsync(new ConcordEngineOptions { DataDirectory = dir }, Ct))
            {
                var s = new ConcordSession(store, "t", "a");
                var local = ORMap.Empty;
                for (var i = 0; i < 20; i++)
                {
                    var d = local.Update<PNCounter>("a", "n", c => c.Increment("a"));
                    d = d.Merge(local.Merge(d).Update<ORSet>("a", "tags", t => t.Add("a", i % 3)));
                    local = local.Merge(d);
                    await s.MergeAsync("doc", d, cancellationToken: Ct);
                    if (i == 10) await store.SnapshotAsync(Ct);
                }
                await s.MergeAsync("set", ORSet.Empty.Add("a", "x"), cancellationToken: Ct);
                expected = await s.GetCrdtAsync<ORMap>("doc", Ct);
                Assert.Equal(local, expected);
            }
            await using (var store = await ConcordEngine.OpenAsync(new ConcordEngineOptions { DataDirectory = dir }, Ct))
            {
                var s = new ConcordSession(store, "t", "b");
                Assert.Equal(expected, await s.GetCrdtAsync<ORMap>("doc", Ct));
                Assert.Equal(20, expected.Get<PNCounter>("n")!.Value);
                Assert.True((await s.GetCrdtAsync<ORSet>("set", Ct)).Contains("x"));
                // Merging continues on the recovered state.
                await s.MergeAsync("doc", expected.Update<PNCounter>("b", "n", c => c.Increment("b", 5)), cancellationToken: Ct);
                Assert.Equal(25, (await s.GetCrdtAsync<ORMap>("doc", Ct)).Get<PNCounter>("n")!.Value);
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
