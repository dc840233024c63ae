using Concord.Lab.Export;
using Concord.Lab.History;
using Concord.Lab.Tests.Support;

namespace Concord.Lab.Tests.Export;

public sealed class HistoryExporterTests
{
    private static string Export(OperationHistory history, ExportFormat format)
    {
        using var writer = new StringWriter();
        HistoryExporter.Export(history, format, writer);
        return writer.ToString();
    }

    [Fact]
    public void Export_Knossos_WritesIndependentTuplesAsEdn()
    {
        var history = new HistoryBuilder().Agent(3, "fees")
            .Invoke(3, Functions.Cas, "acct/42", new[] { 3, 4 }).Ok(3)
            .Invoke(1, Functions.Read, "acct/42").Info(1)
            .Build();

        Assert.Equal(
            """
            {:index 0, :time 0, :process 3, :type :invoke, :f :cas, :value ["acct/42" [3 4]], :agent "fees"}
            {:index 1, :time 100, :process 3, :type :ok, :f :cas, :value ["acct/42" [3 4]], :agent "fees"}
            {:index 2, :time 200, :process 1, :type :invoke, :f :read, :value ["acct/42" nil]}
            {:index 3, :time 300, :process 1, :type :info, :f :read, :value ["acct/42" nil]}

            """.ReplaceLineEndings("\n"),
            Export(history, ExportFormat.Knossos));
    }

    [Fact]
    public void Export_Elle_WritesMicroOpsWithKeywordsAndDropsVersions()
    {
        var history = new HistoryBuilder()
            .Txn(1, """[["r","x",null],["append","x",3],["w","y","a\"b"]]""", """[["r","x",[1,2],2],["append","x",3,3],["w","y","a\"b",1]]""")
            .Build();

        Assert.Equal(
            """
            {:index 0, :time 0, :process 1, :type :invoke, :f :txn, :value [[:r "x" nil] [:append "x" 3] [:w "y" "a\"b"]]}
            {:index 1, :time 100, :process 1, :type :ok, :f :txn, :value [[:r "x" [1 2]] [:append "x" 3] [:w "y" "a\"b"]]}

            """.ReplaceLineEndings("\n"),
            Export(history, ExportFormat.Elle));
    }

    [Fact]
    public void Export_Porcupine_WritesOneOperationPerLineWithoutFailedOnes()
    {
        var history = new HistoryBuilder()
            .Invoke(1, Functions.Write, "x", 5).Ok(1)
            .Invoke(2, Functions.Write, "x", 6).Fail(2)
            .Invoke(3, Functions.Read, "x").Info(3)
            .Build();

        Assert.Equal(
            """
            {"clientId":1,"key":"x","input":{"f":"write","value":5},"call":0,"output":{"type":"ok","value":5},"return":1}
            {"clientId":3,"key":"x","input":{"f":"read","value":null},"call":4,"output":{"type":"info","value":null},"return":9223372036854775807}

            """.ReplaceLineEndings("\n"),
            Export(history, ExportFormat.Porcupine));
    }

    [Theory]
    [InlineData("knossos", ExportFormat.Knossos)]
    [InlineData("ELLE", ExportFormat.Elle)]
    [InlineData("porcupine", ExportFormat.Porcupine)]
    public void TryParseFormat_KnownNames(string name, ExportFormat expected)
    {
        Assert.True(HistoryExporter.TryParseFormat(name, out var format));
        Assert.Equal(expected, format);
        Assert.False(HistoryExporter.TryParseFormat("jepsen", out _));
    }
}
