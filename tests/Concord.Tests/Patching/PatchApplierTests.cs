using System.Text.Json.Nodes;
using Concord.Patching;
using CsCheck;

namespace Concord.Tests.Patching;

public sealed class PatchApplierTests
{
    // ---- RFC 6902 appendix A ----------------------------------------------------------------

    [Theory]
    [InlineData("A.1 add object member", """{"foo":"bar"}""", """[{"op":"add","path":"/baz","value":"qux"}]""", """{"baz":"qux","foo":"bar"}""")]
    [InlineData("A.2 add array element", """{"foo":["bar","baz"]}""", """[{"op":"add","path":"/foo/1","value":"qux"}]""", """{"foo":["bar","qux","baz"]}""")]
    [InlineData("A.3 remove object member", """{"baz":"qux","foo":"bar"}""", """[{"op":"remove","path":"/baz"}]""", """{"foo":"bar"}""")]
    [InlineData("A.4 remove array element", """{"foo":["bar","qux","baz"]}""", """[{"op":"remove","path":"/foo/1"}]""", """{"foo":["bar","baz"]}""")]
    [InlineData("A.5 replace value", """{"baz":"qux","foo":"bar"}""", """[{"op":"replace","path":"/baz","value":"boo"}]""", """{"baz":"boo","foo":"bar"}""")]
    [InlineData("A.6 move value", """{"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}""", """[{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]""", """{"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}""")]
    [InlineData("A.7 move array element", """{"foo":["all","grass","cows","eat"]}""", """[{"op":"move","from":"/foo/1","path":"/foo/3"}]""", """{"foo":["all","cows","eat","grass"]}""")]
    [InlineData("A.8 test success", """{"baz":"qux","foo":["a",2,"c"]}""", """[{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}]""", """{"baz":"qux","foo":["a",2,"c"]}""")]
    [InlineData("A.10 add nested member object", """{"foo":"bar"}""", """[{"op":"add","path":"/child","value":{"grandchild":{}}}]""", """{"foo":"bar","child":{"grandchild":{}}}""")]
    [InlineData("A.11 ignore unrecognized elements", """{"foo":"bar"}""", """[{"op":"add","path":"/baz","value":"qux","xyz":123}]""", """{"foo":"bar","baz":"qux"}""")]
    [InlineData("A.14 escape ordering", """{"/":9,"~1":10}""", """[{"op":"test","path":"/~01","value":10}]""", """{"/":9,"~1":10}""")]
    [InlineData("A.16 add array value", """{"foo":["bar"]}""", """[{"op":"add","path":"/foo/-","value":["abc","def"]}]""", """{"foo":["bar",["abc","def"]]}""")]
    public void Apply_Rfc6902AppendixA_ProducesExpectedDocument(string example, string document, string patch, string expected)
    {
        var result = Apply(document, patch);

        AssertJson(expected, result, example);
    }

    [Theory]
    [InlineData("A.9 test error", """{"baz":"qux"}""", """[{"op":"test","path":"/baz","value":"bar"}]""")]
    [InlineData("A.15 string is not number", """{"/":9,"~1":10}""", """[{"op":"test","path":"/~01","value":"10"}]""")]
    public void Apply_Rfc6902AppendixATestFailure_ReportsFailedTest(string example, string document, string patch)
    {
        PatchApplier.Apply(JsonNode.Parse(document), JsonPatch.Parse(patch), out var failedTestIndex);

        Assert.True(failedTestIndex == 0, $"{example}: expected the test at 0 to fail, got {failedTestIndex}");
    }

    [Fact]
    public void Apply_Rfc6902AppendixA12AddToNonexistentTarget_Throws()
    {
        var e = Invalid("""{"foo":"bar"}""", """[{"op":"add","path":"/baz/bat","value":"qux"}]""");

        Assert.Equal(0, e.OperationIndex);
        Assert.Contains("'/baz' does not exist", e.Message, StringComparison.Ordinal);
    }

    // ---- RFC 6902 details ---------------------------------------------------------------------

    [Theory]
    [InlineData("""{"a":1}""", """[{"op":"add","path":"","value":[1,2]}]""", "[1,2]")]
    [InlineData("""{"a":1}""", """[{"op":"replace","path":"","value":"x"}]""", "\"x\"")]
    [InlineData("""{"a":1}""", """[{"op":"add","path":"/a","value":2}]""", """{"a":2}""")]
    [InlineData("""{"a":[1,2]}""", """[{"op":"add","path":"/a/2","value":3}]""", """{"a":[1,2,3]}""")]
    [InlineData("""{"a":[1,2]}""", """[{"op":"add","path":"/a/0","value":0}]""", """{"a":[0,1,2]}""")]
    [InlineData("""{"a":[1,2]}""", """[{"op":"replace","path":"/a/1","value":{"b":true}}]""", """{"a":[1,{"b":true}]}""")]
    [InlineData("""{"a":[1,2]}""", """[{"op":"remove","path":"/a/1"}]""", """{"a":[1]}""")]
    [InlineData("""{"a":null}""", """[{"op":"replace","path":"/a","value":3}]""", """{"a":3}""")]
    [InlineData("""{"a":{"b":1}}""", """[{"op":"copy","from":"/a","path":"/a/c"}]""", """{"a":{"b":1,"c":{"b":1}}}""")]
    [InlineData("""{"a":[1,2,3]}""", """[{"op":"copy","from":"/a/0","path":"/a/-"}]""", """{"a":[1,2,3,1]}""")]
    [InlineData("""{"a":{"b":1}}""", """[{"op":"move","from":"/a/b","path":"/a"}]""", """{"a":1}""")]
    [InlineData("""{"a":{"b":1}}""", """[{"op":"move","from":"/a","path":"/a"}]""", """{"a":{"b":1}}""")]
    [InlineData("""{"a":{"b":1}}""", """[{"op":"move","from":"/a","path":""}]""", """{"b":1}""")]
    [InlineData("""{"a":1}""", """[{"op":"move","from":"/a","path":"/ab"}]""", """{"ab":1}""")]
    [InlineData("""{}""", """[{"op":"add","path":"/a~1b","value":1},{"op":"add","path":"/m~0n","value":2},{"op":"add","path":"/","value":3}]""", """{"a/b":1,"m~n":2,"":3}""")]
    [InlineData("""{"":{"":5}}""", """[{"op":"replace","path":"//","value":6}]""", """{"":{"":6}}""")]
    public void Apply_RfcOperation_ProducesExpectedDocument(string document, string patch, string expected)
    {
        AssertJson(expected, Apply(document, patch));
    }

    [Fact]
    public void Apply_NullDocumentAddAtRoot_ReturnsValue()
    {
        var result = PatchApplier.Apply(null, JsonPatch.Parse("""[{"op":"add","path":"","value":{"x":1}}]"""), out var failed);

        Assert.Equal(-1, failed);
        AssertJson("""{"x":1}""", result);
    }

    [Fact]
    public void Apply_CopyThenChangeSource_CopyIsIndependent()
    {
        var result = Apply("""{"a":{"b":1}}""", """[{"op":"copy","from":"/a","path":"/c"},{"op":"add","path":"/a/x","value":2}]""");

        AssertJson("""{"a":{"b":1,"x":2},"c":{"b":1}}""", result);
    }

    [Fact]
    public void Apply_MovedNodeChangedLater_OnlyTargetChanges()
    {
        // The moved node is re-parented, not copied; a later op through the new path must see it.
        var result = Apply("""{"a":{"b":1}}""", """[{"op":"move","from":"/a","path":"/c"},{"op":"add","path":"/c/x","value":2}]""");

        AssertJson("""{"c":{"b":1,"x":2}}""", result);
    }

    [Theory]
    [InlineData("""{"n":1}""", "/n", "1.0")]
    [InlineData("""{"n":1.5}""", "/n", "15e-1")]
    [InlineData("""{"o":{"a":1,"b":[1,{"c":null}]}}""", "/o", """{"b":[1.0,{"c":null}],"a":1}""")]
    [InlineData("""{"s":"x"}""", "/s", "\"x\"")]
    [InlineData("""{"z":null}""", "/z", "null")]
    [InlineData("""[1,2]""", "", "[1,2]")]
    public void Apply_TestWithEqualValue_Succeeds(string document, string path, string value)
    {
        var patch = new JsonPatch([new PatchOperation(PatchOp.Test, path, JsonNode.Parse(value))]);

        var result = PatchApplier.Apply(JsonNode.Parse(document), patch, out var failed);

        Assert.Equal(-1, failed);
        AssertJson(document, result);
    }

    [Theory]
    [InlineData("""{"n":1}""", "/n", "1.5")]
    [InlineData("""{"a":[1,2]}""", "/a", "[2,1]")]
    [InlineData("""{"o":{"a":1}}""", "/o", """{"a":1,"b":2}""")]
    [InlineData("""{"s":"x"}""", "/s", "\"X\"")]
    [InlineData("""{"t":true}""", "/t", "1")]
    [InlineData("""{}""", "/missing", "null")]
    [InlineData("""{"a":[1]}""", "/a/1", "1")]
    [InlineData("""{"a":[1]}""", "/a/-", "1")]
    public void Apply_TestWithUnequalOrMissingValue_ReportsFailedTest(string document, string path, string value)
    {
        var patch = new JsonPatch([new PatchOperation(PatchOp.Test, path, JsonNode.Parse(value))]);

        PatchApplier.Apply(JsonNode.Parse(document), patch, out var failed);

        Assert.Equal(0, failed);
    }

    [Fact]
    public void Apply_SecondTestFails_ReportsItsIndex()
    {
        var patch = JsonPatch.Parse("""
            [{"op":"add","path":"/a","value":1},
             {"op":"test","path":"/a","value":1},
             {"op":"test","path":"/a","value":2},
             {"op":"add","path":"/b","value":1}]
            """);

        PatchApplier.Apply(new JsonObject(), patch, out var failed);

        Assert.Equal(2, failed);
    }

    [Fact]
    public void Apply_TestSeesEarlierOperations_Succeeds()
    {
        var result = Apply("{}", """[{"op":"increment","path":"/n","value":2},{"op":"test","path":"/n","value":2}]""");

        AssertJson("""{"n":2}""", result);
    }

    // ---- increment ----------------------------------------------------------------------------

    [Theory]
    [InlineData("""{"n":5}""", "/n", "3", """{"n":8}""")]
    [InlineData("""{"n":5}""", "/n", "-7", """{"n":-2}""")]
    [InlineData("""{}""", "/n", "4", """{"n":4}""")]
    [InlineData("""{}""", "/a/b/c", "2", """{"a":{"b":{"c":2}}}""")]
    [InlineData("""{"a":{"x":1}}""", "/a/b/c", "2", """{"a":{"x":1,"b":{"c":2}}}""")]
    [InlineData("""{"a":[1,2]}""", "/a/1", "5", """{"a":[1,7]}""")]
    [InlineData("""{"a":[{"n":1}]}""", "/a/0/n", "1", """{"a":[{"n":2}]}""")]
    [InlineData("""{}""", "/a/0", "1", """{"a":{"0":1}}""")]
    [InlineData("""{"n":1}""", "/n", "0.5", """{"n":1.5}""")]
    [InlineData("""{"n":0.25}""", "/n", "0.5", """{"n":0.75}""")]
    [InlineData("""{"n":9007199254740993}""", "/n", "1", """{"n":9007199254740994}""")]
    [InlineData("""{"n":9007199254740993.0}""", "/n", "1", """{"n":9007199254740994}""")]
    [InlineData("""{"n":1e19}""", "/n", "1", """{"n":1e19}""")]
    [InlineData("""{"n":-9223372036854775807}""", "/n", "-1", """{"n":-9223372036854775808}""")]
    public void Increment_Target_AddsOperand(string document, string path, string by, string expected)
    {
        var result = ApplyOne(document, PatchOp.Increment, path, JsonNode.Parse(by));

        AssertJson(expected, result);
    }

    [Fact]
    public void Increment_NullOperand_AddsOne()
    {
        var result = ApplyOne("""{"n":41}""", PatchOp.Increment, "/n", null);

        AssertJson("""{"n":42}""", result);
    }

    [Theory]
    [InlineData("""{"n":5}""", "2", "7")]
    [InlineData("""{"n":5.0}""", "2", "7")]
    [InlineData("""{"n":5}""", "2e0", "7")]
    [InlineData("""{"n":5}""", "0.5", "5.5")]
    public void Increment_Integers_ProducesIntegerSpelling(string document, string by, string expectedText)
    {
        var result = ApplyOne(document, PatchOp.Increment, "/n", JsonNode.Parse(by));

        Assert.Equal(expectedText, result!["n"]!.ToJsonString());
    }

    [Fact]
    public void Increment_NullDocument_CreatesRootObject()
    {
        var result = ApplyOne(null, PatchOp.Increment, "/stats/hits", JsonValue.Create(1));

        AssertJson("""{"stats":{"hits":1}}""", result);
    }

    [Fact]
    public void Increment_NullDocumentAtRoot_StartsAtZero()
    {
        var result = ApplyOne(null, PatchOp.Increment, "", JsonValue.Create(3));

        AssertJson("3", result);
    }

    [Fact]
    public void Increment_ClrPrimitiveNumbers_AreRead()
    {
        var document = new JsonObject
        {
            ["i"] = 1,
            ["l"] = 2L,
            ["d"] = 2.5,
            ["m"] = 3.5m,
            ["b"] = (byte)4,
            ["f"] = 0.5f,
        };
        var patch = new JsonPatch(
        [
            new(PatchOp.Increment, "/i", JsonValue.Create((byte)1)),
            new(PatchOp.Increment, "/l", JsonValue.Create(1)),
            new(PatchOp.Increment, "/d", JsonValue.Create(0.5m)),
            new(PatchOp.Increment, "/m", JsonValue.Create(1.0)),
            new(PatchOp.Increment, "/b", JsonValue.Create(1UL)),
            new(PatchOp.Increment, "/f", JsonValue.Create(1L)),
        ]);

        var result = PatchApplier.Apply(document, patch, out _);

        AssertJson("""{"i":2,"l":3,"d":3,"m":4.5,"b":5,"f":1.5}""", result);
    }

    // Overflow of a 64-bit integer is an error by design (no silent fallback to an imprecise double).
    [Theory]
    [InlineData("9223372036854775807", "1")]
    [InlineData("-9223372036854775808", "-1")]
    [InlineData("4611686018427387904", "4611686018427387904")]
    public void Increment_LongOverflow_Throws(string start, string by)
    {
        var e = InvalidOne("{\"n\":" + start + "}", PatchOp.Increment, "/n", JsonNode.Parse(by));

        Assert.Contains("'/n'", e.Message, StringComparison.Ordinal);
        Assert.Contains("overflows a 64-bit integer", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Increment_DoubleOverflow_Throws()
    {
        var e = InvalidOne("""{"n":1.5e308}""", PatchOp.Increment, "/n", JsonNode.Parse("1.5e308"));

        Assert.Contains("'/n'", e.Message, StringComparison.Ordinal);
        Assert.Contains("overflows a double", e.Message, StringComparison.Ordinal);
    }

    // ---- append, addToSet, removeFromSet ------------------------------------------------------

    [Theory]
    [InlineData(PatchOp.Append, """{"a":[1]}""", "/a", "2", """{"a":[1,2]}""")]
    [InlineData(PatchOp.Append, """{"a":[1]}""", "/a", "1", """{"a":[1,1]}""")]
    [InlineData(PatchOp.Append, """{"a":[1]}""", "/a", "[2,3]", """{"a":[1,[2,3]]}""")]
    [InlineData(PatchOp.Append, """{"a":[1]}""", "/a", "null", """{"a":[1,null]}""")]
    [InlineData(PatchOp.Append, """{}""", "/a", "[2,3]", """{"a":[[2,3]]}""")]
    [InlineData(PatchOp.Append, """{}""", "/x/y/a", "{\"k\":1}", """{"x":{"y":{"a":[{"k":1}]}}}""")]
    [InlineData(PatchOp.Append, """{"a":[[0]]}""", "/a/0", "1", """{"a":[[0,1]]}""")]
    [InlineData(PatchOp.AddToSet, """{"a":[1]}""", "/a", "2", """{"a":[1,2]}""")]
    [InlineData(PatchOp.AddToSet, """{"a":[1]}""", "/a", "1.0", """{"a":[1]}""")]
    [InlineData(PatchOp.AddToSet, """{"a":[{"x":1,"y":2}]}""", "/a", "{\"y\":2,\"x\":1}", """{"a":[{"x":1,"y":2}]}""")]
    [InlineData(PatchOp.AddToSet, """{"a":[[1,2]]}""", "/a", "[2,1]", """{"a":[[1,2],[2,1]]}""")]
    [InlineData(PatchOp.AddToSet, """{}""", "/x/a", "\"t\"", """{"x":{"a":["t"]}}""")]
    [InlineData(PatchOp.RemoveFromSet, """{"a":[1,2,1.0,3,1]}""", "/a", "1", """{"a":[2,3]}""")]
    [InlineData(PatchOp.RemoveFromSet, """{"a":[{"x":1,"y":2},{"x":2}]}""", "/a", "{\"y\":2,\"x\":1}", """{"a":[{"x":2}]}""")]
    [InlineData(PatchOp.RemoveFromSet, """{"a":[1,2]}""", "/a", "5", """{"a":[1,2]}""")]
    [InlineData(PatchOp.RemoveFromSet, """{"a":[null,1]}""", "/a", "null", """{"a":[1]}""")]
    [InlineData(PatchOp.RemoveFromSet, """{}""", "/a", "1", """{}""")]
    [InlineData(PatchOp.RemoveFromSet, """{"k":1}""", "/x/y/a", "1", """{"k":1}""")]
    public void ArrayOperation_Target_ProducesExpectedDocument(PatchOp op, string document, string path, string operand, string expected)
    {
        var result = ApplyOne(document, op, path, JsonNode.Parse(operand));

        AssertJson(expected, result);
    }

    [Fact]
    public void RemoveFromSet_NullDocument_StaysNull()
    {
        var result = ApplyOne(null, PatchOp.RemoveFromSet, "/a/b", JsonValue.Create(1));

        Assert.Null(result);
    }

    [Fact]
    public void RemoveFromSet_NullDocumentAtRoot_StaysNull()
    {
        var result = ApplyOne(null, PatchOp.RemoveFromSet, "", JsonValue.Create(1));

        Assert.Null(result);
    }

    [Fact]
    public void Append_NullDocumentAtRoot_CreatesArray()
    {
        var result = ApplyOne(null, PatchOp.Append, "", JsonValue.Create("x"));

        AssertJson("""["x"]""", result);
    }

    // ---- max, min -----------------------------------------------------------------------------

    [Theory]
    [InlineData(PatchOp.Max, """{"n":3}""", "5", "5")]
    [InlineData(PatchOp.Max, """{"n":3}""", "2", "3")]
    [InlineData(PatchOp.Max, """{"n":3}""", "3.5", "3.5")]
    [InlineData(PatchOp.Max, """{"n":3}""", "2.5", "3")]
    [InlineData(PatchOp.Max, """{"n":-1.5}""", "-1", "-1")]
    [InlineData(PatchOp.Max, """{"n":9223372036854775807}""", "9223372036854775808.0", "9223372036854775808.0")]
    [InlineData(PatchOp.Max, """{"n":9007199254740993}""", "9007199254740992", "9007199254740993")]
    [InlineData(PatchOp.Max, """{"n":"apple"}""", "\"banana\"", "\"banana\"")]
    [InlineData(PatchOp.Max, """{"n":"a"}""", "\"B\"", "\"a\"")]
    [InlineData(PatchOp.Max, """{}""", "7", "7")]
    [InlineData(PatchOp.Min, """{"n":3}""", "5", "3")]
    [InlineData(PatchOp.Min, """{"n":3}""", "2", "2")]
    [InlineData(PatchOp.Min, """{"n":3}""", "2.5", "2.5")]
    [InlineData(PatchOp.Min, """{"n":-9223372036854775808}""", "-9.3e18", "-9.3e18")]
    [InlineData(PatchOp.Min, """{"n":"a"}""", "\"B\"", "\"B\"")]
    [InlineData(PatchOp.Min, """{}""", "\"z\"", "\"z\"")]
    public void MaxMin_Target_KeepsExtreme(PatchOp op, string document, string operand, string expected)
    {
        var result = ApplyOne(document, op, "/n", JsonNode.Parse(operand));

        AssertJson(expected, result!["n"]);
    }

    [Fact]
    public void Max_MissingIntermediates_CreatesObjects()
    {
        var result = ApplyOne("{}", PatchOp.Max, "/a/b", JsonValue.Create(4));

        AssertJson("""{"a":{"b":4}}""", result);
    }

    [Fact]
    public void Max_ClrGuidAgainstString_ComparesAsString()
    {
        var document = new JsonObject { ["s"] = "0" };

        var result = PatchApplier.Apply(document, new JsonPatch([new(PatchOp.Max, "/s", JsonValue.Create(Guid.Empty))]), out _);

        Assert.Equal("00000000-0000-0000-0000-000000000000", result!["s"]!.GetValue<Guid>().ToString());
    }

    // ---- errors -------------------------------------------------------------------------------

    [Theory]
    // pointer syntax
    [InlineData("{}", """{"op":"add","path":"a","value":1}""", "'a' is not a JSON Pointer")]
    [InlineData("{}", """{"op":"add","path":"/a~2","value":1}""", "'/a~2' is not a JSON Pointer")]
    [InlineData("{}", """{"op":"add","path":"/a~","value":1}""", "'/a~' is not a JSON Pointer")]
    [InlineData("""{"a":1}""", """{"op":"move","from":"a","path":"/b"}""", "'a' is not a JSON Pointer")]
    [InlineData("""{"a":[1]}""", """{"op":"add","path":"/a/01","value":1}""", "'/a/01'")]
    [InlineData("""{"a":[1]}""", """{"op":"add","path":"/a/x","value":1}""", "'/a/x'")]
    [InlineData("""{"a":[1]}""", """{"op":"add","path":"/a/-1","value":1}""", "'/a/-1'")]
    [InlineData("""{"a":[1]}""", """{"op":"test","path":"/a/01","value":1}""", "'/a/01'")]
    // missing targets and parents
    [InlineData("""{"a":1}""", """{"op":"remove","path":"/b"}""", "'/b' does not exist")]
    [InlineData("""{"a":1}""", """{"op":"remove","path":"/x/y"}""", "'/x' does not exist")]
    [InlineData("""{"a":[1]}""", """{"op":"remove","path":"/a/1"}""", "'/a/1' does not exist")]
    [InlineData("""{"a":[1]}""", """{"op":"remove","path":"/a/-"}""", "'/a/-' does not exist")]
    [InlineData("""{"a":[1]}""", """{"op":"remove","path":"/a/99999999999"}""", "'/a/99999999999' does not exist")]
    [InlineData("""{"a":1}""", """{"op":"remove","path":""}""", "remove '': cannot remove the whole document")]
    [InlineData("""{"a":1}""", """{"op":"replace","path":"/b","value":1}""", "'/b' does not exist")]
    [InlineData("""{"a":[1]}""", """{"op":"replace","path":"/a/1","value":1}""", "'/a/1' does not exist")]
    [InlineData("""{"a":[1]}""", """{"op":"add","path":"/a/2","value":1}""", "'/a/2' is past the end")]
    [InlineData("""{"a":[[1]]}""", """{"op":"add","path":"/a/3/0","value":1}""", "'/a/3' does not exist")]
    [InlineData("""{"a":1}""", """{"op":"move","from":"/x","path":"/b"}""", "'/x' does not exist")]
    [InlineData("""{"a":1}""", """{"op":"move","from":"/x","path":"/x"}""", "'/x' does not exist")]
    [InlineData("""{"a":1}""", """{"op":"copy","from":"/x/y","path":"/b"}""", "'/x' does not exist")]
    [InlineData("""{"a":1}""", """{"op":"move","from":"/a","path":"/x/y"}""", "'/x' does not exist")]
    [InlineData("""{"a":1}""", """{"op":"test","path":"/x/y","value":1}""", "'/x' does not exist")]
    // move into own child
    [InlineData("""{"a":{"b":1}}""", """{"op":"move","from":"/a","path":"/a/b/c"}""", "cannot move '/a' into its own child '/a/b/c'")]
    [InlineData("""{"a":{"b":1}}""", """{"op":"move","from":"","path":"/a"}""", "cannot move '' into its own child '/a'")]
    // containers of the wrong type
    [InlineData("""{"a":1}""", """{"op":"add","path":"/a/b","value":1}""", "'/a' is a number, not an object or array")]
    [InlineData("""{"a":"s"}""", """{"op":"add","path":"/a/b/c","value":1}""", "'/a' is a string, not an object or array")]
    [InlineData("""{"a":null}""", """{"op":"increment","path":"/a/b"}""", "'/a' is null, not an object or array")]
    [InlineData("""{"a":5}""", """{"op":"increment","path":"/a/b/c"}""", "'/a' is a number, not an object or array")]
    // extension ops: types and positions
    [InlineData("""{"n":"5"}""", """{"op":"increment","path":"/n","value":1}""", "'/n' is a string, not a number")]
    [InlineData("""{"n":{}}""", """{"op":"increment","path":"/n","value":1}""", "'/n' is an object, not a number")]
    [InlineData("""{"n":null}""", """{"op":"increment","path":"/n","value":1}""", "'/n' is null, not a number")]
    [InlineData("""{"n":true}""", """{"op":"increment","path":"/n","value":1}""", "'/n' is a boolean, not a number")]
    [InlineData("""{"n":1e400}""", """{"op":"increment","path":"/n","value":1}""", "'/n' is a number outside the range of a double")]
    [InlineData("""{"n":1}""", """{"op":"increment","path":"/n","value":"1"}""", "increment '/n': the operand is a string, not a number")]
    [InlineData("""{}""", """{"op":"increment","path":"/n","value":[1]}""", "increment '/n': the operand is an array, not a number")]
    [InlineData("""{"a":[1]}""", """{"op":"increment","path":"/a/1","value":1}""", "'/a/1' does not exist")]
    [InlineData("""{"a":[1]}""", """{"op":"increment","path":"/a/-","value":1}""", "'/a/-' does not exist")]
    [InlineData("""{"a":[]}""", """{"op":"increment","path":"/a/0/n","value":1}""", "'/a/0' does not exist")]
    [InlineData("""{"a":1}""", """{"op":"append","path":"/a","value":1}""", "'/a' is a number, not an array")]
    [InlineData("""{"a":{}}""", """{"op":"addToSet","path":"/a","value":1}""", "'/a' is an object, not an array")]
    [InlineData("""{"a":"x"}""", """{"op":"removeFromSet","path":"/a","value":1}""", "'/a' is a string, not an array")]
    [InlineData("""{"a":[]}""", """{"op":"removeFromSet","path":"/a/0/b","value":1}""", "'/a/0' does not exist")]
    [InlineData("""{"n":1}""", """{"op":"max","path":"/n","value":"1"}""", "cannot compare a number at '/n' with a string operand")]
    [InlineData("""{"n":"x"}""", """{"op":"min","path":"/n","value":1}""", "cannot compare a string at '/n' with a number operand")]
    [InlineData("""{"n":{}}""", """{"op":"max","path":"/n","value":1}""", "cannot compare an object at '/n'")]
    [InlineData("""{"n":1}""", """{"op":"max","path":"/n","value":true}""", "max '/n': the operand is a boolean; max takes a number or a string")]
    [InlineData("""{}""", """{"op":"min","path":"/n","value":null}""", "min '/n': the operand is null; min takes a number or a string")]
    public void Apply_InvalidOperation_ThrowsWithIndexAndPath(string document, string operation, string expectedMessage)
    {
        // A valid first operation makes the reported index meaningful.
        var e = Invalid(document, $$"""[{"op":"add","path":"/_","value":0},{{operation}}]""");

        Assert.Equal(1, e.OperationIndex);
        Assert.Contains(expectedMessage, e.Message, StringComparison.Ordinal);
        Assert.StartsWith("Patch operation 1: ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Apply_MoveWithoutFrom_Throws()
    {
        var patch = new JsonPatch([new PatchOperation(PatchOp.Move, "/a")]);

        var e = Assert.Throws<InvalidPatchException>(() => PatchApplier.Apply(new JsonObject { ["a"] = 1 }, patch, out _));

        Assert.Equal(0, e.OperationIndex);
        Assert.Contains("move '/a': 'move' needs 'from'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Apply_AddBelowNullRoot_Throws()
    {
        var e = Assert.Throws<InvalidPatchException>(() =>
            PatchApplier.Apply(null, JsonPatch.Parse("""[{"op":"add","path":"/a","value":1}]"""), out _));

        Assert.Contains("add '/a': the document root is null", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Apply_MoveErrorMessage_NamesBothPointers()
    {
        var e = Invalid("{}", """[{"op":"copy","from":"/x","path":"/y"}]""");

        Assert.Contains("copy from '/x' to '/y'", e.Message, StringComparison.Ordinal);
    }

    // ---- operands are never adopted -----------------------------------------------------------

    [Theory]
    [InlineData(PatchOp.Add, "/v")]
    [InlineData(PatchOp.Replace, "/old")]
    [InlineData(PatchOp.Replace, "")]
    [InlineData(PatchOp.Append, "/list")]
    [InlineData(PatchOp.Append, "/fresh")]
    [InlineData(PatchOp.AddToSet, "/list")]
    [InlineData(PatchOp.AddToSet, "/fresh")]
    [InlineData(PatchOp.Max, "/v")]
    [InlineData(PatchOp.Min, "/v")]
    [InlineData(PatchOp.Max, "/lo")]
    [InlineData(PatchOp.Min, "/hi")]
    public void Apply_SamePatchTwice_LeavesOperandUntouched(PatchOp op, string path)
    {
        var operand = JsonNode.Parse("""{"deep":[1,2]}""")!;
        operand = op is PatchOp.Max or PatchOp.Min ? JsonValue.Create("m") : operand;
        var patch = new JsonPatch([new PatchOperation(op, path, operand)]);

        const string Document = """{"old":1,"list":[0],"lo":"a","hi":"z"}""";

        var first = PatchApplier.Apply(JsonNode.Parse(Document), patch, out _);
        var second = PatchApplier.Apply(JsonNode.Parse(Document), patch, out _);

        Assert.Null(operand.Parent);
        Assert.True(JsonNode.DeepEquals(first, second));
        var stored = path.Length == 0 ? first : first![path[1..]];
        if (op is PatchOp.Append or PatchOp.AddToSet) stored = stored!.AsArray()[^1];
        Assert.True(JsonNode.DeepEquals(operand, stored));
        Assert.False(ReferenceEquals(operand, stored));
    }

    [Fact]
    public void Apply_ResultMutatedLater_PatchOperandUnchanged()
    {
        var patch = JsonPatch.Parse("""[{"op":"add","path":"/o","value":{"k":1}}]""");

        var result = PatchApplier.Apply(new JsonObject(), patch, out _)!;
        result["o"]!["k"] = 2;

        Assert.Equal("""{"k":1}""", patch.Operations[0].Value!.ToJsonString());
    }

    // ---- properties ---------------------------------------------------------------------------

    [Fact]
    public void AddThenRemove_FreshKey_ReturnsEqualDocument()
    {
        Gen.Select(JsonObjects(depth: 2), Gen.String[0, 6], Json(depth: 1)).Sample((document, key, value) =>
        {
            if (document.ContainsKey(key)) return;
            var original = document.DeepClone();
            var pointer = "/" + key.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);

            var added = PatchApplier.Apply(document, new JsonPatch([new(PatchOp.Add, pointer, value)]), out _)!.AsObject();
            Assert.True(added.TryGetPropertyValue(key, out var stored) && JsonNode.DeepEquals(stored, value));
            Assert.Equal(original.AsObject().Count + 1, added.Count);

            var removed = PatchApplier.Apply(added, new JsonPatch([new(PatchOp.Remove, pointer)]), out _);
            Assert.True(JsonNode.DeepEquals(original, removed));
        });
    }

    [Fact]
    public void Increment_RandomIntegers_SumsExactly()
    {
        Gen.Long[-1_000_000_000_000, 1_000_000_000_000].Array[1, 30].Sample(values =>
        {
            var operations = Array.ConvertAll(values, v => new PatchOperation(PatchOp.Increment, "/c/n", JsonValue.Create(v)));

            var result = PatchApplier.Apply(new JsonObject(), new JsonPatch(operations), out _);

            Assert.Equal(values.Sum(), result!["c"]!["n"]!.GetValue<long>());
        });
    }

    [Fact]
    public void Increment_RandomLongs_SumsOrReportsOverflow()
    {
        Gen.Select(Gen.Long, Gen.Long).Sample((a, b) =>
        {
            var exact = (Int128)a + b;
            var patch = new JsonPatch([new(PatchOp.Increment, "/n", JsonValue.Create(b))]);

            if (exact >= long.MinValue && exact <= long.MaxValue)
            {
                var result = PatchApplier.Apply(new JsonObject { ["n"] = a }, patch, out _);
                Assert.Equal((long)exact, result!["n"]!.GetValue<long>());
            }
            else
            {
                Assert.Throws<InvalidPatchException>(() => PatchApplier.Apply(new JsonObject { ["n"] = a }, patch, out _));
            }
        });
    }

    [Fact]
    public void MaxMin_RandomIntegers_MatchLinq()
    {
        Gen.Long.Array[1, 20].Sample(values =>
        {
            var operations = new List<PatchOperation>();
            foreach (var v in values)
            {
                operations.Add(new(PatchOp.Max, "/max", JsonValue.Create(v)));
                operations.Add(new(PatchOp.Min, "/min", JsonValue.Create(v)));
            }

            var result = PatchApplier.Apply(new JsonObject(), new JsonPatch(operations), out _)!;

            Assert.Equal(values.Max(), result["max"]!.GetValue<long>());
            Assert.Equal(values.Min(), result["min"]!.GetValue<long>());
        });
    }

    [Fact]
    public void AddToSet_RandomValues_HoldsEachDistinctValueOnce()
    {
        Gen.Int[0, 5].Array[0, 30].Sample(values =>
        {
            var operations = Array.ConvertAll(values, v => new PatchOperation(PatchOp.AddToSet, "/s", JsonValue.Create(v)));
            operations = [new(PatchOp.Add, "/s", new JsonArray()), .. operations];

            var set = PatchApplier.Apply(new JsonObject(), new JsonPatch(operations), out _)!["s"]!.AsArray();

            Assert.Equal(values.Distinct(), set.Select(n => n!.GetValue<int>()));
        });
    }

    // ---- helpers ------------------------------------------------------------------------------

    private static JsonNode? Apply(string document, string patch)
    {
        var result = PatchApplier.Apply(JsonNode.Parse(document), JsonPatch.Parse(patch), out var failed);
        Assert.Equal(-1, failed);
        return result;
    }

    private static JsonNode? ApplyOne(string? document, PatchOp op, string path, JsonNode? operand)
    {
        var result = PatchApplier.Apply(document is null ? null : JsonNode.Parse(document), new JsonPatch([new(op, path, operand)]), out var failed);
        Assert.Equal(-1, failed);
        return result;
    }

    private static InvalidPatchException Invalid(string document, string patch) =>
        Assert.Throws<InvalidPatchException>(() => PatchApplier.Apply(JsonNode.Parse(document), JsonPatch.Parse(patch), out _));

    private static InvalidPatchException InvalidOne(string document, PatchOp op, string path, JsonNode? operand)
    {
        var e = Assert.Throws<InvalidPatchException>(() =>
            PatchApplier.Apply(JsonNode.Parse(document), new JsonPatch([new(op, path, operand)]), out _));
        Assert.Equal(0, e.OperationIndex);
        return e;
    }

    private static void AssertJson(string expected, JsonNode? actual, string? because = null) =>
        Assert.True(
            JsonNode.DeepEquals(JsonNode.Parse(expected), actual),
            $"{because} expected {expected}, got {actual?.ToJsonString() ?? "null"}");

    private static readonly Gen<JsonNode?> Leaf = Gen.OneOf(
        Gen.Long.Select(v => (JsonNode?)JsonValue.Create(v)),
        Gen.Double[-1e6, 1e6].Select(v => (JsonNode?)JsonValue.Create(v)),
        Gen.Bool.Select(v => (JsonNode?)JsonValue.Create(v)),
        Gen.String[0, 8].Select(v => (JsonNode?)JsonValue.Create(v)),
        Gen.Const((JsonNode?)null));

    private static Gen<JsonNode?> Json(int depth) => depth == 0
        ? Leaf
        : Gen.OneOf(
            Leaf,
            JsonObjects(depth - 1).Select(o => (JsonNode?)o),
            Json(depth - 1).Array[0, 4].Select(items => (JsonNode?)new JsonArray(items)));

    private static Gen<JsonObject> JsonObjects(int depth) =>
        Gen.Select(Gen.String[0, 6].Array[0, 5], Json(depth).Array[5], (keys, values) =>
        {
            var obj = new JsonObject();
            for (var i = 0; i < keys.Length; i++) obj[keys[i]] = values[i];
            return obj;
        });
}
