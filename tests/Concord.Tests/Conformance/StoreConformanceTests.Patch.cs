using System.Text.Json.Nodes;

namespace Concord.Tests.Conformance;

/// <summary>Atomic patches: RFC 6902 operations and Concord's field operations.</summary>
public abstract partial class StoreConformanceTests
{
    private async Task<(IConcordStore Store, ConcordSession Session)> SeededAsync(string json, string key = "doc")
    {
        var (store, s) = await OpenAsync();
        Assert.True((await s.PutAsync(key, J(json), Expect.Absent, cancellationToken: Ct)).IsApplied);
        return (store, s);
    }

    private static async Task<ConcordRecord> PatchAppliedAsync(ConcordSession s, string key, JsonPatch patch)
    {
        var w = await s.PatchAsync(key, patch, cancellationToken: Ct);
        Assert.True(w.IsApplied, w.ToString());
        var stored = await s.GetAsync(key, Ct);
        Assert.NotNull(stored);
        AssertJson(w.Record!.Value, stored.Value);
        Assert.Equal(w.Version, stored.Version);
        return stored;
    }

    [Fact]
    public async Task Patch_AbsentKey_StartsFromEmptyObject()
    {
        var (_, s) = await OpenAsync();
        var w = await s.PatchAsync("doc", JsonPatch.Create().Add("/a", Node("1")), cancellationToken: Ct);

        Assert.True(w.IsApplied);
        Assert.Equal(1, w.Version);
        AssertJson("""{"a":1}""", w.Record!.Value);
    }

    [Fact]
    public async Task Patch_DeletedKey_StartsFromEmptyObjectAndVersionContinues()
    {
        var (_, s) = await SeededAsync("""{"old":true}""");
        await s.DeleteAsync("doc", cancellationToken: Ct);
        var w = await s.PatchAsync("doc", JsonPatch.Create().Increment("/n", 5), cancellationToken: Ct);

        Assert.Equal(3, w.Version);
        AssertJson("""{"n":5}""", w.Record!.Value);
    }

    [Fact]
    public async Task Patch_RfcOperations_ApplyInOrder()
    {
        var (_, s) = await SeededAsync("""{"a":1,"b":{"c":[1,2,3]},"d":"x"}""");
        var patch = JsonPatch.Create()
            .Test("/a", Node("1"))
            .Add("/e", Node("""{"f":null}"""))
            .Add("/b/c/1", Node("9"))
            .Add("/b/c/-", Node("4"))
            .Remove("/b/c/0")
            .Replace("/d", Node("\"y\""))
            .Move("/a", "/e/g")
            .Copy("/b/c", "/h")
            .Test("/h", Node("[9,2,3,4]"));

        var r = await PatchAppliedAsync(s, "doc", patch);

        AssertJson("""{"b":{"c":[9,2,3,4]},"d":"y","e":{"f":null,"g":1},"h":[9,2,3,4]}""", r.Value);
        Assert.Equal(2, r.Version);
    }

    [Fact]
    public async Task Patch_ParsedFromJsonArrayForm_Applies()
    {
        var (_, s) = await SeededAsync("""{"tags":["a"]}""");
        var patch = JsonPatch.Parse("""
            [{"op":"add","path":"/x","value":{"y":1}},
             {"op":"increment","path":"/x/y"},
             {"op":"addToSet","path":"/tags","value":"b"},
             {"op":"replace","path":"","value":{"whole":"new"}}]
            """);

        var r = await PatchAppliedAsync(s, "doc", patch);

        AssertJson("""{"whole":"new"}""", r.Value);
    }

    [Fact]
    public async Task Patch_TestFails_ConflictTestFailedCarryingCurrentRecordAndNothingApplied()
    {
        var (store, s) = await SeededAsync("""{"status":"open","fees":10}""");
        var revision = await store.GetRevisionAsync(Ct);

        var c = await s.PatchAsync("doc", JsonPatch.Create()
            .Replace("/fees", Node("20"))
            .Test("/status", Node("\"closed\"")), cancellationToken: Ct);

        Assert.Equal(ConflictKind.TestFailed, c.Conflict);
        Assert.Equal(1, c.Version);
        AssertJson("""{"status":"open","fees":10}""", c.Record!.Value);
        Assert.Contains("/status", c.Message, StringComparison.Ordinal);
        Assert.Equal(revision, await store.GetRevisionAsync(Ct));
        AssertJson("""{"status":"open","fees":10}""", (await s.GetAsync("doc", Ct))!.Value);
    }

    [Fact]
    public async Task Patch_TestOfMissingMember_IsTestFailedNotAnError()
    {
        var (_, s) = await SeededAsync("""{"a":1}""");
        var c = await s.PatchAsync("doc", JsonPatch.Create().Test("/missing", Node("1")), cancellationToken: Ct);
        Assert.Equal(ConflictKind.TestFailed, c.Conflict);
    }

    [Theory]
    [InlineData("""{"n":1}""", "/n", "1.0")]
    [InlineData("""{"n":1.0}""", "/n", "1")]
    [InlineData("""{"n":100}""", "/n", "1e2")]
    [InlineData("""{"o":{"a":1,"b":[1,2]}}""", "/o", """{"b":[1,2],"a":1}""")]
    [InlineData("""{"s":"x"}""", "/s", "\"x\"")]
    [InlineData("""{"z":null}""", "/z", "null")]
    public async Task Patch_Test_ComparesJsonByValue(string document, string path, string operand)
    {
        var (_, s) = await SeededAsync(document);
        var w = await s.PatchAsync("doc", JsonPatch.Create().Test(path, Node(operand)).Add("/ok", Node("true")), cancellationToken: Ct);
        Assert.True(w.IsApplied, w.ToString());
    }

    [Theory]
    [InlineData("""{"o":{"a":1}}""", "/o", """{"a":1,"b":2}""")]
    [InlineData("""{"a":[1,2]}""", "/a", "[2,1]")]
    [InlineData("""{"n":1}""", "/n", "\"1\"")]
    [InlineData("""{"z":null}""", "/z", "false")]
    public async Task Patch_Test_DifferentValue_Fails(string document, string path, string operand)
    {
        var (_, s) = await SeededAsync(document);
        var w = await s.PatchAsync("doc", JsonPatch.Create().Test(path, Node(operand)), cancellationToken: Ct);
        Assert.Equal(ConflictKind.TestFailed, w.Conflict);
    }

    [Fact]
    public async Task Patch_WithStaleExpectation_ConflictsAndAppliesNothing()
    {
        var (_, s) = await SeededAsync("""{"n":1}""");
        await s.PatchAsync("doc", JsonPatch.Create().Increment("/n"), cancellationToken: Ct);
        var c = await s.PatchAsync("doc", JsonPatch.Create().Increment("/n"), Expect.Version(1), cancellationToken: Ct);

        Assert.Equal(ConflictKind.VersionMismatch, c.Conflict);
        Assert.Equal(2, NOf(c.Record));
        Assert.Equal(2, NOf(await s.GetAsync("doc", Ct)));
        Assert.True((await s.PatchAsync("doc", JsonPatch.Create().Increment("/n"), Expect.Version(2), cancellationToken: Ct)).IsApplied);
    }

    [Fact]
    public async Task Patch_ExpectExistsOnAbsentKey_ConflictNotFound()
    {
        var (_, s) = await OpenAsync();
        var c = await s.PatchAsync("doc", JsonPatch.Create().Increment("/n"), Expect.Exists, cancellationToken: Ct);
        Assert.Equal(ConflictKind.NotFound, c.Conflict);
        Assert.Null(await s.GetAsync("doc", Ct));
    }

    [Fact]
    public async Task Patch_Increment_IntegersStayExactAndMissingTargetCountsAsZero()
    {
        var (_, s) = await SeededAsync("""{"n":9007199254740993}""");
        var r = await PatchAppliedAsync(s, "doc", JsonPatch.Create()
            .Increment("/n", 2)
            .Increment("/fresh", -3)
            .Increment("/deep/er/count")
            .Increment("/half", 0.5)
            .Increment("/half", 0.25));

        AssertJson("""{"n":9007199254740995,"fresh":-3,"deep":{"er":{"count":1}},"half":0.75}""", r.Value);
        Assert.Equal(9007199254740995, r.Value.GetProperty("n").GetInt64());
    }

    [Fact]
    public async Task Patch_IncrementWithoutValue_AddsOne()
    {
        var (_, s) = await SeededAsync("""{"n":41}""");
        var r = await PatchAppliedAsync(s, "doc", JsonPatch.Parse("""[{"op":"increment","path":"/n"}]"""));
        Assert.Equal(42, NOf(r));
    }

    [Fact]
    public async Task Patch_Append_AddsOneElementAndCreatesMissingArray()
    {
        var (_, s) = await SeededAsync("""{"log":["a"]}""");
        var r = await PatchAppliedAsync(s, "doc", JsonPatch.Create()
            .Append("/log", Node("\"b\""))
            .Append("/log", Node("\"b\""))
            .Append("/log", Node("[1,2]"))
            .Append("/new/list", Node("{\"x\":1}")));

        AssertJson("""{"log":["a","b","b",[1,2]],"new":{"list":[{"x":1}]}}""", r.Value);
    }

    [Fact]
    public async Task Patch_AddToSetAndRemoveFromSet_TreatArraysAsSets()
    {
        var (_, s) = await SeededAsync("""{"tags":["a","b","a",{"k":1}]}""");
        var r = await PatchAppliedAsync(s, "doc", JsonPatch.Create()
            .AddToSet("/tags", Node("\"b\""))
            .AddToSet("/tags", Node("\"c\""))
            .AddToSet("/tags", Node("{\"k\":1}"))
            .RemoveFromSet("/tags", Node("\"a\""))
            .RemoveFromSet("/missing/path", Node("\"a\""))
            .AddToSet("/fresh", Node("1")));

        AssertJson("""{"tags":["b",{"k":1},"c"],"fresh":[1]}""", r.Value);
    }

    [Fact]
    public async Task Patch_MaxAndMin_KeepTheExtremeAndInitializeMissingTargets()
    {
        var (_, s) = await SeededAsync("""{"hi":5,"lo":5,"name":"m"}""");
        var r = await PatchAppliedAsync(s, "doc", JsonPatch.Create()
            .Max("/hi", Node("3"))
            .Max("/hi", Node("7.5"))
            .Min("/lo", Node("6"))
            .Min("/lo", Node("-2"))
            .Max("/name", Node("\"z\""))
            .Min("/first", Node("10"))
            .Max("/nested/peak", Node("1")));

        AssertJson("""{"hi":7.5,"lo":-2,"name":"z","first":10,"nested":{"peak":1}}""", r.Value);
    }

    [Fact]
    public async Task Patch_ConcurrentAgentsOwningDifferentFields_NeverConflict()
    {
        var store = await OpenStoreAsync();
        var agents = new[] { "status", "fees", "compliance" }.Select(a => Session(store, a)).ToArray();
        await agents[0].PutAsync("acct/42", J("""{"status":"new","fees":0,"flags":[]}"""), Expect.Absent, cancellationToken: Ct);

        var results = await Task.WhenAll(
            agents[0].PatchAsync("acct/42", JsonPatch.Create().Replace("/status", Node("\"active\"")), cancellationToken: Ct).AsTask(),
            agents[1].PatchAsync("acct/42", JsonPatch.Create().Increment("/fees", 25), cancellationToken: Ct).AsTask(),
            agents[2].PatchAsync("acct/42", JsonPatch.Create().AddToSet("/flags", Node("\"kyc-ok\"")), cancellationToken: Ct).AsTask());

        Assert.All(results, r => Assert.True(r.IsApplied));
        Assert.Equal([2L, 3L, 4L], results.Select(r => r.Version).Order());
        var final = await agents[0].GetAsync("acct/42", Ct);
        AssertJson("""{"status":"active","fees":25,"flags":["kyc-ok"]}""", final!.Value);
        Assert.Equal(4, final.Version);
    }

    [Fact]
    public async Task IncrementAsync_DefaultsToValueField()
    {
        var (_, s) = await OpenAsync();
        await s.IncrementAsync("counter", cancellationToken: Ct);
        var w = await s.IncrementAsync("counter", 41, cancellationToken: Ct);
        Assert.Equal(2, w.Version);
        AssertJson("""{"value":42}""", w.Record!.Value);
    }

    [Fact]
    public async Task Patch_TargetingArrayElementsAndEscapedPointers_Applies()
    {
        var (_, s) = await SeededAsync("""{"a/b":{"m~n":1},"arr":[{"n":1},{"n":2}]}""");
        var r = await PatchAppliedAsync(s, "doc", JsonPatch.Create()
            .Increment("/a~1b/m~0n", 1)
            .Increment("/arr/1/n", 10)
            .Replace("/arr/0", JsonNode.Parse("""{"n":0}""")));

        AssertJson("""{"a/b":{"m~n":2},"arr":[{"n":0},{"n":12}]}""", r.Value);
    }
}
