using System.Text.Json;
using static Microsoft.Playwright.Assertions;

namespace Concord.Dashboard.Tests;

/// <summary>
/// The dashboard with 10,000 keys written by 100 agents, then live updates: reports time to first render, the cost
/// of each live update and of scrolling (measured in the browser with performance.now()). Reports, never asserts, timings.
/// </summary>
public sealed class LoadTests(BrowserFixture browser)
{
    private const int Keys = 10_000;
    private const int Agents = 100;
    private const int LiveWrites = 2_000;
    private const string Ns = "load";

    [Fact]
    public async Task Load_10000Keys100Agents_RendersAndUpdates_ReportsTimings()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var server = await DashboardServer.StartAsync();
        var store = server.Journaled;
        for (var i = 0; i < Keys; i++)
        {
            var agent = $"agent-{i % Agents:D3}";
            var result = await store.PutAsync(Ns, $"items/{i:D5}", JsonSerializer.SerializeToElement(new { n = i, owner = agent }),
                new WriteOptions { Agent = agent, Expect = Expect.Absent }, ct);
            Assert.True(result.IsApplied);
        }

        await using var session = await browser.NewPageAsync();
        var page = session.Page;
        await page.GotoAsync($"{server.Address}?ns={Ns}");
        await Expect(page.Locator("body")).ToHaveAttributeAsync("data-ready", "true");
        var firstRender = await page.EvaluateAsync<double>("window.concordPerf.firstRender");
        var navigation = await page.EvaluateAsync<double>("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd");

        // Functional checks: every agent has a lane; the keys are paged 100 at a time.
        Assert.Equal(Agents, await page.Locator(".tl-label").CountAsync());
        await Expect(page.Locator("#keys-body tr")).ToHaveCountAsync(100);
        await Expect(page.Locator("#stats")).ToContainTextAsync($"{Keys} ops");

        // Paging through keys: time from click to the next page's rows.
        var pageTimes = new List<double>();
        for (var p = 0; p < 5; p++)
        {
            var before = await page.Locator("#keys-body tr").First.InnerTextAsync();
            var t0 = await page.EvaluateAsync<double>("performance.now()");
            await page.Locator("#keys-next").ClickAsync();
            await Expect(page.Locator("#keys-body tr").First).Not.ToHaveTextAsync(before);
            pageTimes.Add(await page.EvaluateAsync<double>("performance.now()") - t0);
        }
        await Expect(page.Locator("#keys-info")).ToContainTextAsync("page 6");

        // Scrolling the timeline back through history: cost of one virtualized render.
        var scroll = await page.EvaluateAsync<double[]>("""
            () => {
              const sc = document.getElementById('tl-scroll');
              const times = [];
              for (let i = 0; i < 40; i++) {
                sc.scrollLeft = Math.max(0, sc.scrollWidth * (1 - i / 40) - sc.clientWidth);
                sc.scrollTop = (i * 137) % Math.max(1, sc.scrollHeight - sc.clientHeight);
                const t0 = performance.now();
                window.__concordRenderNow?.();
                times.push(performance.now() - t0);
              }
              return times;
            }
            """);

        // Live: 2,000 more writes from the 100 agents (read, then compare-and-swap), in bursts.
        await page.EvaluateAsync("() => { window.concordPerf.flushes.length = 0; }");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < LiveWrites; i++)
        {
            var agent = $"agent-{i % Agents:D3}";
            var key = $"items/{i * 7 % Keys:D5}";
            var current = await store.GetAsync(Ns, key, new ReadOptions { Agent = agent }, ct);
            await store.PutAsync(Ns, key, JsonSerializer.SerializeToElement(new { n = i, owner = agent }),
                new WriteOptions { Agent = agent, Expect = Expect.Version(current!.Version) }, ct);
            if (i % 100 == 99) await Task.Delay(25, ct);
        }
        await Expect(page.Locator("#stats")).ToContainTextAsync($"{Keys + 2 * LiveWrites} ops", new() { Timeout = 20_000 });
        var liveSeconds = sw.Elapsed.TotalSeconds;
        var flushes = await page.EvaluateAsync<JsonElement>("window.concordPerf.flushes");
        var flushMs = flushes.EnumerateArray().Select(f => f.GetProperty("ms").GetDouble()).Order().ToList();
        var events = flushes.EnumerateArray().Sum(f => f.GetProperty("events").GetInt32());
        await page.Locator("#timeline").FocusAsync();
        await page.Keyboard.PressAsync("End");
        using var http = new HttpClient();
        using var check = await http.PostAsync($"{server.Address}dashboard/api/check?ns={Ns}", null, ct);
        var verdicts = JsonDocument.Parse(await check.Content.ReadAsStringAsync(ct)).RootElement;
        var checkMs = verdicts[0].GetProperty("checkMs").GetDouble();
        await Artifacts.ScreenshotAsync(page, "load-10000-keys-100-agents");

        var report = new
        {
            keys = Keys,
            agents = Agents,
            liveOperations = 2 * LiveWrites,
            timeToFirstRenderMs = Math.Round(firstRender, 1),
            domContentLoadedMs = Math.Round(navigation, 1),
            keysPageChangeMs = Stats(pageTimes),
            timelineScrollRenderMs = Stats(scroll.Order().ToList()),
            liveFlushMs = Stats(flushMs),
            liveFlushes = flushMs.Count,
            liveEventsReceived = events,
            liveEventsPerFlush = flushMs.Count == 0 ? 0 : Math.Round((double)events / flushMs.Count, 1),
            liveWriteSeconds = Math.Round(liveSeconds, 2),
            serverCheckMs = checkMs,
        };
        var json = JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true });
        await File.WriteAllTextAsync(Path.Combine(Artifacts.Directory("perf"), "dashboard-10k-keys-100-agents.json"), json, ct);
        TestContext.Current.TestOutputHelper?.WriteLine(json);
        Assert.Equal(2 * LiveWrites, events);
    }

    private static object Stats(IReadOnlyList<double> sorted)
    {
        if (sorted.Count == 0) return new { count = 0 };
        var s = sorted.Order().ToList();
        double At(double q) => s[Math.Min(s.Count - 1, (int)Math.Floor(q * s.Count))];
        return new
        {
            count = s.Count,
            median = Math.Round(At(0.5), 2),
            p95 = Math.Round(At(0.95), 2),
            max = Math.Round(s[^1], 2),
            mean = Math.Round(s.Average(), 2),
        };
    }
}
