using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Concord.Faults;

/// <summary>
/// A <c>concord serve</c> child process on a free loopback port that the nemesis can SIGKILL, restart (same data
/// directory, new port), SIGSTOP and SIGCONT, and whose memory and file handles can be sampled from <c>/proc</c>.
/// </summary>
public sealed partial class ServeProcess : IAsyncDisposable
{
    private const int SigKill = 9;
    private const int SigCont = 18;
    private const int SigStop = 19;

    private readonly string[] _args;
    private readonly IReadOnlyDictionary<string, string> _environment;
    private Process? _process;

    // Children must not outlive the runner (a timeout or Ctrl-C would otherwise leave a SIGSTOPped server behind).
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<ServeProcess, bool> Live = new();

    static ServeProcess() => AppDomain.CurrentDomain.ProcessExit += (_, _) =>
    {
        foreach (var serve in Live.Keys)
        {
            try
            {
                if (serve._process is { HasExited: false } p)
                {
                    Signal(p.Id, SigCont);
                    Signal(p.Id, SigKill);
                }
            }
            catch (InvalidOperationException)
            {
            }
        }
    };

    private ServeProcess(string[] args, IReadOnlyDictionary<string, string>? environment)
    {
        _args = args;
        _environment = environment ?? new Dictionary<string, string>();
        Live[this] = true;
    }

    public int Port { get; private set; }

    public Uri BaseAddress => new($"http://127.0.0.1:{Port}/");

    public int Pid => _process?.Id ?? 0;

    public int Starts { get; private set; }

    /// <summary>
    /// Starts <c>concord serve --backend BACKEND [--connection C] [--data DIR] --no-strict</c>, with
    /// <paramref name="environment"/> added to the child's environment (configuration such as <c>Concord__X</c>) on every start.
    /// </summary>
    public static async Task<ServeProcess> StartAsync(string backend, string? connection, string? dataDirectory, CancellationToken ct, IReadOnlyDictionary<string, string>? environment = null)
    {
        var args = new List<string> { "serve", "--backend", backend, "--no-strict" };
        if (connection is not null) args.AddRange(["--connection", connection]);
        if (dataDirectory is not null) args.AddRange(["--data", dataDirectory]);
        var serve = new ServeProcess([.. args], environment);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await serve.RestartAsync(ct);
                return serve;
            }
            catch (InvalidOperationException) when (attempt < 3)
            {
                // A busy machine can make the first database connection time out; the process exited, try again.
                await Task.Delay(1000, ct);
            }
        }
    }

    /// <summary>Starts the process (again) on a fresh port and waits until <c>/readyz</c> answers.</summary>
    public async Task RestartAsync(CancellationToken ct)
    {
        if (_process is { HasExited: false }) throw new InvalidOperationException("the server is still running");
        _process?.Dispose();
        Port = FreePort();
        var cli = Path.Combine(AppContext.BaseDirectory, "Concord.Cli.dll");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(cli);
        foreach (var a in _args) info.ArgumentList.Add(a);
        foreach (var (name, value) in _environment) info.Environment[name] = value;
        info.ArgumentList.Add("--urls");
        info.ArgumentList.Add($"http://127.0.0.1:{Port}");
        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start concord serve");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, e) => { if (e.Data is { Length: > 0 } line) LastError = line; };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
        Starts++;
        using var http = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(2) };
        for (var i = 0; i < 600; i++)
        {
            if (process.HasExited) throw new InvalidOperationException($"concord serve exited with {process.ExitCode}: {LastError}");
            try
            {
                if ((await http.GetAsync("readyz", ct)).StatusCode == HttpStatusCode.OK) return;
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested)
            {
            }
            await Task.Delay(50, ct);
        }
        throw new TimeoutException("concord serve did not become ready within 30 s");
    }

    public string? LastError { get; private set; }

    /// <summary>SIGKILL: no shutdown hooks, no flush; whatever was not fsynced is gone.</summary>
    public async Task KillAsync()
    {
        if (_process is not { HasExited: false } p) return;
        _ = Signal(p.Id, SigKill);
        await p.WaitForExitAsync(CancellationToken.None);
    }

    public void Pause() => Signal(Pid, SigStop);

    public void Resume() => Signal(Pid, SigCont);

    /// <summary>Resident set size in bytes (VmRSS), or 0 when the process is gone.</summary>
    public long ResidentBytes()
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
            {
                if (!line.StartsWith("VmRSS:", StringComparison.Ordinal)) continue;
                var kb = line["VmRSS:".Length..].Trim().Split(' ')[0];
                return long.Parse(kb, CultureInfo.InvariantCulture) * 1024;
            }
        }
        catch (IOException)
        {
        }
        return 0;
    }

    /// <summary>Open file descriptors (sockets, log segments, …), counted in <c>/proc/PID/fd</c>.</summary>
    public int OpenHandles()
    {
        try
        {
            return Directory.GetFileSystemEntries($"/proc/{Pid}/fd").Length;
        }
        catch (IOException)
        {
            return 0;
        }
        catch (UnauthorizedAccessException)
        {
            return 0;
        }
    }

    private static int Signal(int pid, int signal)
    {
        if (pid <= 0) return -1;
        return SysKill(pid, signal);
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SysKill(int pid, int sig);

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { } p)
        {
            if (!p.HasExited)
            {
                Resume();
                p.Kill(entireProcessTree: true);
                await p.WaitForExitAsync(CancellationToken.None);
            }
            p.Dispose();
            _process = null;
        }
        Live.TryRemove(this, out _);
    }
}
