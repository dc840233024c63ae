using Microsoft.Playwright;

[assembly: AssemblyFixture(typeof(Concord.Dashboard.Tests.BrowserFixture))]

namespace Concord.Dashboard.Tests;

/// <summary>
/// One headless Chromium for the whole run: Debian's /usr/bin/chromium, driven by Playwright. Playwright's own browser
/// downloads are never used (scripts/ensure-deps.sh installs the distribution's Chromium).
/// </summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    public const string ChromiumPath = "/usr/bin/chromium";

    private IPlaywright? _playwright;

    public IBrowser Browser { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        if (!File.Exists(ChromiumPath)) throw new InvalidOperationException($"{ChromiumPath} is missing: run scripts/ensure-deps.sh (apt-get install chromium)");
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
        });
    }

    /// <summary>A fresh page sized like a laptop screen (1366×768), in its own context; dispose it to close both.</summary>
    public async Task<BrowserPage> NewPageAsync()
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            ViewportSize = new ViewportSize { Width = 1366, Height = 768 },
            DeviceScaleFactor = 1,
            ReducedMotion = ReducedMotion.Reduce,
        });
        var page = await context.NewPageAsync();
        page.SetDefaultTimeout(15_000);
        // Browser-side problems show up in the test's output (events arrive on Playwright's threads: capture the helper now).
        var output = TestContext.Current.TestOutputHelper;
        page.Console += (_, m) =>
        {
            if (m.Type is "error" or "warning" && !m.Text.Contains("favicon", StringComparison.Ordinal)) Log(output, $"[browser {m.Type}] {m.Text}");
        };
        page.PageError += (_, e) => Log(output, $"[page error] {e}");
        return new BrowserPage(page);
    }

    private static void Log(ITestOutputHelper? output, string line)
    {
        try
        {
            output?.WriteLine(line);
        }
        catch (InvalidOperationException)
        {
            // The test already finished (a late message from a closing page).
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Browser is not null) await Browser.CloseAsync();
        _playwright?.Dispose();
    }
}

/// <summary>A page and its browser context, closed together.</summary>
public sealed class BrowserPage(IPage page) : IAsyncDisposable
{
    public IPage Page { get; } = page;

    public async ValueTask DisposeAsync() => await Page.Context.CloseAsync();
}
