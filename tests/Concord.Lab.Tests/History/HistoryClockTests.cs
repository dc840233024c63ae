using System.Text.Json;
using Concord.Lab.History;

namespace Concord.Lab.Tests.History;

public sealed class HistoryClockTests
{
    [Fact]
    public void Clock_RoundTripsThroughTheHistoryFormat()
    {
        var op = new Operation
        {
            Index = 3, Time = 10, Process = 1, Type = OperationType.Ok, F = "write", Agent = "fees", Key = "acct/42",
            Value = JsonSerializer.SerializeToElement(4), Version = 4, Revision = 17, Clock = VersionVector.Parse("n1:17"),
        };
        var line = HistoryWriter.FormatOperation(op);
        Assert.EndsWith(""","clock":{"n1":17}}""", line);
        var invoke = """{"index":2,"time":5,"process":1,"agent":"fees","type":"invoke","f":"write","value":["acct/42",4]}""";
        var history = HistoryReader.Parse(invoke + "\n" + line + "\n");
        Assert.Null(history.Operations[0].Clock);
        Assert.Equal(op.Clock, history.Operations[1].Clock);
    }

    [Fact]
    public void Clock_AbsentOrMalformed()
    {
        var history = HistoryReader.Parse("""{"index":0,"time":0,"process":0,"type":"invoke","f":"read","value":["k",null]}""" + "\n");
        Assert.Null(Assert.Single(history.Operations).Clock);
        Assert.Throws<HistoryFormatException>(() =>
            HistoryReader.Parse("""{"index":0,"time":0,"process":0,"type":"invoke","f":"read","value":["k",null],"clock":{"n1":"x"}}""" + "\n"));
    }
}
