using System.Text;
using Concord.Lab.History;
using Concord.Lab.Tests.Support;

namespace Concord.Lab.Tests.History;

public sealed class HistoryFormatTests
{
    private static string GoldenPath => Path.Combine(AppContext.BaseDirectory, "Golden", "history-v1.jsonl");

    [Fact]
    public void RoundTrip_GoldenFile_IsByteForByteIdentical()
    {
        var original = File.ReadAllBytes(GoldenPath);
        var history = HistoryReader.ReadFile(GoldenPath);

        using var buffer = new MemoryStream();
        using (var writer = new StreamWriter(buffer, new UTF8Encoding(false)) { NewLine = "\n" })
        {
            HistoryWriter.Write(history, writer);
        }

        Assert.Equal(Encoding.UTF8.GetString(original), Encoding.UTF8.GetString(buffer.ToArray()));
        Assert.Equal(original, buffer.ToArray());
    }

    [Fact]
    public void Read_GoldenFile_ParsesEveryField()
    {
        var history = HistoryReader.ReadFile(GoldenPath);

        Assert.Equal("7f3a-2", history.Meta.Seed);
        Assert.Equal("pct", history.Meta.Strategy);
        Assert.Equal("accounts", history.Meta.Workload);
        Assert.Equal("cas-register", history.Meta.Model);
        Assert.Equal(["agents", "depth"], history.Meta.Fields.Select(f => f.Key));
        Assert.Equal(21, history.Operations.Count);

        var cas = history.Operations[9];
        Assert.Equal((9L, 1850L, 3, "fees", OperationType.Ok, "cas", "acct/42", 4L),
            (cas.Index, cas.Time, cas.Process, cas.Agent, cas.Type, cas.F, cas.Key, cas.Version));
        Assert.Equal("[3,4]", cas.Value.GetRawText());

        var read = history.Operations[3];
        Assert.Equal((3L, 17L), (read.Version, read.Revision));
        Assert.Equal("conflict: version is 4", history.Operations[6].Error);
        Assert.Equal(OperationType.Info, history.Operations[8].Type);

        var unkeyed = history.Operations[17];
        Assert.Null(unkeyed.Key);
        Assert.Equal("[\"a\",\"b\"]", unkeyed.Value.GetRawText());

        var txn = MicroOp.ParseList(history.Operations[19].Value);
        Assert.Equal(["r", "append", "w"], txn.Select(m => m.F));
        Assert.Equal([4L, 2L, 1L], txn.Select(m => m.Version!.Value));
        Assert.Null(history.Operations[19].Key);
    }

    [Fact]
    public void GoldenFile_ContainsTheDesignDocumentExampleLine()
    {
        // DESIGN.md fixes this exact line as the history format.
        var line = """{"index":9,"time":1850,"process":3,"agent":"fees","type":"ok","f":"cas","value":["acct/42",[3,4]],"version":4}""";
        Assert.Contains(line, File.ReadAllLines(GoldenPath));
    }

    [Fact]
    public void Read_ExplicitKeyField_IsEquivalentToTuple()
    {
        var history = HistoryReader.Parse("""
            {"index":0,"time":5,"process":1,"type":"invoke","f":"write","key":"x","value":[1,2]}
            {"index":1,"time":6,"process":1,"type":"ok","f":"write","key":"x","value":[1,2]}
            """);

        Assert.Equal("x", history.Operations[0].Key);
        Assert.Equal("[1,2]", history.Operations[0].Value.GetRawText());
        Assert.StartsWith("""{"index":0,"time":5,"process":1,"type":"invoke","f":"write","value":["x",[1,2]]}""", HistoryWriter.Format(history));
    }

    [Fact]
    public void Read_MissingIndexAndTime_AreNumberedInOrder()
    {
        var history = HistoryReader.Parse("""
            {"process":1,"type":"invoke","f":"read","value":["x",null]}
            {"process":1,"type":"ok","f":"read","value":["x",null],"extra":"ignored"}
            """);

        Assert.Equal([0L, 1L], history.Operations.Select(o => o.Index));
        Assert.All(history.Operations, o => Assert.Equal(0, o.Time));
    }

    [Fact]
    public void Read_BlankLinesAndNoMeta_AreAccepted()
    {
        var history = HistoryReader.Parse("\n{\"index\":0,\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n\n");

        Assert.True(history.Meta.IsEmpty);
        Assert.Single(history.Operations);
    }

    [Theory]
    [InlineData("{\"index\":0,\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n{not json}", 2, "invalid JSON")]
    [InlineData("[1,2]", 1, "expected a JSON object")]
    [InlineData("{\"index\":0,\"time\":0,\"type\":\"invoke\",\"f\":\"read\"}", 1, "missing \"process\"")]
    [InlineData("{\"index\":0,\"time\":0,\"process\":\"p1\",\"type\":\"invoke\",\"f\":\"read\"}", 1, "\"process\" must be an integer")]
    [InlineData("{\"index\":0,\"time\":0,\"process\":1,\"f\":\"read\"}", 1, "missing \"type\"")]
    [InlineData("{\"index\":0,\"time\":0,\"process\":1,\"type\":\"done\",\"f\":\"read\"}", 1, "must be invoke, ok, fail or info")]
    [InlineData("{\"index\":0,\"time\":0,\"process\":1,\"type\":\"invoke\"}", 1, "missing \"f\"")]
    [InlineData("{\"index\":0,\"time\":\"soon\",\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}", 1, "\"time\" must be an integer")]
    [InlineData("{\"index\":0,\"time\":0,\"process\":1,\"type\":\"ok\",\"f\":\"read\"}", 1, "without invoking it")]
    [InlineData("{\"index\":0,\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n{\"index\":1,\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"write\"}", 2, "while its read (index 0) had not completed")]
    [InlineData("{\"index\":0,\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n{\"index\":1,\"time\":0,\"process\":1,\"type\":\"ok\",\"f\":\"write\"}", 2, "invoked read (index 0) but completed write")]
    [InlineData("{\"index\":5,\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n{\"index\":5,\"time\":0,\"process\":1,\"type\":\"ok\",\"f\":\"read\"}", 2, "index 5 does not increase")]
    [InlineData("{\"index\":0,\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n{\"meta\":{}}", 2, "meta line must be the first line")]
    [InlineData("{\"index\":0,\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"cas\",\"value\":[\"x\",3]}", 1, "cas needs a value [expected, new]")]
    [InlineData("{\"index\":0,\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"increment\",\"value\":[\"x\",\"two\"]}", 1, "increment needs an integer")]
    [InlineData("{\"index\":0,\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"read\",\"x\",null]]}", 1, "micro-op 0 has function \"read\"")]
    [InlineData("{\"index\":0,\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",null,\"v3\"]]}", 1, "micro-op 0 has version \"v3\"")]
    [InlineData("{\"meta\":[]}", 1, "\"meta\" must be an object")]
    public void Read_MalformedInput_ThrowsWithLineNumberAndReason(string text, int line, string reason)
    {
        var error = Assert.Throws<HistoryFormatException>(() => HistoryReader.Parse(text));

        Assert.Equal(line, error.LineNumber);
        Assert.Contains(reason, error.Reason, StringComparison.Ordinal);
        Assert.StartsWith($"line {line}: ", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_BlankLines_CountTowardsLineNumbers()
    {
        var error = Assert.Throws<HistoryFormatException>(() => HistoryReader.Parse("\n\n{\"process\":1}"));

        Assert.Equal(3, error.LineNumber);
    }

    [Fact]
    public void Constructor_InMemoryHistory_IsValidatedWithOperationIndex()
    {
        var ops = new[]
        {
            new Operation { Index = 0, Time = 0, Process = 1, Type = OperationType.Ok, F = "read" },
        };

        var error = Assert.Throws<HistoryFormatException>(() => new OperationHistory(HistoryMeta.Empty, ops));

        Assert.Equal(0, error.OperationIndex);
        Assert.Null(error.LineNumber);
    }

    [Fact]
    public void Write_UnkeyedValueThatLooksLikeATuple_KeepsItsMeaning()
    {
        var history = new HistoryBuilder().Invoke(1, "read", null).Ok(1, HistoryBuilder.J("[\"a\",\"b\"]")).Build();

        var reread = HistoryReader.Parse(HistoryWriter.Format(history));

        Assert.Null(reread.Operations[1].Key);
        Assert.Equal("[\"a\",\"b\"]", reread.Operations[1].Value.GetRawText());
    }

    [Fact]
    public void MicroOp_ToJsonAndBack_PreservesVersions()
    {
        var json = MicroOp.ToJson([MicroOp.Read("x", HistoryValue.List(1, 2), 2), MicroOp.Append("x", HistoryValue.Of(3)), MicroOp.Write("y", HistoryValue.Of(5), 7)]);

        Assert.Equal("""[["r","x",[1,2],2],["append","x",3],["w","y",5,7]]""", json.GetRawText());
        var back = MicroOp.ParseList(json);
        Assert.Equal([2L, null, 7L], back.Select(m => m.Version));
    }
}
