using System.Globalization;
using System.Text.Json;

namespace Concord.Tests.Conformance;

/// <summary>
/// Bad input: every case throws a precise <see cref="ConcordException"/> (type and a message naming the problem)
/// and leaves the store exactly as it was (records and revision).
/// </summary>
public abstract partial class StoreConformanceTests
{
    public static TheoryData<string, string> InvalidKeys() => new()
    {
        { "", "empty" },
        { "/lead", "'/'" },
        { "trail/", "'/'" },
        { "a//b", "empty segment" },
        { "a/./b", "'.'" },
        { "a/../b", "'..'" },
        { "..", "'..'" },
        { "line\nbreak", "control character" },
        { "nul\0", "control character" },
        { new string('k', 513), "512" },
        { string.Concat(Enumerable.Repeat("€", 171)), "512" }, // 171 chars but 513 UTF-8 bytes
        { "half\uD800pair", "surrogate" },
    };

    public static IEnumerable<TheoryDataRow<string, string, string>> InvalidKeyUses() =>
        from row in InvalidKeys()
        from use in new[] { "get", "put", "delete", "patch", "txn-op", "txn-compare", "watch" }
        select new TheoryDataRow<string, string, string>(use, row.Data.Item1, row.Data.Item2) { TestDisplayName = $"{use}: {Printable(row.Data.Item1)}" };

    private static string Printable(string key) =>
        key.Length > 20 ? $"{key.Length} chars" : string.Concat(key.Select(c => char.IsControl(c) || char.IsSurrogate(c) ? $"\\u{(int)c:X4}" : c.ToString()));

    [Theory]
    [MemberData(nameof(InvalidKeyUses))]
    public async Task BadInput_InvalidKey_ThrowsInvalidKeyNamingTheProblem(string use, string key, string fragment)
    {
        var (store, s) = await OpenAsync();
        await s.PutAsync("existing", N(1), cancellationToken: Ct);
        Func<Task> call = use switch
        {
            "get" => async () => await s.GetAsync(key, Ct),
            "put" => async () => await s.PutAsync(key, N(1), cancellationToken: Ct),
            "delete" => async () => await s.DeleteAsync(key, cancellationToken: Ct),
            "patch" => async () => await s.PatchAsync(key, JsonPatch.Create().Increment("/n"), cancellationToken: Ct),
            "txn-op" => async () => await s.TransactAsync(new TxnRequest { Then = [TxnOp.Put("existing", N(2)), TxnOp.Put(key, N(1))] }, cancellationToken: Ct),
            "txn-compare" => async () => await s.TransactAsync(new TxnRequest { Compares = [TxnCompare.Exists(key)], Then = [TxnOp.Put("existing", N(2))] }, cancellationToken: Ct),
            _ => async () => await FirstEventAsync(store, new WatchRequest { Key = key }),
        };

        var e = await AssertRejectedAsync<InvalidKeyException>(store, call, fragment);
        Assert.Equal(key, e.Key);
        Assert.Equal("invalid-key", e.Code);
        Assert.False(e.IsTransient);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("has space", "ASCII letters")]
    [InlineData("a/b", "ASCII letters")]
    [InlineData("ünïcode", "ASCII letters")]
    [InlineData("nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn", "64")]
    public async Task BadInput_InvalidNamespace_ThrowsInvalidKeyNamingTheProblem(string ns, string fragment)
    {
        var store = await OpenStoreAsync();
        var e = await AssertRejectedAsync<InvalidKeyException>(store, async () => await store.PutAsync(ns, "k", N(1), cancellationToken: Ct), fragment);
        Assert.Equal(ns, e.Key);
        await Assert.ThrowsAsync<InvalidKeyException>(async () => await store.GetAsync(ns, "k", cancellationToken: Ct));
        await Assert.ThrowsAsync<InvalidKeyException>(async () => await store.ListAsync(ns, new ListRequest(), Ct));
    }

    [Theory]
    [InlineData("/abs", "'/'")]
    [InlineData("ctl\u0007", "control character")]
    public async Task BadInput_InvalidPrefix_ThrowsInvalidKey(string prefix, string fragment)
    {
        var (store, s) = await OpenAsync();
        await AssertRejectedAsync<InvalidKeyException>(store, async () => await s.ListAsync(prefix, cancellationToken: Ct), fragment);
        await AssertRejectedAsync<InvalidKeyException>(store,
            async () => await FirstEventAsync(store, new WatchRequest { Prefix = prefix }), fragment);
        await AssertRejectedAsync<InvalidKeyException>(store,
            async () => await s.TransactAsync(new TxnRequest { Compares = [TxnCompare.PrefixUnchangedSince(prefix, 0)], Then = [TxnOp.Put("k", N(1))] }, cancellationToken: Ct), fragment);
    }

    [Fact]
    public async Task BadInput_WatchOfBothAKeyAndAPrefix_ThrowsInvalidRequest()
    {
        // WatchRequest.Key and WatchRequest.Prefix are documented as mutually exclusive: silently dropping one is not an option.
        var store = await OpenStoreAsync();
        await AssertRejectedAsync<InvalidRequestException>(store,
            async () => await FirstEventAsync(store, new WatchRequest { Key = "a/1", Prefix = "b/" }), "Key", "Prefix");
    }

    [Fact]
    public async Task BadInput_NullKey_ThrowsArgumentNull()
    {
        var (_, s) = await OpenAsync();
        await Assert.ThrowsAsync<ArgumentNullException>(async () => await s.PutAsync(null!, N(1), cancellationToken: Ct));
    }

    private static JsonElement StringValueOfBytes(int totalBytes, string unit = "x")
    {
        // {"s":"…"} has 8 bytes of framing.
        var unitBytes = System.Text.Encoding.UTF8.GetByteCount(unit);
        Assert.Equal(0, (totalBytes - 8) % unitBytes);
        var value = J($$"""{"s":"{{string.Concat(Enumerable.Repeat(unit, (totalBytes - 8) / unitBytes))}}"}""");
        Assert.Equal(totalBytes, System.Text.Encoding.UTF8.GetByteCount(value.GetRawText()));
        return value;
    }

    [Fact]
    public async Task BadInput_ValueOverTheConfiguredLimit_ThrowsValueTooLargeNamingSizeAndLimit()
    {
        var (store, s) = await OpenAsync(new StoreFixtureOptions { MaxValueBytes = 64 });

        Assert.True((await s.PutAsync("at-limit", StringValueOfBytes(64), cancellationToken: Ct)).IsApplied);
        var e = await AssertRejectedAsync<ValueTooLargeException>(store,
            async () => await s.PutAsync("too-big", StringValueOfBytes(65), cancellationToken: Ct), "too-big", "65", "64");
        Assert.Equal(65, e.Size);
        Assert.Equal(64, e.Limit);
        Assert.Equal("value-too-large", e.Code);
    }

    [Fact]
    public async Task BadInput_ValueLimit_CountsUtf8BytesNotCharacters()
    {
        var (store, s) = await OpenAsync(new StoreFixtureOptions { MaxValueBytes = 64 });
        var euros = StringValueOfBytes(8 + 3 * 19, "€"); // 65 bytes in 27 characters
        var e = await AssertRejectedAsync<ValueTooLargeException>(store, async () => await s.PutAsync("k", euros, cancellationToken: Ct), "65");
        Assert.Equal(65, e.Size);
    }

    [Fact]
    public async Task BadInput_PatchThatGrowsTheValuePastTheLimit_ThrowsAndKeepsTheOldValue()
    {
        var (store, s) = await OpenAsync(new StoreFixtureOptions { MaxValueBytes = 64 });
        await s.PutAsync("doc", StringValueOfBytes(56), cancellationToken: Ct);

        await AssertRejectedAsync<ValueTooLargeException>(store,
            async () => await s.PatchAsync("doc", JsonPatch.Create().Add("/more", Node("\"0123456789\"")), cancellationToken: Ct), "doc", "64");
    }

    [Fact]
    public async Task BadInput_OversizedValueInATransaction_AppliesNothing()
    {
        var (store, s) = await OpenAsync(new StoreFixtureOptions { MaxValueBytes = 64 });
        await s.PutAsync("a", N(1), cancellationToken: Ct);

        await AssertRejectedAsync<ValueTooLargeException>(store, async () => await s.TransactAsync(new TxnRequest
        {
            Then = [TxnOp.Put("a", N(2)), TxnOp.Put("b", StringValueOfBytes(100))],
        }, cancellationToken: Ct), "'b'", "100");
        await AssertRejectedAsync<ValueTooLargeException>(store, async () => await s.TransactAsync(new TxnRequest
        {
            Then = [TxnOp.Put("a", N(2)), TxnOp.PatchKey("a", JsonPatch.Create().Add("/pad", Node($"\"{new string('p', 80)}\"")))],
        }, cancellationToken: Ct), "'a'");
    }

    public static TheoryData<string, string, int> MalformedPatches() => new()
    {
        // Not a patch at all.
        { "{}", "JSON array", -1 },
        { "not json", "not valid JSON", -1 },
        { "[]", "at least one operation", -1 },
        { "[1]", "must be an object", 0 },
        { """[{"path":"/a","value":1}]""", "missing 'op'", 0 },
        { """[{"op":"frobnicate","path":"/a"}]""", "unknown op 'frobnicate'", 0 },
        { """[{"op":"add","value":1}]""", "missing 'path'", 0 },
        { """[{"op":"add","path":"/a"}]""", "needs 'value'", 0 },
        { """[{"op":"increment","path":"/a"},{"op":"move","path":"/b"}]""", "needs 'from'", 1 },
        // Well-formed, but cannot apply to the document (a preceding valid op must not leak).
        { """[{"op":"increment","path":"/a"},{"op":"remove","path":"/missing"}]""", "'/missing' does not exist", 1 },
        { """[{"op":"increment","path":"/a"},{"op":"replace","path":"/missing","value":1}]""", "'/missing' does not exist", 1 },
        { """[{"op":"increment","path":"/a"},{"op":"add","path":"/no/parent","value":1}]""", "'/no' does not exist", 1 },
        { """[{"op":"increment","path":"/a"},{"op":"add","path":"a","value":1}]""", "not a JSON Pointer", 1 },
        { """[{"op":"increment","path":"/a"},{"op":"add","path":"/~2","value":1}]""", "'~' must be followed", 1 },
        { """[{"op":"increment","path":"/a"},{"op":"add","path":"/arr/01","value":1}]""", "not an array index", 1 },
        { """[{"op":"increment","path":"/a"},{"op":"add","path":"/arr/5","value":1}]""", "past the end", 1 },
        { """[{"op":"increment","path":"/a"},{"op":"remove","path":"/arr/2"}]""", "'/arr/2' does not exist", 1 },
        { """[{"op":"increment","path":"/a"},{"op":"add","path":"/a/b","value":1}]""", "not an object or array", 1 },
        { """[{"op":"increment","path":"/a"},{"op":"move","from":"/o","path":"/o/y"}]""", "own child", 1 },
        { """[{"op":"increment","path":"/a"},{"op":"copy","from":"/missing","path":"/c"}]""", "'/missing' does not exist", 1 },
        { """[{"op":"increment","path":"/a"},{"op":"remove","path":""}]""", "whole document", 1 },
        { """[{"op":"increment","path":"/a"},{"op":"increment","path":"/s"}]""", "'/s' is a string, not a number", 1 },
        { """[{"op":"increment","path":"/a"},{"op":"increment","path":"/a","value":"1"}]""", "operand is a string", 1 },
        { """[{"op":"increment","path":"/a"},{"op":"increment","path":"/big","value":1}]""", "overflows", 1 },
        { """[{"op":"increment","path":"/a"},{"op":"append","path":"/a","value":1}]""", "not an array", 1 },
        { """[{"op":"increment","path":"/a"},{"op":"removeFromSet","path":"/s","value":1}]""", "not an array", 1 },
        { """[{"op":"increment","path":"/a"},{"op":"max","path":"/a","value":true}]""", "number or a string", 1 },
        { """[{"op":"increment","path":"/a"},{"op":"min","path":"/s","value":1}]""", "cannot compare", 1 },
        { """[{"op":"increment","path":"/a"},{"op":"test","path":"/no/parent","value":1}]""", "'/no' does not exist", 1 },
    };

    [Theory]
    [MemberData(nameof(MalformedPatches))]
    public async Task BadInput_MalformedPatch_ThrowsInvalidPatchNamingTheProblem(string patchJson, string fragment, int operationIndex)
    {
        var (store, s) = await OpenAsync();
        await s.PutAsync("doc", J("""{"a":1,"arr":[1,2],"s":"text","o":{"x":1},"big":9223372036854775807}"""), cancellationToken: Ct);

        var e = await AssertRejectedAsync<InvalidPatchException>(store,
            async () => await s.PatchAsync("doc", JsonPatch.Parse(patchJson), cancellationToken: Ct), fragment);

        Assert.Equal(operationIndex, e.OperationIndex);
        if (operationIndex >= 0) Assert.Contains($"operation {operationIndex}", e.Message, StringComparison.Ordinal);
        Assert.Equal("invalid-patch", e.Code);
    }

    [Fact]
    public async Task BadInput_MalformedPatchInATransaction_AppliesNothing()
    {
        var (store, s) = await OpenAsync();
        await s.PutAsync("doc", J("""{"a":1}"""), cancellationToken: Ct);

        await AssertRejectedAsync<InvalidPatchException>(store, async () => await s.TransactAsync(new TxnRequest
        {
            Then = [TxnOp.Put("other", N(1)), TxnOp.PatchKey("doc", JsonPatch.Create().Remove("/missing"))],
        }, cancellationToken: Ct), "/missing");
    }

    [Fact]
    public async Task BadInput_ReadAtUnknownRevision_ThrowsUnknownRevisionNamingBothRevisions()
    {
        var (store, s) = await OpenAsync();
        await s.PutAsync("k", N(1), cancellationToken: Ct);
        var current = await store.GetRevisionAsync(Ct);
        var future = current + 1000;
        var text = future.ToString(CultureInfo.InvariantCulture);
        var now = current.ToString(CultureInfo.InvariantCulture);

        var get = await AssertRejectedAsync<UnknownRevisionException>(store, async () => await s.GetAsync("k", future, Ct), text, now);
        var list = await AssertRejectedAsync<UnknownRevisionException>(store,
            async () => await store.ListAsync(Ns, new ListRequest { AtRevision = future }, Ct), text, now);

        Assert.Equal(future, get.Requested);
        Assert.Equal(current, list.Current);
    }

    [Fact]
    public async Task BadInput_NegativeRevision_ThrowsInvalidRequest()
    {
        var (store, s) = await OpenAsync();
        await s.PutAsync("k", N(1), cancellationToken: Ct);

        await AssertRejectedAsync<InvalidRequestException>(store, async () => await s.GetAsync("k", -1, Ct), "-1");
        await AssertRejectedAsync<InvalidRequestException>(store, async () => await store.ListAsync(Ns, new ListRequest { AtRevision = -5 }, Ct), "-5");
        await AssertRejectedAsync<InvalidRequestException>(store,
            async () => await FirstEventAsync(store, new WatchRequest { FromRevision = -1 }), "FromRevision");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(10_001)]
    [InlineData(-3)]
    public async Task BadInput_ListLimitOutOfRange_ThrowsInvalidRequest(int limit)
    {
        var (store, s) = await OpenAsync();
        await AssertRejectedAsync<InvalidRequestException>(store,
            async () => await s.ListAsync(limit: limit, cancellationToken: Ct), "limit", limit.ToString(CultureInfo.InvariantCulture));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    public async Task BadInput_NonPositiveTtl_ThrowsInvalidRequest(int seconds)
    {
        var (store, s) = await OpenAsync();
        await AssertRejectedAsync<InvalidRequestException>(store,
            async () => await s.PutAsync("k", N(1), ttl: TimeSpan.FromSeconds(seconds), cancellationToken: Ct), "TTL", "'k'");
    }

    [Fact]
    public async Task BadInput_PutWithoutValue_ThrowsInvalidRequest()
    {
        var (store, s) = await OpenAsync();
        await AssertRejectedAsync<InvalidRequestException>(store, async () => await s.PutAsync("k", default(JsonElement), cancellationToken: Ct), "no value", "'k'");
    }

    [Fact]
    public async Task BadInput_NegativeExpectedVersion_IsRefused()
    {
        var (store, s) = await OpenAsync();
        Assert.Throws<ArgumentOutOfRangeException>(() => Expect.Version(-1));
        await AssertRejectedAsync<InvalidRequestException>(store,
            async () => await s.PutAsync("k", N(1), new Expectation(ExpectationKind.Version, -1), cancellationToken: Ct), "negative", "'k'");
    }

    [Fact]
    public async Task BadInput_OrderingCompareOnAValue_ThrowsInvalidRequest()
    {
        var (store, s) = await OpenAsync();
        await AssertRejectedAsync<InvalidRequestException>(store, async () => await s.TransactAsync(new TxnRequest
        {
            Compares = [TxnCompare.ValueEquals("k", N(1)) with { Op = CompareOp.Greater }],
            Then = [TxnOp.Put("k", N(1))],
        }, cancellationToken: Ct), "Equal");
    }

    [Fact]
    public async Task BadInput_InvalidFenceToken_ThrowsInvalidRequest()
    {
        var (store, s) = await OpenAsync();
        await AssertRejectedAsync<InvalidRequestException>(store,
            async () => await s.PutAsync("k", N(1), Expect.Fenced(new Fence("locks/x", 0)), cancellationToken: Ct), "fencing token", "locks/x");
    }

    [Fact]
    public async Task BadInput_HugeTransaction_ThrowsInvalidRequest()
    {
        var (store, s) = await OpenAsync();
        var ops = Enumerable.Range(0, 10_001).Select(i => TxnOp.Put($"k/{i}", N(i))).ToList();
        await AssertRejectedAsync<InvalidRequestException>(store, async () => await s.TransactAsync(new TxnRequest { Then = ops }, cancellationToken: Ct), "10000");
    }
}
