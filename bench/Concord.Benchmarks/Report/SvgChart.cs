using System.Globalization;
using System.Net;
using System.Text;

namespace Concord.Benchmarks.Report;

/// <summary>One line of a chart: a point per x category, with an optional min–max whisker.</summary>
/// <param name="Name">Legend label.</param>
/// <param name="Points">(x, median, min, max); x must be one of the chart's categories. NaN medians are skipped.</param>
/// <param name="Dashed">Draw the line dashed (e.g. for p99 next to p50).</param>
public sealed record ChartSeries(string Name, IReadOnlyList<(double X, double Median, double Min, double Max)> Points, bool Dashed = false);

/// <summary>
/// A small, dependency-free SVG line chart: categorical x axis (the measured concurrency or contention levels, evenly
/// spaced), linear or log10 y axis, one polyline with markers and min–max whiskers per series, a legend on the right.
/// Colours come from a fixed palette and follow the series order, so the same peer has the same colour in every chart
/// as long as callers pass series in the same order.
/// </summary>
public static class SvgChart
{
    private static readonly string[] Palette =
        ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];

    private const int Width = 760, Height = 400, Left = 78, Right = 210, Top = 40, Bottom = 56;

    /// <summary>Renders the chart. <paramref name="colorKeys"/> pins a series name to a palette slot across charts.</summary>
    public static string Render(string title, string xLabel, string yLabel, IReadOnlyList<double> categories, IReadOnlyList<ChartSeries> series,
        bool logY, IReadOnlyList<string>? colorKeys = null)
    {
        var inv = CultureInfo.InvariantCulture;
        var plotW = Width - Left - Right;
        var plotH = Height - Top - Bottom;
        var values = series.SelectMany(s => s.Points).SelectMany(p => new[] { p.Median, p.Min, p.Max })
            .Where(v => double.IsFinite(v) && (!logY || v > 0)).ToList();
        double lo, hi;
        if (values.Count == 0) (lo, hi) = (logY ? 1 : 0, logY ? 10 : 1);
        else if (logY)
        {
            lo = Math.Pow(10, Math.Floor(Math.Log10(values.Min())));
            hi = Math.Pow(10, Math.Ceiling(Math.Log10(values.Max())));
            if (hi <= lo) hi = lo * 10;
        }
        else
        {
            lo = 0;
            hi = NiceCeiling(values.Max());
        }
        double Y(double v) => logY
            ? Top + plotH - (Math.Log10(v) - Math.Log10(lo)) / (Math.Log10(hi) - Math.Log10(lo)) * plotH
            : Top + plotH - (v - lo) / (hi - lo) * plotH;
        double X(double x)
        {
            var i = IndexOf(categories, x);
            return categories.Count == 1 ? Left + plotW / 2.0 : Left + 20 + i * (plotW - 40.0) / (categories.Count - 1);
        }
        string F(double v) => v.ToString("0.#", inv);

        var svg = new StringBuilder();
        svg.AppendLine(inv, $"""<svg xmlns="http://www.w3.org/2000/svg" width="{Width}" height="{Height}" viewBox="0 0 {Width} {Height}" font-family="sans-serif" font-size="12">""");
        svg.AppendLine(inv, $"""  <title>{Esc(title)}</title>""");
        svg.AppendLine(inv, $"""  <rect x="0" y="0" width="{Width}" height="{Height}" fill="white"/>""");
        svg.AppendLine(inv, $"""  <text x="{Width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{Esc(title)}</text>""");

        // Grid and y ticks.
        svg.AppendLine("  <g class=\"y-axis\" stroke=\"#ddd\">");
        foreach (var tick in YTicks(lo, hi, logY))
        {
            var y = Y(tick);
            svg.AppendLine(inv, $"""    <line x1="{Left}" y1="{F(y)}" x2="{Left + plotW}" y2="{F(y)}"/>""");
            svg.AppendLine(inv, $"""    <text x="{Left - 6}" y="{F(y + 4)}" text-anchor="end" stroke="none" fill="#333">{Esc(Short(tick))}</text>""");
        }
        svg.AppendLine("  </g>");
        svg.AppendLine("  <g class=\"x-axis\">");
        foreach (var c in categories)
        {
            svg.AppendLine(inv, $"""    <line x1="{F(X(c))}" y1="{Top + plotH}" x2="{F(X(c))}" y2="{Top + plotH + 5}" stroke="#333"/>""");
            svg.AppendLine(inv, $"""    <text x="{F(X(c))}" y="{Top + plotH + 19}" text-anchor="middle" fill="#333">{Esc(Short(c))}</text>""");
        }
        svg.AppendLine("  </g>");
        svg.AppendLine(inv, $"""  <rect x="{Left}" y="{Top}" width="{plotW}" height="{plotH}" fill="none" stroke="#333"/>""");
        svg.AppendLine(inv, $"""  <text x="{Left + plotW / 2}" y="{Height - 12}" text-anchor="middle">{Esc(xLabel)}</text>""");
        svg.AppendLine(inv, $"""  <text transform="translate(16 {Top + plotH / 2}) rotate(-90)" text-anchor="middle">{Esc(yLabel + (logY ? " (log scale)" : ""))}</text>""");

        for (var s = 0; s < series.Count; s++)
        {
            var line = series[s];
            var slot = colorKeys is null ? s : Math.Max(0, IndexOfName(colorKeys, line.Name));
            var color = Palette[slot % Palette.Length];
            var points = line.Points.Where(p => double.IsFinite(p.Median) && (!logY || p.Median > 0) && IndexOf(categories, p.X) >= 0)
                .OrderBy(p => IndexOf(categories, p.X)).ToList();
            svg.AppendLine(inv, $"""  <g class="series" data-name="{Esc(line.Name)}" stroke="{color}" fill="{color}">""");
            if (points.Count > 1)
            {
                var path = string.Join(' ', points.Select(p => $"{F(X(p.X))},{F(Y(p.Median))}"));
                svg.AppendLine(inv, $"""    <polyline points="{path}" fill="none" stroke-width="2"{(line.Dashed ? " stroke-dasharray=\"6 4\"" : "")}/>""");
            }
            foreach (var p in points)
            {
                if (double.IsFinite(p.Min) && double.IsFinite(p.Max) && p.Max > p.Min && (!logY || p.Min > 0))
                {
                    svg.AppendLine(inv, $"""    <line x1="{F(X(p.X))}" y1="{F(Y(p.Min))}" x2="{F(X(p.X))}" y2="{F(Y(p.Max))}" stroke-width="1"/>""");
                }
                svg.AppendLine(inv, $"""    <circle cx="{F(X(p.X))}" cy="{F(Y(p.Median))}" r="3.5"><title>{Esc($"{line.Name} at {Short(p.X)}: {Short(p.Median)} ({Short(p.Min)}–{Short(p.Max)})")}</title></circle>""");
            }
            svg.AppendLine("  </g>");
            var ly = Top + 8 + s * 20;
            svg.AppendLine(inv, $"""  <g class="legend"><line x1="{Width - Right + 14}" y1="{ly}" x2="{Width - Right + 40}" y2="{ly}" stroke="{color}" stroke-width="2"{(line.Dashed ? " stroke-dasharray=\"6 4\"" : "")}/><circle cx="{Width - Right + 27}" cy="{ly}" r="3.5" fill="{color}"/><text x="{Width - Right + 46}" y="{ly + 4}">{Esc(line.Name)}</text></g>""");
        }
        svg.AppendLine("</svg>");
        return svg.ToString();
    }

    private static int IndexOf(IReadOnlyList<double> categories, double x)
    {
        for (var i = 0; i < categories.Count; i++) if (Math.Abs(categories[i] - x) < 1e-9) return i;
        return -1;
    }

    private static int IndexOfName(IReadOnlyList<string> names, string name)
    {
        for (var i = 0; i < names.Count; i++) if (names[i] == name) return i;
        return -1;
    }

    private static IEnumerable<double> YTicks(double lo, double hi, bool logY)
    {
        if (logY)
        {
            // Decades; with three decades or fewer also 2× and 5×, so a narrow range still has labels to read off.
            var fine = Math.Log10(hi / lo) <= 3.0001;
            for (var t = lo; t <= hi * 1.0001; t *= 10)
            {
                yield return t;
                if (fine && t * 2 < hi * 1.0001) yield return t * 2;
                if (fine && t * 5 < hi * 1.0001) yield return t * 5;
            }
            yield break;
        }
        var step = NiceCeiling((hi - lo) / 5);
        for (var t = lo; t <= hi + step / 1000; t += step) yield return t;
    }

    /// <summary>1, 2, 2.5 or 5 times a power of ten, at least <paramref name="v"/>.</summary>
    private static double NiceCeiling(double v)
    {
        if (v <= 0 || !double.IsFinite(v)) return 1;
        var p = Math.Pow(10, Math.Floor(Math.Log10(v)));
        foreach (var m in new[] { 1, 2, 2.5, 5, 10 }) if (m * p >= v * 0.9999) return m * p;
        return 10 * p;
    }

    /// <summary>Compact tick label: 1.5k, 20M, 0.25.</summary>
    public static string Short(double v)
    {
        var inv = CultureInfo.InvariantCulture;
        var a = Math.Abs(v);
        return a switch
        {
            >= 1e9 => (v / 1e9).ToString("0.##", inv) + "G",
            >= 1e6 => (v / 1e6).ToString("0.##", inv) + "M",
            >= 1e4 => (v / 1e3).ToString("0.#", inv) + "k",
            >= 1000 => (v / 1e3).ToString("0.##", inv) + "k",
            >= 1 => v.ToString("0.##", inv),
            0 => "0",
            _ => v.ToString("0.###", inv),
        };
    }

    private static string Esc(string s) => WebUtility.HtmlEncode(s);
}
