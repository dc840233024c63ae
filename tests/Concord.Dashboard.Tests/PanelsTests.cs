using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Concord.Coordination.Queues;
using Concord.Coordination.Streams;
using Concord.Server;
using static Microsoft.Playwright.Assertions;

namespace Concord.Dashboard.Tests;

/// <summary>The coordination panels (locks, queues, streams) and the API-key prompt, in the browser.</summary>
public sealed class PanelsTests(BrowserFixture browser)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task CoordinationPanels_ShowLockHoldersAndTokens_QueueDepthInFlightDeadLetters_AndStreams()
    {
        await using var server = await DashboardServer.StartAsync();
        using var http = new HttpClient { BaseAddress = server.Address };
        using (var acquire = await http.PostAsync("v1/ns/ops/locks/acquire", new StringContent("{\"name\":\"acct-42\",\"owner\":\"fees\",\"ttlMs\":120000}", Encoding.UTF8, "application/json"), Ct))
            Assert.True(acquire.IsSuccessStatusCode);
        var queues = new StoreQueueService(server.Journaled);
        for (var i = 0; i < 4; i++) await queues.EnqueueAsync("ops", "invoices", JsonSerializer.SerializeToElement(new { i }), cancellationToken: Ct);
        await queues.EnqueueAsync("ops", "invoices", JsonSerializer.SerializeToElement("poison"), new EnqueueOptions { MaxAttempts = 1, Priority = 9 }, Ct);
        var poison = await queues.LeaseAsync("ops", "invoices", "worker-1", TimeSpan.FromMinutes(5), cancellationToken: Ct);
        await queues.NackAsync(poison.Lease!, "malformed invoice", cancellationToken: Ct);
        await queues.LeaseAsync("ops", "invoices", "worker-2", TimeSpan.FromMinutes(5), cancellationToken: Ct);
        await new StoreStreamService(server.Journaled).AppendAsync("ops", "account/acct-42",
            [new EventData("opened", JsonSerializer.SerializeToElement(1)), new EventData("restricted", JsonSerializer.SerializeToElement(2)), new EventData("reviewed", JsonSerializer.SerializeToElement(3))],
            ExpectedVersion.NoStream, cancellationToken: Ct);
        // One ordinary write, so "ops" is the latest active namespace.
        await new ConcordSession(server.Journaled, "ops", "fees").PutAsync("accounts/acct-42", JsonSerializer.SerializeToElement(new { fees = "unpaid" }), cancellationToken: Ct);

        await using var session = await browser.NewPageAsync();
        var page = session.Page;
        await page.GotoAsync(server.Address.ToString());
        await Expect(page.Locator("#keys-body")).ToContainTextAsync("accounts/acct-42");

        await page.Locator("#tab-keys").FocusAsync();
        await page.Keyboard.PressAsync("ArrowRight");
        await page.Keyboard.PressAsync("ArrowRight"); // Locks
        await Expect(page.Locator("#locks-body")).ToContainTextAsync("acct-42");
        await Expect(page.Locator("#locks-body")).ToContainTextAsync("fees");
        await Expect(page.Locator("#locks-body .token")).ToHaveTextAsync("token 1");

        await page.Keyboard.PressAsync("ArrowRight"); // Queues
        var row = page.Locator("#queues-body tr", new() { HasText = "invoices" });
        await Expect(row).ToContainTextAsync("malformed invoice");
        var cells = await row.Locator("td").AllInnerTextsAsync();
        Assert.Equal(["invoices", "3", "3", "0", "0", "1", "1"], cells.Take(7));
        await Artifacts.ScreenshotAsync(page, "queues");

        await page.Keyboard.PressAsync("ArrowRight"); // Streams
        await Expect(page.Locator("#streams-body")).ToContainTextAsync(new Regex(@"account/acct-42\s*3"));

        // A lock taken while the page is open appears without reloading (coordination changes arrive on the event stream).
        await page.Keyboard.PressAsync("ArrowLeft");
        await page.Keyboard.PressAsync("ArrowLeft"); // Locks
        using (var acquire = await http.PostAsync("v1/ns/ops/locks/acquire", new StringContent("{\"name\":\"payroll\",\"owner\":\"compliance\",\"ttlMs\":120000}", Encoding.UTF8, "application/json"), Ct))
            Assert.True(acquire.IsSuccessStatusCode);
        await Expect(page.Locator("#locks-body")).ToContainTextAsync("payroll");
        await Artifacts.ScreenshotAsync(page, "locks");
    }

    [Fact]
    public async Task WithApiKeys_ThePageAsksForAKey_AndShowsOnlyWhatItMayRead()
    {
        await using var server = await DashboardServer.StartAsync(o => o.ApiKeys =
        [
            new ApiKeyOptions { Key = "writer-key", Name = "writer", Namespaces = ["*"], Rights = ApiRights.Write },
            new ApiKeyOptions { Key = "viewer-key", Name = "viewer", Namespaces = ["team-a"], Rights = ApiRights.Read },
        ]);
        using var http = new HttpClient { BaseAddress = server.Address };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "writer-key");
        foreach (var ns in new[] { "team-a", "team-b" })
        {
            using var put = await http.PutAsync($"v1/ns/{ns}/state/plan", new StringContent("{\"v\":1}", Encoding.UTF8, "application/json"), Ct);
            Assert.True(put.IsSuccessStatusCode);
        }

        await using var session = await browser.NewPageAsync();
        var page = session.Page;
        await page.GotoAsync(server.Address.ToString());
        await Expect(page.Locator("#auth")).ToBeVisibleAsync();
        await Expect(page.Locator("#auth-key")).ToBeFocusedAsync();
        await page.Keyboard.TypeAsync("wrong-key");
        await page.Keyboard.PressAsync("Enter");
        await Expect(page.Locator("#auth-error")).ToContainTextAsync("not accepted");

        await page.Locator("#auth-key").FillAsync("viewer-key");
        await page.Keyboard.PressAsync("Enter");
        await Expect(page.Locator("#auth")).ToBeHiddenAsync();
        await Expect(page.Locator("#live")).ToHaveClassAsync(new Regex("on"));
        await Expect(page.Locator("#stats")).ToContainTextAsync("1 ops");
        Assert.Equal(["All namespaces", "team-a"], await page.Locator("#ns-filter option").AllInnerTextsAsync());

        // Live: the viewer sees team-a's writes, never team-b's.
        using (var put = await http.PutAsync("v1/ns/team-b/state/secret", new StringContent("1", Encoding.UTF8, "application/json"), Ct)) Assert.True(put.IsSuccessStatusCode);
        using (var put = await http.PutAsync("v1/ns/team-a/state/open", new StringContent("1", Encoding.UTF8, "application/json"), Ct)) Assert.True(put.IsSuccessStatusCode);
        await Expect(page.Locator("#stats")).ToContainTextAsync("2 ops");
        Assert.Equal(0, await page.Locator("#tl-svg title", new() { HasText = "team-b" }).CountAsync());
    }
}
