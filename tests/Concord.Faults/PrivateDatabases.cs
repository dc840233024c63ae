using System.Diagnostics;

namespace Concord.Faults;

/// <summary>
/// The fault suite's own PostgreSQL cluster (port 5439) and Redis (port 6389), driven through
/// <c>scripts/fault-dbs.sh</c>: the nemesis really restarts and crashes them, which it must never do to the shared
/// instances on 5432/6379.
/// </summary>
public sealed record PrivateDatabases(string Postgres, string Redis)
{
    /// <summary>Real database faults the nemesis can inject, per backend (each is a <c>fault-dbs.sh</c> command).</summary>
    public static IReadOnlyList<string> FaultsFor(string backend) => backend switch
    {
        "postgres" => ["pg-restart-fast", "pg-restart-immediate"],
        "redis" => ["redis-shutdown", "redis-shutdown-nosave", "redis-sigkill"],
        _ => [],
    };

    /// <summary>The fault that crashes the database hardest: run once more right before checking, so every check reads recovered state.</summary>
    public static string? CrashFor(string backend) => backend switch
    {
        "postgres" => "pg-restart-immediate",
        "redis" => "redis-sigkill",
        _ => null,
    };

    /// <summary><c>scripts/fault-dbs.sh</c>, found by walking up from the binary (the repository layout), or null.</summary>
    public static string? Script
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "scripts", "fault-dbs.sh");
                if (File.Exists(candidate)) return candidate;
            }
            return null;
        }
    }

    /// <summary>Creates (if needed) and starts both instances; null plus a reason when this machine cannot (not root, tools missing).</summary>
    public static async Task<(PrivateDatabases? Databases, string? SkipReason)> StartAsync(CancellationToken ct)
    {
        if (!OperatingSystem.IsLinux()) return (null, "real database restarts need Linux (pg_ctlcluster, redis-server)");
        if (Script is null) return (null, "scripts/fault-dbs.sh not found next to the binary's repository");
        var (code, stdout, stderr) = await RunScriptAsync(["up"], ct);
        if (code == 3) return (null, stderr.Trim());
        if (code != 0) throw new InvalidOperationException($"fault-dbs.sh up failed ({code}): {stderr.Trim()}");
        string? Value(string name) => stdout.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith(name + "=", StringComparison.Ordinal))?[(name.Length + 1)..];
        return (new PrivateDatabases(
            Value("CONCORD_FAULTS_PG") ?? throw new InvalidOperationException("fault-dbs.sh printed no CONCORD_FAULTS_PG"),
            Value("CONCORD_FAULTS_REDIS") ?? throw new InvalidOperationException("fault-dbs.sh printed no CONCORD_FAULTS_REDIS")), null);
    }

    /// <summary>The connection string of <paramref name="backend"/>'s private instance.</summary>
    public string ConnectionFor(string backend) => backend == "redis" ? Redis : Postgres;

    /// <summary>Injects one database fault (a <c>fault-dbs.sh</c> command that stops and restarts the instance) and returns when it is back.</summary>
    public static async Task InjectAsync(string fault, CancellationToken ct)
    {
        var (code, _, stderr) = await RunScriptAsync([fault], ct);
        if (code != 0) throw new InvalidOperationException($"fault-dbs.sh {fault} failed ({code}): {stderr.Trim()}");
    }

    private static async Task<(int Code, string Stdout, string Stderr)> RunScriptAsync(string[] args, CancellationToken ct)
    {
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Script ?? throw new InvalidOperationException("scripts/fault-dbs.sh not found"));
        foreach (var a in args) info.ArgumentList.Add(a);
        using var process = Process.Start(info) ?? throw new InvalidOperationException("could not start bash");
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        return (process.ExitCode, await stdout, await stderr);
    }
}
