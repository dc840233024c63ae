using Concord.Engine;

namespace Concord.Tests.Engine;

/// <summary>A temporary data directory plus tools to inspect and damage its log segments and snapshots.</summary>
internal sealed class TempDataDirectory : IDisposable
{
    public TempDataDirectory(string? copyFrom = null)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "concord-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
        if (copyFrom is not null) CopyDirectory(copyFrom, Path);
    }

    public string Path { get; }

    public string LogDirectory => WriteAheadLog.SegmentDirectory(Path);

    /// <summary>Keep the directory after the test (for a failing run's post-mortem).</summary>
    public bool Keep { get; set; }

    public ConcordEngineOptions Options(TimeProvider? time = null) =>
        new() { DataDirectory = Path, TimeProvider = time ?? TimeProvider.System };

    public Task<ConcordEngine> OpenAsync(TimeProvider? time = null) =>
        ConcordEngine.OpenAsync(Options(time), TestContext.Current.CancellationToken);

    /// <summary>Log segments in replay order.</summary>
    public List<string> Segments() =>
        Directory.Exists(LogDirectory) ? [.. Directory.EnumerateFiles(LogDirectory, "*.log").Order(StringComparer.Ordinal)] : [];

    /// <summary>Snapshot files, oldest first.</summary>
    public List<string> Snapshots() =>
        [.. Directory.EnumerateFiles(Path, "snapshot-*.snap").Order(StringComparer.Ordinal)];

    public static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        // LOCK is held (and unreadable) while an engine has the directory open; it carries no data.
        foreach (var file in Directory.EnumerateFiles(from).Where(f => System.IO.Path.GetFileName(f) != "LOCK")) File.Copy(file, System.IO.Path.Combine(to, System.IO.Path.GetFileName(file)), overwrite: true);
        foreach (var dir in Directory.EnumerateDirectories(from)) CopyDirectory(dir, System.IO.Path.Combine(to, System.IO.Path.GetFileName(dir)));
    }

    public void Dispose()
    {
        if (Keep) return;
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp directory is harmless.
        }
    }
}

/// <summary>One frame of a log segment or snapshot as found on disk.</summary>
internal readonly record struct DiskFrame(long Offset, int Length, ReadOnlyMemory<byte> Payload)
{
    /// <summary>Offset just past the frame.</summary>
    public long End => Offset + Length;

    /// <summary>The revision of a log frame.</summary>
    public long Revision => Codec.ReadCommit(Payload.Span).Revision;
}

internal static class DiskFrames
{
    /// <summary>Every valid frame after the 8-byte magic, up to the first torn one.</summary>
    public static List<DiskFrame> Read(byte[] file)
    {
        var frames = new List<DiskFrame>();
        long offset = Framing.LogMagic.Length;
        while (Framing.TryRead(file, offset, out var payload, out var next, out _) == Framing.ReadStatus.Ok)
        {
            frames.Add(new DiskFrame(offset, (int)(next - offset), payload));
            offset = next;
        }
        return frames;
    }

    public static List<DiskFrame> Read(string path) => Read(File.ReadAllBytes(path));

    public static void Truncate(string path, long length)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Write);
        stream.SetLength(length);
    }

    public static void FlipByte(string path, long offset, byte mask = 0xFF)
    {
        var bytes = File.ReadAllBytes(path);
        bytes[offset] ^= mask;
        File.WriteAllBytes(path, bytes);
    }
}
