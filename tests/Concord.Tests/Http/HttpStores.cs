using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Concord.Client;
using Concord.Engine;
using Concord.Server;
using Concord.Tests.Conformance;
using Concord.Tests.Engine;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Logging;

namespace Concord.Tests.Http;

/// <summary>
/// An <see cref="IConcordStore"/> that is a <see cref="ConcordHttpStore"/> talking to a server it owns: disposing it
/// closes the client, then the server (and the server's store).
/// </summary>
internal sealed class OwnedHttpStore(ConcordHttpStore client, HttpClient http, Func<ValueTask> shutdown) : IConcordStore
{
    public ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default) => client.GetRevisionAsync(cancellationToken);
    public ValueTask<ConcordRecord?> GetAsync(string ns, string key, ReadOptions? options = null, CancellationToken cancellationToken = default) => client.GetAsync(ns, key, options, cancellationToken);
    public ValueTask<ListResult> ListAsync(string ns, ListRequest request, CancellationToken cancellationToken = default) => client.ListAsync(ns, request, cancellationToken);
    public ValueTask<WriteResult> PutAsync(string ns, string key, System.Text.Json.JsonElement value, WriteOptions? options = null, CancellationToken cancellationToken = default) => client.PutAsync(ns, key, value, options, cancellationToken);
    public ValueTask<WriteResult> DeleteAsync(string ns, string key, WriteOptions? options = null, CancellationToken cancellationToken = default) => client.DeleteAsync(ns, key, options, cancellationToken);
    public ValueTask<WriteResult> PatchAsync(string ns, string key, JsonPatch patch, WriteOptions? options = null, CancellationToken cancellationToken = default) => client.PatchAsync(ns, key, patch, options, cancellationToken);
    public ValueTask<TxnResult> TransactAsync(string ns, TxnRequest request, WriteOptions? options = null, CancellationToken cancellationToken = default) => client.TransactAsync(ns, request, options, cancellationToken);
    public IAsyncEnumerable<ChangeEvent> WatchAsync(string ns, WatchRequest request, CancellationToken cancellationToken = default) => client.WatchAsync(ns, request, cancellationToken);

    private int _disposed;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await client.DisposeAsync();
        http.Dispose();
        await shutdown();
    }
}

/// <summary>Stores for the shared suites: the HTTP client over an in-process TestServer, or over a real <c>concord serve</c> process.</summary>
internal static class HttpStores
{
    private static readonly ConcordClientOptions ClientOptions = new() { RetryDelay = TimeSpan.FromMilliseconds(5) };

    /// <summary>ConcordHttpStore → in-process server (TestServer) → a fresh engine configured as the suite asks.</summary>
    public static async Task<IConcordStore> CreateInProcessAsync(StoreFixtureOptions options)
    {
        var engine = ConcordEngine.CreateInMemory(EngineStores.ToEngineOptions(options, null));
        var app = await ConcordServer.CreateAsync([], o => o.Backend = "memory", engine, b =>
        {
            b.WebHost.UseTestServer();
            b.Logging.ClearProviders();
        });
        await app.StartAsync();
        var http = app.GetTestClient();
        return new OwnedHttpStore(new ConcordHttpStore(http, ClientOptions), http, async () =>
        {
            await app.StopAsync();
            await app.DisposeAsync();
            await engine.DisposeAsync();
        });
    }

    /// <summary>ConcordHttpStore → a real <c>concord serve --backend memory</c> child process on a free loopback port.</summary>
    public static async Task<IConcordStore> CreateServeProcessAsync(StoreFixtureOptions options)
    {
        var args = new List<string> { "--backend", "memory" };
        if (!options.StrictMode) args.Add("--no-strict");
        var env = new Dictionary<string, string>();
        if (options.MaxValueBytes is { } max) env["Concord__MaxValueBytes"] = max.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (options.RetainedRevisions is { } retained) env["Concord__RetainedRevisions"] = retained.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (options.IdempotencyRetention is { } idem) env["Concord__IdempotencyRetention"] = idem.ToString("c", System.Globalization.CultureInfo.InvariantCulture);
        if (options.ExpirySweepInterval is { } sweep) env["Concord__ExpirySweepInterval"] = sweep.ToString("c", System.Globalization.CultureInfo.InvariantCulture);
        var process = await ServeProcess.StartAsync(args, env);
        var http = new HttpClient { BaseAddress = process.BaseAddress };
        return new OwnedHttpStore(new ConcordHttpStore(http, ClientOptions), http, process.DisposeAsync);
    }
}

/// <summary>A <c>concord serve</c> child process listening on a free loopback port, ready (its /readyz answered) when returned.</summary>
internal sealed partial class ServeProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output;

    private ServeProcess(Process process, Uri baseAddress, StringBuilder output)
    {
        _process = process;
        BaseAddress = baseAddress;
        _output = output;
    }

    public Uri BaseAddress { get; }

    public int Pid => _process.Id;

    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    /// <summary>Concord.Cli.dll built next to the sources, in the configuration the tests were built in.</summary>
    public static string CliPath
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            var configuration = dir.Parent?.Name ?? "Debug"; // .../bin/<Configuration>/net10.0/
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Concord.slnx"))) dir = dir.Parent;
            Assert.NotNull(dir);
            var path = Path.Combine(dir.FullName, "src", "Concord.Cli", "bin", configuration, "net10.0", "Concord.Cli.dll");
            return File.Exists(path) ? path : Path.Combine(AppContext.BaseDirectory, "Concord.Cli.dll");
        }
    }

    public static async Task<ServeProcess> StartAsync(IEnumerable<string> serveArgs, IDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(CliPath);
        start.ArgumentList.Add("serve");
        start.ArgumentList.Add("--urls");
        start.ArgumentList.Add("http://127.0.0.1:0");
        foreach (var a in serveArgs) start.ArgumentList.Add(a);
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["Logging__LogLevel__Default"] = "Information";
        if (environment is not null) foreach (var (k, v) in environment) start.Environment[k] = v;

        var process = Process.Start(start)!;
        var listening = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        var output = new StringBuilder();
        void OnLine(string? line)
        {
            if (line is null) return;
            lock (output) output.AppendLine(line);
            if (ListeningOn().Match(line) is { Success: true } m) listening.TrySetResult(new Uri(m.Groups[1].Value + "/"));
        }
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) => listening.TrySetException(new InvalidOperationException("concord serve exited early:\n" + Snapshot(output)));

        Uri address;
        try
        {
            // A hang guard, not a timing assertion.
            address = await listening.Task.WaitAsync(TimeSpan.FromSeconds(60));
        }
        catch
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            process.Dispose();
            throw;
        }
        var serve = new ServeProcess(process, address, output);
        using var probe = new HttpClient { BaseAddress = address };
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                using var ready = await probe.GetAsync("readyz");
                if (ready.IsSuccessStatusCode) return serve;
            }
            catch (HttpRequestException) when (attempt < 100)
            {
            }
            await Task.Delay(20);
        }
    }

    private static string Snapshot(StringBuilder output)
    {
        lock (output) return output.ToString();
    }

    [GeneratedRegex(@"Now listening on: (http://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningOn();

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    /// <summary>Asks the process to shut down gracefully (SIGTERM) and waits for it to exit; returns its exit code.</summary>
    public async Task<int> TerminateAsync()
    {
        const int SigTerm = 15;
        Assert.Equal(0, Kill(_process.Id, SigTerm));
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        _process.WaitForExit(); // drains the redirected output
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}

/// <summary>The conformance suite through the HTTP client against an in-process server.</summary>
public sealed class InProcessHttpConformanceTests : StoreConformanceTests
{
    protected override Task<IConcordStore> CreateStoreAsync(StoreFixtureOptions options) => HttpStores.CreateInProcessAsync(options);
}

/// <summary>The conformance suite through the HTTP client against a real <c>concord serve --backend memory</c> process.</summary>
public sealed class ServeProcessConformanceTests : StoreConformanceTests
{
    protected override Task<IConcordStore> CreateStoreAsync(StoreFixtureOptions options) => HttpStores.CreateServeProcessAsync(options);

    protected override string? FakeTimeUnsupportedReason => "a separate server process runs on its own clock";
}
