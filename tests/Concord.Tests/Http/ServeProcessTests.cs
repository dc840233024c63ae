using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Concord.Engine;

namespace Concord.Tests.Http;

/// <summary><c>concord serve</c> as a real process: configuration sources, and SIGTERM on the durable engine.</summary>
public sealed class ServeProcessTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    [Fact]
    public async Task Serve_Sigterm_OnEmbeddedEngine_ExitsCleanlyWithEverythingDurable()
    {
        var dir = Directory.CreateTempSubdirectory("concord-serve-").FullName;
        try
        {
            var serve = await ServeProcess.StartAsync(["--backend", "embedded", "--data", dir]);
            await using (serve)
            {
                using var http = new HttpClient { BaseAddress = serve.BaseAddress };
                for (var i = 0; i < 20; i++)
                    (await http.PutAsync($"v1/ns/t/state/k/{i}", Json($$"""{"i":{{i}}}"""), Ct)).EnsureSuccessStatusCode();
                Assert.Equal(0, await serve.TerminateAsync());
                Assert.Contains("Concord store closed", serve.Output, StringComparison.Ordinal);
            }
            // The process released the data directory, and every acknowledged write is there.
            await using var engine = await ConcordEngine.OpenAsync(new ConcordEngineOptions { DataDirectory = dir }, Ct);
            var page = await engine.ListAsync("t", new ListRequest { Prefix = "k/" }, Ct);
            Assert.Equal(20, page.Records.Count);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Serve_ConfigFileThenEnvironmentThenFlags_ApplyInThatOrder()
    {
        var config = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(config, """
                {
                  "Concord": {
                    "Strict": false,
                    "MaxValueBytes": 64,
                    "ApiKeys": [ { "Key": "file-key", "Name": "from-file", "Namespaces": [ "a" ], "Rights": "Write" } ]
                  }
                }
                """, Ct);
            var env = new Dictionary<string, string> { ["Concord__MaxValueBytes"] = "128" };
            await using var serve = await ServeProcess.StartAsync(["--backend", "memory", "--config", config], env);
            using var http = new HttpClient { BaseAddress = serve.BaseAddress };

            // ApiKeys come from the file.
            using (var anonymous = await http.PutAsync("v1/ns/a/state/k", Json("1"), Ct)) Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "file-key");
            using (var created = await http.PutAsync("v1/ns/a/state/k", Json("1"), Ct)) Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            // Strict=false from the file: a blind overwrite is allowed.
            using (var blind = await http.PutAsync("v1/ns/a/state/k", Json("2"), Ct)) Assert.Equal(HttpStatusCode.OK, blind.StatusCode);
            // The environment (128) beats the file (64): a 100-byte value fits.
            var hundred = "\"" + new string('x', 98) + "\"";
            using (var fits = await http.PutAsync("v1/ns/a/state/big", Json(hundred), Ct)) Assert.Equal(HttpStatusCode.Created, fits.StatusCode);
            using (var tooBig = await http.PutAsync("v1/ns/a/state/bigger", Json("\"" + new string('x', 200) + "\""), Ct))
                Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooBig.StatusCode);
        }
        finally
        {
            File.Delete(config);
        }
    }

    [Fact]
    public async Task Serve_InvalidConfiguration_ExitsWithAnErrorInsteadOfServing()
    {
        var start = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { ServeProcess.CliPath, "serve", "--backend", "memory", "--urls", "http://127.0.0.1:0" }) start.ArgumentList.Add(a);
        start.Environment["Concord__MaxValueBytes"] = "1";
        using var process = System.Diagnostics.Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync(Ct);
        await process.WaitForExitAsync(Ct).WaitAsync(TimeSpan.FromSeconds(60), Ct);
        Assert.Equal(2, process.ExitCode);
        Assert.Contains("MaxValueBytes", await stderr, StringComparison.Ordinal);
    }
}
