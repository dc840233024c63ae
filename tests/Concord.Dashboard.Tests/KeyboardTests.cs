using System.Text.RegularExpressions;
using static Microsoft.Playwright.Assertions;

namespace Concord.Dashboard.Tests;

/// <summary>The dashboard works without a mouse: tab order, visible focus, arrow keys in the timeline and in the tabs.</summary>
public sealed class KeyboardTests(BrowserFixture browser)
{
    [Fact]
    public async Task Keyboard_TabOrderFocusStylesAndArrowKeys_NavigateTheDashboard()
    {
        await using var server = await DashboardServer.StartAsync();
        await server.RunDemoAsync("account", "naive");
        await using var session = await browser.NewPageAsync();
        var page = session.Page;
        await page.GotoAsync(server.Address.ToString());
        await Expect(page.Locator("#stats")).ToContainTextAsync("20 ops");

        // The first Tab stop is the skip link; following it lands on the timeline.
        await page.Keyboard.PressAsync("Tab");
        Assert.Equal("skip-link", await page.EvaluateAsync<string>("document.activeElement.className"));
        await page.Keyboard.PressAsync("Enter");
        Assert.Equal("timeline", await page.EvaluateAsync<string>("document.activeElement.id"));
        Assert.Equal("solid", await page.EvaluateAsync<string>("getComputedStyle(document.activeElement).outlineStyle"));

        // Arrow keys: the first press selects the newest operation; Left stays with the same agent, Up changes agent.
        var detail = page.Locator("#detail h3");
        await page.Keyboard.PressAsync("ArrowLeft");
        await Expect(page.Locator("#timeline-status")).ToContainTextAsync(new Regex(@"Operation \d+ of 20"));
        var newest = await detail.InnerTextAsync();
        var agent = newest[(newest.LastIndexOf(" by ", StringComparison.Ordinal) + 4)..];
        await page.Keyboard.PressAsync("Home");
        await Expect(page.Locator("#detail")).ToContainTextAsync("#1");
        await page.Keyboard.PressAsync("ArrowRight");
        await Expect(page.Locator("#detail")).ToContainTextAsync("#2");
        await page.Keyboard.PressAsync("ArrowDown");
        await Expect(detail).Not.ToContainTextAsync("by onboarding");
        var lane = await page.Locator(".tl-label.current").InnerTextAsync();
        Assert.DoesNotContain("onboarding", lane, StringComparison.Ordinal);
        await page.Keyboard.PressAsync("ArrowUp");
        await Expect(detail).ToContainTextAsync("by onboarding");
        await page.Keyboard.PressAsync("End");
        await Expect(detail).ToContainTextAsync("by " + agent);

        // L jumps to the first lost update (fees's v2); Enter on the explanation's link selects the blind write that erased it.
        await page.Keyboard.PressAsync("Home");
        await page.Keyboard.PressAsync("l");
        await Expect(page.Locator("#detail .callout.bad")).ToContainTextAsync("This update was lost");
        await Expect(detail).ToHaveTextAsync("put by fees");
        var link = page.Locator("#detail .callout.bad button.link").First;
        await link.FocusAsync();
        Assert.Equal("solid", await page.EvaluateAsync<string>("getComputedStyle(document.activeElement).outlineStyle"));
        await page.Keyboard.PressAsync("Enter");
        await Expect(page.Locator("#detail .callout.bad", new() { HasText = "Lost update." })).ToContainTextAsync("status overwrote version 2 of accounts/acct-42 (written by fees)");
        await Expect(detail).ToHaveTextAsync("put by status");
        Assert.Equal("timeline", await page.EvaluateAsync<string>("document.activeElement.id"));

        // Tabs follow the WAI-ARIA pattern: one tab stop, arrow keys move and activate.
        await page.Locator("#tab-keys").FocusAsync();
        await page.Keyboard.PressAsync("ArrowRight");
        await Expect(page.Locator("#tab-agents")).ToHaveAttributeAsync("aria-selected", "true");
        await Expect(page.Locator("#pane-agents")).ToBeVisibleAsync();
        await Expect(page.Locator("#pane-keys")).ToBeHiddenAsync();
        Assert.Equal("tab-agents", await page.EvaluateAsync<string>("document.activeElement.id"));
        await Expect(page.Locator("#agents-body")).ToContainTextAsync("status");
        await page.Keyboard.PressAsync("End");
        await Expect(page.Locator("#tab-streams")).ToHaveAttributeAsync("aria-selected", "true");
        await page.Keyboard.PressAsync("Home");
        await Expect(page.Locator("#tab-keys")).ToHaveAttributeAsync("aria-selected", "true");
        Assert.Equal(-1, await page.Locator("#tab-agents").EvaluateAsync<int>("e => e.tabIndex"));

        // Every interactive control has an accessible name.
        var unnamed = await page.EvaluateAsync<string[]>("""
            [...document.querySelectorAll('button, select, input, [tabindex="0"]')]
              .filter(e => e.offsetParent !== null)
              .filter(e => !(e.getAttribute('aria-label') || e.textContent.trim() || (e.labels && e.labels.length) || e.getAttribute('title')))
              .map(e => e.outerHTML.slice(0, 80))
            """);
        Assert.Empty(unnamed);

        await page.Locator("#timeline").FocusAsync();
        await page.Keyboard.PressAsync("Home");
        await page.Keyboard.PressAsync("c");
        await Artifacts.ScreenshotAsync(page, "keyboard-navigation");
    }
}
