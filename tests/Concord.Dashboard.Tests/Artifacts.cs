using Microsoft.Playwright;

namespace Concord.Dashboard.Tests;

/// <summary>Where test artifacts go: artifacts/ at the repository root (screenshots/, perf/).</summary>
internal static class Artifacts
{
    public static string Root { get; } = FindRoot();

    public static string Directory(string name)
    {
        var path = Path.Combine(Root, "artifacts", name);
        System.IO.Directory.CreateDirectory(path);
        return path;
    }

    public static async Task<string> ScreenshotAsync(IPage page, string name)
    {
        var path = Path.Combine(Directory("screenshots"), name + ".png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path });
        TestContext.Current.AddAttachment(name, path);
        return path;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Concord.slnx"))) return dir.FullName;
        }
        return System.IO.Directory.GetCurrentDirectory();
    }
}
