using System.Xml.Linq;
using Concord.Benchmarks.Load;
using Concord.Benchmarks.Report;
using Concord.Engine;

namespace Concord.Benchmarks.Tests;

/// <summary>The benchmark report's pieces on tiny synthetic data and tiny runs: CI-safe, nothing timed is asserted.</summary>
public sealed class ReportGeneratorTests : IDisposable
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"concord-bench-tests-{Guid.NewGuid():N}");

    public ReportGeneratorTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void SvgChart_TwoSeries_IsWellFormedWithOneGroupAndLegendPerSeries()
    {
        var svg = SvgChart.Render("title", "clients", "ops/s", [1, 4, 16],
            [new ChartSeries("Concord", [(1, 100, 90, 110), (4, 300, 250, 320), (16, 900, 800, 1000)]), new ChartSeries("etcd", [(1, 50, 50, 50), (16, 70, 60, 80)])],
            logY: true);

        var doc = XDocument.Parse(svg);
        var groups = doc.Descendants(Svg + "g").Where(g => (string?)g.Attribute("class") == "series").ToList();
        Assert.Equal(["Concord", "etcd"], groups.Select(g => (string?)g.Attribute("data-name")));
        Assert.Equal(3, groups[0].Elements(Svg + "circle").Count());
        Assert.Equal(2, groups[1].Elements(Svg + "circle").Count());
        Assert.Single(groups[0].Elements(Svg + "polyline"));
        var legend = doc.Descendants(Svg + "g").Where(g => (string?)g.Attribute("class") == "legend").Select(g => g.Element(Svg + "text")!.Value);
        Assert.Equal(["Concord", "etcd"], legend);
    }

    [Fact]
    public void Report_SyntheticCurves_WritesValidChartsWithExpectedSeriesAndRatios()
    {
        var curves = Synthetic();
        var img = Path.Combine(_dir, "img");

        var markdown = ReportCommand.Render(null, curves, new Dictionary<string, MicroResult>(), "scripts/bench.sh --quick", "--job dry", null, img, "img", _dir);

        var expected = new Dictionary<string, string[]>
        {
            ["cas-throughput-vs-clients.svg"] = ["Concord embedded", "Concord memory", "SQLite", "etcd"],
            ["cas-throughput-vs-hot-keys.svg"] = ["Concord embedded", "Concord memory", "SQLite", "etcd"],
            ["goodput-vs-contention.svg"] = ["optimistic", "lock", "patch", "queue"],
            ["goodput-vs-agents-1-keys.svg"] = ["optimistic", "lock", "patch", "queue"],
            ["lab-linearizability-scaling.svg"] = ["check", "parse"],
        };
        foreach (var (file, series) in expected)
        {
            var doc = XDocument.Load(Path.Combine(img, file));
            var names = doc.Descendants(Svg + "g").Where(g => (string?)g.Attribute("class") == "series").Select(g => (string?)g.Attribute("data-name"));
            Assert.Equal(series, names);
            Assert.Contains($"](img/{file})", markdown, StringComparison.Ordinal);
        }
        // Concord embedded 2,000/s vs SQLite 200/s at 4 clients: the ratio is printed from the medians.
        Assert.Contains("| Concord embedded ÷ SQLite | 10.0× | 10.0× |", markdown, StringComparison.Ordinal);
        Assert.Contains("### Which to pick", markdown, StringComparison.Ordinal);
        Assert.Contains("every run verified: yes", markdown, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("optimistic")]
    [InlineData("lock")]
    [InlineData("patch")]
    [InlineData("queue")]
    public async Task Goodput_FourAgentsOnOneHotKey_CountersEqualAppliedUpdates(string strategy)
    {
        await using var engine = ConcordEngine.CreateInMemory();
        var settings = LoadSettings.Create(quick: true, runs: 1, workDirectory: _dir);

        // A run is a short time window: on a starved machine it may apply nothing, so try a few (bounded) times until
        // it did; each run uses a fresh namespace and is verified on its own.
        var runs = 0;
        (RunFigures Figures, bool Verified, long Applied, long Total) result;
        do result = await GoodputLoad.RunOnceAsync(engine, $"t{runs}", strategy, agents: 4, keys: 1, seed: runs, settings);
        while (result.Applied == 0 && ++runs < 5);

        Assert.True(result.Applied > 0, $"{strategy} applied no update in {runs} runs");
        Assert.Equal(result.Applied, result.Total);
        Assert.True(result.Verified);
    }

    private static CurveResults Synthetic()
    {
        var points = new List<CurvePoint>();
        void Add(string suite, string series, double x, double rate, double extra = 0) => points.Add(new CurvePoint(suite, series, x, new()
        {
            ["ops/s"] = [rate * 0.9, rate, rate * 1.1],
            ["p50 ms"] = [1, 1, 1],
            ["p99 ms"] = [5, 5, 5],
            ["wasted/success"] = [extra, extra, extra],
            ["verified"] = [1, 1, 1],
        }));
        foreach (var x in new[] { 1.0, 4 })
        {
            Add("cas-clients", "Concord embedded", x, 2000);
            Add("cas-clients", "Concord memory", x, 90_000);
            Add("cas-clients", "SQLite", x, 200);
            Add("cas-clients", "etcd", x, 700);
        }
        foreach (var k in new[] { 1.0, 16 })
        {
            Add("cas-keys", "Concord embedded", k, 1000 * k);
            Add("cas-keys", "Concord memory", k, 50_000);
            Add("cas-keys", "SQLite", k, 150);
            Add("cas-keys", "etcd", k, 100 * k);
        }
        foreach (var keys in new[] { 1, 16 })
        {
            foreach (var agents in new[] { 1.0, 4 })
            {
                Add($"goodput-{keys}", "optimistic", agents, 100 * agents * (keys == 1 ? 0.5 : 1), keys == 1 ? 2 : 0.1);
                Add($"goodput-{keys}", "lock", agents, 80 * agents);
                Add($"goodput-{keys}", "patch", agents, 200 * agents);
                Add($"goodput-{keys}", "queue", agents, 90 * agents);
            }
        }
        foreach (var n in new[] { 1000.0, 10_000 })
        {
            points.Add(new CurvePoint("lab-register", "parse", n, new() { ["ms"] = [n / 100] }));
            points.Add(new CurvePoint("lab-register", "check", n, new() { ["ms"] = [n / 50] }));
        }
        var machine = new MachineInfo("cpu", 2, "1 GiB", "os", ".NET", "gc", "disk", "/tmp", "SQLite");
        return new CurveResults("load curves --quick", DateTimeOffset.UnixEpoch, true, 3, machine,
            new() { ["etcd"] = "etcd 3.4", ["think"] = "2" }, "1 / 1 / 1", "1 / 1 / 1", points, []);
    }
}
