using System.Runtime;
using System.Runtime.InteropServices;
using Microsoft.Data.Sqlite;

namespace Concord.Benchmarks.Load;

/// <summary>The machine a run was measured on; figures are only comparable within one machine.</summary>
public sealed record MachineInfo(string Cpu, int LogicalCores, string Memory, string Os, string Runtime, string Gc, string Disk, string WorkDirectory, string Sqlite)
{
    public static MachineInfo Collect(string workDirectory)
    {
        var cpu = FirstValue("/proc/cpuinfo", "model name") ?? RuntimeInformation.ProcessArchitecture.ToString();
        var mhz = FirstValue("/proc/cpuinfo", "cpu MHz");
        if (mhz is not null && double.TryParse(mhz, System.Globalization.CultureInfo.InvariantCulture, out var freq)) cpu += $" @ {freq / 1000:0.0} GHz";
        var memKb = FirstValue("/proc/meminfo", "MemTotal")?.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
        var memory = long.TryParse(memKb, out var kb) ? $"{kb / 1024.0 / 1024.0:0.0} GiB" : "unknown";
        var gc = $"{(GCSettings.IsServerGC ? "server" : "workstation")}, {(GCSettings.LatencyMode == GCLatencyMode.Batch ? "non-concurrent" : "concurrent")}";
        return new MachineInfo(cpu, Environment.ProcessorCount, memory, OsName(), RuntimeInformation.FrameworkDescription, gc,
            DiskOf(workDirectory), workDirectory, SqliteVersion());
    }

    /// <summary>The 1, 5 and 15 minute load averages from /proc/loadavg ("unknown" elsewhere).</summary>
    public static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(" / ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";

    private static string? FirstValue(string path, string name)
    {
        if (!File.Exists(path)) return null;
        foreach (var line in File.ReadLines(path))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0 && line[..colon].Trim() == name) return line[(colon + 1)..].Trim();
        }
        return null;
    }

    private static string OsName()
    {
        var pretty = File.Exists("/etc/os-release")
            ? File.ReadLines("/etc/os-release").FirstOrDefault(l => l.StartsWith("PRETTY_NAME=", StringComparison.Ordinal))?["PRETTY_NAME=".Length..].Trim('"')
            : null;
        return pretty is null ? RuntimeInformation.OSDescription : $"{pretty} (kernel {Environment.OSVersion.Version})";
    }

    /// <summary>Device, file system and kind of the disk holding <paramref name="path"/> (from /proc/mounts and /sys/block).</summary>
    private static string DiskOf(string path)
    {
        if (!File.Exists("/proc/mounts")) return "unknown";
        var full = Path.GetFullPath(path);
        string? device = null, fs = null, mountPoint = null;
        foreach (var line in File.ReadLines("/proc/mounts"))
        {
            var parts = line.Split(' ');
            if (parts.Length < 3) continue;
            var mp = parts[1];
            var under = mp == "/" || full == mp || full.StartsWith(mp + "/", StringComparison.Ordinal);
            if (under && (mountPoint is null || mp.Length >= mountPoint.Length))
            {
                (device, mountPoint, fs) = (parts[0], mp, parts[2]);
            }
        }
        if (device is null) return "unknown";
        var name = Path.GetFileName(device);
        var sys = $"/sys/block/{name}";
        var details = new List<string> { $"{device} on {mountPoint} ({fs})" };
        var driver = Directory.Exists($"{sys}/device/driver") ? Path.GetFileName(new DirectoryInfo($"{sys}/device/driver").ResolveLinkTarget(true)?.FullName ?? "") : "";
        if (driver.Length > 0) details.Add($"driver {driver}");
        if (File.Exists($"{sys}/queue/rotational")) details.Add(File.ReadAllText($"{sys}/queue/rotational").Trim() == "1" ? "reports rotational" : "non-rotational");
        return string.Join(", ", details);
    }

    private static string SqliteVersion()
    {
        using var connection = new SqliteConnection("Data Source=:memory:");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "select sqlite_version()";
        return $"SQLite {command.ExecuteScalar()} via Microsoft.Data.Sqlite {typeof(SqliteConnection).Assembly.GetName().Version}";
    }
}
