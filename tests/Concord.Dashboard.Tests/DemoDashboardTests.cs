using System.Text.RegularExpressions;
using Concord.Lab.Scenarios;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Concord.Dashboard.Tests;

/// <summary>The dashboard while the account demo runs against the server: the naive mode's lost updates are shown and explained; the safe modes lose nothing.</summary>
public sealed partial class DemoDashboardTests(BrowserFixture browser)
{
    private static readonly LocatorAssertionsToContainTextOptions Patient = new() { Timeout = 20_000 };

    [Fact]
    public async Task NaiveDemo_WhileItRuns_TimelineShowsConflictAndLostUpdateAndVerdictExplainsIt()
    {
        await using var server = await DashboardServer.StartAsync();
        await using var session = await browser.NewPageAsync();
        var page = session.Page;
        await page.GotoAsync(server.Address.ToString());
        await Expect(page.Locator("#live")).ToHaveClassAsync(new Regex("on"));

        // The naive run (non-strict namespace) and its replay in a strict namespace (blind writes refused: conflicts).
        await server.RunDemoAsync("account", "naive", pace: 0.25);

        var naive = DashboardServer.Ns("account", ConcurrencyMode.Naive);
        var card = page.Locator($".verdict[data-ns='{naive}']");
        await Expect(card).ToContainTextAsync("overwrote version 2 of accounts/acct-42 (written by fees)", Patient);
        var explanation = await card.Locator(".findings li").Last.InnerTextAsync();
        var match = LostUpdateExplanation().Match(explanation);
        Assert.True(match.Success, explanation);
        Assert.Equal("status", match.Groups["overwriter"].Value);
        Assert.Equal("2", match.Groups["version"].Value);
        Assert.Equal("fees", match.Groups["victim"].Value);
        await Expect(card.Locator(".badge")).ToHaveTextAsync("Lost updates");

        // The timeline: lost versions ringed, the overwrite marked, a red arrow from the lost write to the blind one.
        var timeline = page.Locator("#timeline");
        await timeline.FocusAsync();
        await page.Keyboard.PressAsync("Home");
        await page.Keyboard.PressAsync("l");
        await Expect(page.Locator("#tl-svg .m-lost-ring").First).ToBeVisibleAsync();
        await Expect(page.Locator("#tl-svg .m-overwriter-ring").First).ToBeVisibleAsync();
        Assert.True(await page.Locator("#tl-svg path.a-lost").CountAsync() >= 1, "no 'overwrote unseen' arrow");
        await Expect(page.Locator("#detail")).ToContainTextAsync("was lost");

        // The strict replay of the naive agents: refused blind writes are conflicts on the timeline.
        await page.Keyboard.PressAsync("c");
        await Expect(page.Locator("#detail")).ToContainTextAsync("conflict: blindWriteRefused");
        await Expect(page.Locator("#tl-svg .m-conflict").First).ToBeVisibleAsync();

        await page.Keyboard.PressAsync("Home");
        await page.Keyboard.PressAsync("l");
        await Artifacts.ScreenshotAsync(page, "naive-lost-update");
    }

    [Fact]
    public async Task SafeModes_NoLostUpdate_ConflictsAreRefusedAndRetried()
    {
        await using var server = await DashboardServer.StartAsync();
        await using var session = await browser.NewPageAsync();
        var page = session.Page;
        await page.GotoAsync(server.Address.ToString());
        await Expect(page.Locator("#live")).ToHaveClassAsync(new Regex("on"));

        await server.RunDemoAsync("account", "optimistic", pace: 0.2);
        await server.RunDemoAsync("account", "patch", pace: 0.2);

        foreach (var mode in new[] { ConcurrencyMode.Optimistic, ConcurrencyMode.Patch })
        {
            var card = page.Locator($".verdict[data-ns='{DashboardServer.Ns("account", mode)}']");
            await Expect(card.Locator(".badge")).ToHaveTextAsync("OK", new() { Timeout = 20_000 });
            await Expect(card).ToContainTextAsync("No update lost", Patient);
            await Expect(card).ToContainTextAsync("Lost updates: 0");
            await Expect(card).ToContainTextAsync("Linearizability: valid");
        }
        var optimistic = page.Locator($".verdict[data-ns='{DashboardServer.Ns("account", ConcurrencyMode.Optimistic)}']");
        await Expect(optimistic).ToContainTextAsync(new Regex(@"Retries: [1-9]"));

        Assert.Equal(0, await page.Locator("#tl-svg .m-lost-ring").CountAsync());
        Assert.Equal(0, await page.Locator("#tl-svg path.a-lost").CountAsync());
        await Expect(page.Locator("#stats")).ToContainTextAsync("0 lost updates");

        // The optimistic run's conflicts and retries are on the timeline.
        await page.SelectOptionAsync("#ns-filter", DashboardServer.Ns("account", ConcurrencyMode.Optimistic));
        await page.Locator("#timeline").FocusAsync();
        await page.Keyboard.PressAsync("Home");
        await page.Keyboard.PressAsync("c");
        await Expect(page.Locator("#detail")).ToContainTextAsync("conflict: versionMismatch");
        await Expect(page.Locator("#tl-svg .m-retry-ring").First).ToBeVisibleAsync();
        await Artifacts.ScreenshotAsync(page, "optimistic-no-lost-update");
    }

    [Fact]
    public async Task CounterDemo_NaiveLosesIncrements_PatchLosesNone()
    {
        await using var server = await DashboardServer.StartAsync();
        await server.RunDemoAsync("counter", "naive");
        await server.RunDemoAsync("counter", "patch");
        await using var session = await browser.NewPageAsync();
        var page = session.Page;
        await page.GotoAsync($"{server.Address}?ns={DashboardServer.Ns("counter", ConcurrencyMode.Naive)}");

        var naive = page.Locator($".verdict[data-ns='{DashboardServer.Ns("counter", ConcurrencyMode.Naive)}']");
        await Expect(naive.Locator(".badge")).ToHaveTextAsync("Lost updates", new() { Timeout = 20_000 });
        await Expect(naive).ToContainTextAsync(new Regex(@"agent-\d+ overwrote version \d+ of counters/page-views \(written by agent-\d+\)"));
        var patch = page.Locator($".verdict[data-ns='{DashboardServer.Ns("counter", ConcurrencyMode.Patch)}']");
        await Expect(patch.Locator(".badge")).ToHaveTextAsync("OK", new() { Timeout = 20_000 });
        Assert.Equal(8, await page.Locator(".tl-label").CountAsync() - 1); // eight agents and the setup agent
        await page.Locator("#timeline").FocusAsync();
        await page.Keyboard.PressAsync("L");
        await Expect(page.Locator("#detail .callout.bad").First).ToBeVisibleAsync();
        await Artifacts.ScreenshotAsync(page, "counter-naive");
    }

    [GeneratedRegex(@"^(?<overwriter>\w+) overwrote version (?<version>\d+) of accounts/acct-42 \(written by (?<victim>\w+)\) without having read it")]
    private static partial Regex LostUpdateExplanation();
}
