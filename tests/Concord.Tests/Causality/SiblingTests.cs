using System.Text.Json;
using Concord.Engine;

namespace Concord.Tests.Causality;

public sealed class SiblingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static JsonElement J(string json) => JsonDocument.Parse(json).RootElement.Clone();

    private static JsonElement S(string text) => JsonSerializer.SerializeToElement(text);

    private static readonly WriteOptions Siblings = new() { AllowSiblings = true };

    private static string[] Values(ConcordRecord record) => [.. record.Siblings.Select(s => s.Value.GetString()!).Order(StringComparer.Ordinal)];

    [Fact]
    public async Task ConcurrentWrites_AreKeptAsSiblings_AndAMergedContextWriteResolvesThem()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var owner = new ConcordSession(store, "t", "owner");
        await owner.PutAsync("plan", S("v0"), Siblings, Ct);
        var a = new ConcordSession(store, "t", "planner");
        var b = new ConcordSession(store, "t", "critic");
        await a.GetAsync("plan", Ct);
        await b.GetAsync("plan", Ct);

        var wa = await a.PutAsync("plan", S("from planner"), cancellationToken: Ct);
        Assert.False(wa.Record!.HasSiblings);
        var wb = await b.PutAsync("plan", S("from critic"), cancellationToken: Ct); // concurrent with the planner's write
        Assert.True(wb.IsApplied);
        Assert.True(wb.Record!.HasSiblings);
        Assert.True(wb.Record!.Causal!.Concurrent);

        var c = new ConcordSession(store, "t", "editor");
        var read = await c.GetAsync("plan", Ct);
        Assert.Equal(["from critic", "from planner"], Values(read!));
        Assert.Equal(["critic", "planner"], read!.Siblings.Select(s => s.Writer).Order(StringComparer.Ordinal));
        Assert.Equal(read!.Causal!.Context, c.GetContext("plan")); // the read returned the merged context

        var resolved = await c.PutAsync("plan", S("merged"), cancellationToken: Ct);
        Assert.False(resolved.Record!.HasSiblings);
        Assert.False(resolved.Record!.Causal!.Concurrent);
        Assert.Equal(["merged"], Values((await owner.GetAsync("plan", Ct))!));
    }

    [Fact]
    public async Task WriteWithAStaleContext_AfterResolution_BecomesASiblingOfTheResolution()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var a = new ConcordSession(store, "t", "a");
        var late = new ConcordSession(store, "t", "late");
        await a.PutAsync("k", S("v0"), Siblings, Ct);
        await late.GetAsync("k", Ct);
        await a.GetAsync("k", Ct);
        await a.PutAsync("k", S("v1"), cancellationToken: Ct);
        var w = await late.PutAsync("k", S("late"), cancellationToken: Ct);
        Assert.Equal(["late", "v1"], Values(w.Record!));
        // The late writer did not see "v1", and its own write left it in place: it must not now claim to have seen it.
        var again = await late.PutAsync("k", S("late2"), cancellationToken: Ct);
        Assert.Contains("v1", Values(again.Record!));
    }

    [Fact]
    public async Task ManyAgents_WritingConcurrently_NoValueIsLost()
    {
        await using var store = ConcordEngine.CreateInMemory(new ConcordEngineOptions { StrictMode = true });
        var owner = new ConcordSession(store, "t", "owner");
        await owner.PutAsync("answer", S("seed"), Siblings with { Expect = Expect.Absent }, Ct);
        const int Agents = 12;
        var remaining = Agents;
        var allRead = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var tasks = Enumerable.Range(0, Agents).Select(i => Task.Run(async () =>
        {
            var agent = new ConcordSession(store, "t", "agent-" + i);
            await agent.GetAsync("answer", Ct);
            if (Interlocked.Decrement(ref remaining) == 0) allRead.SetResult();
            await allRead.Task.WaitAsync(Ct); // everyone has read the seed before anyone writes: every write is concurrent with the others
            var w = await agent.PutAsync("answer", S("answer-" + i), cancellationToken: Ct); // blind, yet allowed in strict mode: it cannot lose data
            Assert.True(w.IsApplied, w.Message);
        }, Ct)).ToList();
        await Task.WhenAll(tasks);

        var read = await owner.GetAsync("answer", Ct);
        Assert.Equal(Enumerable.Range(0, Agents).Select(i => "answer-" + i).Order(StringComparer.Ordinal), Values(read!));
        Assert.Equal(Agents, read!.Siblings.Select(s => s.Dot).Distinct().Count());

        var resolved = await owner.PutAsync("answer", S("consensus"), cancellationToken: Ct);
        Assert.Equal(["consensus"], Values(resolved.Record!));
    }

    [Fact]
    public async Task Delete_RemovesOnlyTheSiblingsItsContextCovers()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var a = new ConcordSession(store, "t", "a");
        var b = new ConcordSession(store, "t", "b");
        await a.PutAsync("k", S("v0"), Siblings, Ct);
        await b.GetAsync("k", Ct);
        await a.PutAsync("k", S("from a"), cancellationToken: Ct);
        var d = await b.DeleteAsync("k", cancellationToken: Ct); // b saw only v0
        Assert.False(d.Record!.IsDeleted);
        Assert.Equal(["from a"], Values(d.Record));
        Assert.True(d.Record.Causal!.Concurrent);

        await b.GetAsync("k", Ct);
        var gone = await b.DeleteAsync("k", cancellationToken: Ct);
        Assert.True(gone.Record!.IsDeleted);
        Assert.Null(await a.GetAsync("k", Ct));
    }

    [Fact]
    public async Task SiblingMode_IsStickyForTheKey()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var a = new ConcordSession(store, "t", "a");
        var first = await a.PutAsync("k", S("v0"), Siblings, Ct);
        Assert.True(first.Record!.Causal!.SiblingMode);
        // A plain put from a session that knows nothing about siblings keeps the mode and cannot erase v0.
        var w = await store.PutAsync("t", "k", S("blind"), new WriteOptions { Agent = "naive" }, Ct);
        Assert.True(w.Record!.Causal!.SiblingMode);
        Assert.Equal(["blind", "v0"], Values(w.Record));
    }

    [Fact]
    public async Task Patch_OnAKeyWithSiblings_IsRefused_UntilResolved()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var a = new ConcordSession(store, "t", "a");
        await a.PutAsync("k", J("""{"n":1}"""), Siblings, Ct);
        await store.PutAsync("t", "k", J("""{"n":2}"""), new WriteOptions { Agent = "other" }, Ct);
        await Assert.ThrowsAsync<InvalidRequestException>(async () => await a.PatchAsync("k", JsonPatch.Create().Increment("/n", 1), cancellationToken: Ct));
        await a.GetAsync("k", Ct);
        await a.PutAsync("k", J("""{"n":3}"""), cancellationToken: Ct);
        Assert.True((await a.PatchAsync("k", JsonPatch.Create().Increment("/n", 1), cancellationToken: Ct)).IsApplied);
        Assert.Equal(4, (await a.GetAsync("k", Ct))!.Value.GetProperty("n").GetInt32());
    }

    [Fact]
    public async Task Put_OfTheReservedSiblingsEnvelope_IsRefused()
    {
        await using var store = ConcordEngine.CreateInMemory();
        await Assert.ThrowsAsync<InvalidRequestException>(async () =>
            await store.PutAsync("t", "k", J("""{"$siblings":[]}"""), cancellationToken: Ct));
    }

    [Fact]
    public async Task Transaction_PutOnASiblingKey_KeepsSiblings_SameKeyTwiceInOneTransactionSupersedes()
    {
        await using var store = ConcordEngine.CreateInMemory();
        var a = new ConcordSession(store, "t", "a");
        await a.PutAsync("k", S("v0"), Siblings, Ct);
        var other = new ConcordSession(store, "t", "other");
        await other.PutAsync("k", S("other"), cancellationToken: Ct); // concurrent with what a will write next (a has not seen it)
        var result = await a.TransactAsync(new TxnRequest { Then = [TxnOp.Put("k", S("first")), TxnOp.Put("k", S("second"))] }, cancellationToken: Ct);
        Assert.True(result.IsApplied);
        Assert.Equal(["other", "second"], Values(result.Results[1].Record!));
    }

    [Fact]
    public async Task Siblings_AndStamps_SurviveRestartAndSnapshot()
    {
        var dir = Path.Combine(Path.GetTempPath(), "concord-siblings-" + Guid.NewGuid().ToString("N"));
        try
        {
            ConcordRecord before;
            await using (var store = await ConcordEngine.OpenAsync(new ConcordEngineOptions { DataDirectory = dir }, Ct))
            {
                var a = new ConcordSession(store, "t", "a");
                await a.PutAsync("k", S("v0"), Siblings, Ct);
                await store.PutAsync("t", "k", S("x"), new WriteOptions { Agent = "x" }, Ct);
                await store.SnapshotAsync(Ct);
                await store.PutAsync("t", "k", S("y"), new WriteOptions { Agent = "y" }, Ct);
                before = (await a.GetAsync("k", Ct))!;
                Assert.Equal(["v0", "x", "y"], Values(before));
            }
            await using (var store = await ConcordEngine.OpenAsync(new ConcordEngineOptions { DataDirectory = dir }, Ct))
            {
                var s = new ConcordSession(store, "t", "resolver");
                var after = (await s.GetAsync("k", Ct))!;
                Assert.Equal(before.Causal, after.Causal);
                Assert.Equal(Values(before), Values(after));
                Assert.True(after.Causal!.SiblingMode);
                var resolved = await s.PutAsync("k", S("resolved"), cancellationToken: Ct);
                Assert.Equal(["resolved"], Values(resolved.Record!));
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
