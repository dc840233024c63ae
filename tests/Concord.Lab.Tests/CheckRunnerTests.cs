using System.Text.Json;
using Concord.Lab.History;
using Concord.Lab.Tests.Checkers.Linearizability;
using Concord.Lab.Tests.Support;

namespace Concord.Lab.Tests;

public sealed class CheckRunnerTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("concord-check-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string Save(string name, string text)
    {
        var path = Path.Combine(_directory, name);
        File.WriteAllText(path, text);
        return path;
    }

    private string Save(string name, OperationHistory history) => Save(name, HistoryWriter.Format(history));

    private static (int Code, string Output, string Error) Run(CheckRequest request)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = CheckRunner.Run(request, output, error, TestContext.Current.CancellationToken);
        return (code, output.ToString(), error.ToString());
    }

    private static HistoryBuilder StaleRead() => new HistoryBuilder().Agent(3, "fees").Write(1, "acct/42", 4).Write(2, "acct/42", 6).Read(3, "acct/42", 4);

    [Fact]
    public void Run_ValidHistory_ExitsZero()
    {
        var (code, output, error) = Run(new CheckRequest { Path = Save("ok.jsonl", new HistoryBuilder().Write(1, "x", 1).Read(2, "x", 1).Build()) });

        Assert.Equal(CheckRunner.ExitValid, code);
        Assert.StartsWith("Linearizable (register model)", output, StringComparison.Ordinal);
        Assert.Empty(error);
    }

    [Fact]
    public void Run_Anomaly_ExitsOneAndPrintsTheExplanation()
    {
        var (code, output, _) = Run(new CheckRequest { Path = Save("stale.jsonl", StaleRead().Build()) });

        Assert.Equal(CheckRunner.ExitAnomaly, code);
        Assert.Contains("process 3 (agent fees) read 4 from acct/42", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_MalformedHistory_ExitsTwoWithLineNumberOnStderr()
    {
        var path = Save("bad.jsonl", "{\"meta\":{}}\n{\"index\":0,\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n{\"index\":1,\"time\":0,\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"version\":\"three\"}\n");

        var (code, output, error) = Run(new CheckRequest { Path = path });

        Assert.Equal(CheckRunner.ExitBadInput, code);
        Assert.Empty(output);
        Assert.Equal($"{path}:3: \"version\" must be an integer, not \"three\"", error.TrimEnd());
    }

    [Theory]
    [InlineData("nope.jsonl", null, null, null, null, null, "no such file")]
    [InlineData(null, "bogus", null, null, null, null, "unknown model \"bogus\"")]
    [InlineData(null, null, "-1", null, null, null, "--timeout must be a positive number")]
    [InlineData(null, null, "abc", null, null, null, "--timeout must be a positive number")]
    [InlineData(null, null, null, "xml", null, null, "--format must be text or json")]
    [InlineData(null, null, null, null, "jepsen", "out.edn", "--export must be knossos, elle or porcupine")]
    [InlineData(null, null, null, null, "elle", null, "--export needs --out PATH")]
    [InlineData(null, null, null, null, null, "out.edn", "--out is only used with --export")]
    public void Run_BadArguments_ExitTwo(string? path, string? model, string? timeout, string? format, string? export, string? output, string message)
    {
        var valid = Save("ok.jsonl", new HistoryBuilder().Write(1, "x", 1).Build());

        var (code, _, error) = Run(new CheckRequest { Path = path ?? valid, Model = model, Timeout = timeout, Format = format, Export = export, Out = output });

        Assert.Equal(CheckRunner.ExitBadInput, code);
        Assert.Contains(message, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_UnmatchedTokens_ExitTwo()
    {
        var (code, _, error) = Run(new CheckRequest { Path = Save("ok.jsonl", new HistoryBuilder().Write(1, "x", 1).Build()), UnmatchedTokens = ["--modle", "x"] });

        Assert.Equal(CheckRunner.ExitBadInput, code);
        Assert.Contains("unrecognized argument(s): --modle x", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_ModelThatDoesNotFitTheOperations_ExitsTwo()
    {
        var (code, _, error) = Run(new CheckRequest { Path = Save("cas.jsonl", new HistoryBuilder().Do(1, "cas", "x", new[] { 0, 1 }).Build()), Model = "register" });

        Assert.Equal(CheckRunner.ExitBadInput, code);
        Assert.Contains("operation 1: the register model has no cas", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_Timeout_ExitsThree()
    {
        var (code, output, _) = Run(new CheckRequest { Path = Save("hard.jsonl", HardHistories.ManyConcurrentWritesThenImpossibleRead(28)), Timeout = "0.3" });

        Assert.Equal(CheckRunner.ExitUnknown, code);
        Assert.StartsWith("Unknown", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_JsonFormat_IsParseableAndListsTheFailingKey()
    {
        var (code, output, _) = Run(new CheckRequest { Path = Save("stale.jsonl", StaleRead().Build()), Format = "json" });

        Assert.Equal(CheckRunner.ExitAnomaly, code);
        using var document = JsonDocument.Parse(output);
        var root = document.RootElement;
        Assert.Equal("linearizability", root.GetProperty("checker").GetString());
        Assert.Equal("invalid", root.GetProperty("verdict").GetString());
        var key = Assert.Single(root.GetProperty("keys").EnumerateArray());
        Assert.Equal("acct/42", key.GetProperty("key").GetString());
        Assert.Equal([1L, 3L, 5L], key.GetProperty("window").EnumerateArray().Select(e => e.GetInt64()));
    }

    [Fact]
    public void Run_TxnHistory_UsesTheIsolationChecker_AndJsonListsAnomalies()
    {
        var history = new HistoryBuilder()
            .Txn(1, """[["append","x",1]]""", null, OperationType.Fail)
            .Txn(2, """[["r","x",null]]""", """[["r","x",[1]]]""")
            .Build();

        var (code, output, _) = Run(new CheckRequest { Path = Save("txn.jsonl", history), Format = "json" });

        Assert.Equal(CheckRunner.ExitAnomaly, code);
        using var document = JsonDocument.Parse(output);
        Assert.Equal("isolation", document.RootElement.GetProperty("checker").GetString());
        Assert.Equal("G1a", Assert.Single(document.RootElement.GetProperty("anomalies").EnumerateArray()).GetProperty("type").GetString());
    }

    [Fact]
    public void Run_MetaModel_IsUsedWhenNoModelIsGiven()
    {
        // The ops look like a counter ("add" with numeric reads); the meta line says set, and reads lists.
        var history = new HistoryBuilder().Meta(new HistoryMeta { Model = "set" }).Do(1, "add", "s", 1).Read(2, "s", new[] { 1 }).Build();

        var (code, output, _) = Run(new CheckRequest { Path = Save("set.jsonl", history) });

        Assert.Equal(CheckRunner.ExitValid, code);
        Assert.Contains("(set model)", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_ExplicitModel_OverridesTheMetaLine()
    {
        var history = new HistoryBuilder().Meta(new HistoryMeta { Model = "queue" }).Write(1, "x", 1).Build();

        var (code, output, _) = Run(new CheckRequest { Path = Save("m.jsonl", history), Model = "register" });

        Assert.Equal(CheckRunner.ExitValid, code);
        Assert.Contains("(register model)", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_UnknownMetaModel_ExitsTwo()
    {
        var (code, _, error) = Run(new CheckRequest { Path = Save("m.jsonl", new HistoryBuilder().Meta(new HistoryMeta { Model = "graph" }).Write(1, "x", 1).Build()) });

        Assert.Equal(CheckRunner.ExitBadInput, code);
        Assert.Contains("names model \"graph\"", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_Export_WritesTheFileAndStillChecks()
    {
        var output = Path.Combine(_directory, "out.edn");

        var (code, _, _) = Run(new CheckRequest { Path = Save("stale.jsonl", StaleRead().Build()), Export = "knossos", Out = output });

        Assert.Equal(CheckRunner.ExitAnomaly, code);
        Assert.Equal(6, File.ReadAllLines(output).Length);
        Assert.StartsWith("{:index 0, :time 0, :process 1, :type :invoke, :f :write", File.ReadAllText(output), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("txn", """{"process":1,"type":"invoke","f":"txn","value":[["r","x",null]]}""")]
    [InlineData("queue", """{"process":1,"type":"invoke","f":"enqueue","value":["q",1]}""")]
    [InlineData("counter", """{"process":1,"type":"invoke","f":"increment","value":["c",1]}""")]
    [InlineData("counter", """{"process":1,"type":"invoke","f":"add","value":["c",1]}""")]
    [InlineData("cas-register", """{"process":1,"type":"invoke","f":"cas","value":["x",[1,2]]}""")]
    [InlineData("register", """{"process":1,"type":"invoke","f":"write","value":["x",1]}""")]
    public void InferModel_FromOperations(string expected, string line)
    {
        Assert.Equal(expected, CheckRunner.InferModel(HistoryReader.Parse(line)));
    }

    [Fact]
    public void InferModel_AddWithListReads_IsSet()
    {
        var history = new HistoryBuilder().Do(1, "add", "s", 1).Read(1, "s", new[] { 1 }).Build();

        Assert.Equal("set", CheckRunner.InferModel(history));
    }
}
