using System.Buffers;
using System.Globalization;
using System.Text.Json;

namespace Concord.Engine;

/// <summary>A consistent image of the whole store at one revision.</summary>
internal sealed record SnapshotImage(long Revision, long LastTicks, IReadOnlyList<SnapshotImage.Namespace> Namespaces)
{
    public sealed record Namespace(string Name, IReadOnlyList<ConcordRecord> Records, IReadOnlyList<IdempotencyEntry> Idempotency, IReadOnlyDictionary<string, long> Fences);
}

/// <summary>
/// Snapshot files: <c>snapshot-{revision:D20}.snap</c>, framed like the log (magic, then checksummed JSON frames:
/// a header, one frame per record / idempotency entry / fence, and a footer with the frame count so truncation is caught).
/// Written to a temporary file, fsynced, then renamed: a snapshot file either is complete or does not exist.
/// </summary>
internal static class Snapshots
{
    private const string Prefix = "snapshot-";
    private const string Suffix = ".snap";

    public static string PathFor(string dir, long revision) => Path.Combine(dir, $"{Prefix}{revision:D20}{Suffix}");

    public static void Write(string dir, SnapshotImage image)
    {
        var final = PathFor(dir, image.Revision);
        var temp = final + ".tmp";
        var buffer = new ArrayBufferWriter<byte>(4096);
        long frames = 0;
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
        {
            stream.Write(Framing.SnapshotMagic);
            Frame(stream, buffer, w =>
            {
                w.WriteStartObject();
                w.WriteNumber("rev", image.Revision);
                w.WriteNumber("ticks", image.LastTicks);
                w.WriteEndObject();
            });
            foreach (var ns in image.Namespaces)
            {
                foreach (var record in ns.Records)
                {
                    Frame(stream, buffer, w =>
                    {
                        w.WriteStartObject();
                        w.WriteString("ns", ns.Name);
                        w.WritePropertyName("r");
                        Codec.WriteRecord(w, record);
                        w.WriteEndObject();
                    });
                    frames++;
                }
                foreach (var idem in ns.Idempotency)
                {
                    Frame(stream, buffer, w =>
                    {
                        w.WriteStartObject();
                        w.WriteString("ns", ns.Name);
                        w.WritePropertyName("i");
                        Codec.WriteIdempotency(w, idem);
                        w.WriteEndObject();
                    });
                    frames++;
                }
                foreach (var (name, token) in ns.Fences)
                {
                    Frame(stream, buffer, w =>
                    {
                        w.WriteStartObject();
                        w.WriteString("ns", ns.Name);
                        w.WriteString("lock", name);
                        w.WriteNumber("token", token);
                        w.WriteEndObject();
                    });
                    frames++;
                }
            }
            Frame(stream, buffer, w =>
            {
                w.WriteStartObject();
                w.WriteNumber("end", frames);
                w.WriteEndObject();
            });
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp, final, overwrite: true);
        FileSystem.SyncDirectory(dir);

        // The snapshot covers every revision ≤ image.Revision: older snapshots and log segments are now redundant.
        foreach (var old in Directory.EnumerateFiles(dir, Prefix + "*" + Suffix))
        {
            if (ParseRevision(old) is { } rev && rev < image.Revision) File.Delete(old);
        }
        var logDir = WriteAheadLog.SegmentDirectory(dir);
        foreach (var segment in Directory.EnumerateFiles(logDir, "*.log"))
        {
            if (long.TryParse(Path.GetFileNameWithoutExtension(segment), NumberStyles.None, CultureInfo.InvariantCulture, out var first) && first <= image.Revision)
                File.Delete(segment);
        }
        FileSystem.SyncDirectory(logDir);
    }

    private static void Frame(Stream stream, ArrayBufferWriter<byte> buffer, Action<Utf8JsonWriter> write)
    {
        buffer.ResetWrittenCount();
        using (var w = new Utf8JsonWriter(buffer)) write(w);
        Framing.WriteFrame(stream, buffer.WrittenSpan);
    }

    public static long? ParseRevision(string path)
    {
        var name = Path.GetFileName(path);
        if (!name.StartsWith(Prefix, StringComparison.Ordinal) || !name.EndsWith(Suffix, StringComparison.Ordinal)) return null;
        return long.TryParse(name.AsSpan(Prefix.Length, name.Length - Prefix.Length - Suffix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var r) ? r : null;
    }

    /// <summary>Reads and fully validates a snapshot. Any damage is corruption: a snapshot is renamed into place only once complete.</summary>
    public static SnapshotImage Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < Framing.SnapshotMagic.Length || !bytes.AsSpan(0, Framing.SnapshotMagic.Length).SequenceEqual(Framing.SnapshotMagic))
            throw new CorruptDataException(path, 0, "not a Concord snapshot (bad magic)");
        var memory = bytes.AsMemory();
        long offset = Framing.SnapshotMagic.Length;
        var namespaces = new Dictionary<string, (List<ConcordRecord> Records, List<IdempotencyEntry> Idem, Dictionary<string, long> Fences)>(StringComparer.Ordinal);
        long revision = -1, ticks = 0, frames = 0;
        var ended = false;
        while (true)
        {
            var status = Framing.TryRead(memory, offset, out var payload, out var next, out var reason);
            if (status == Framing.ReadStatus.End) break;
            if (status == Framing.ReadStatus.Torn || ended) throw new CorruptDataException(path, offset, ended ? "data after the end frame" : reason);
            try
            {
                using var doc = JsonDocument.Parse(payload);
                var root = doc.RootElement;
                if (revision < 0)
                {
                    revision = root.GetProperty("rev").GetInt64();
                    ticks = root.GetProperty("ticks").GetInt64();
                }
                else if (root.TryGetProperty("end", out var end))
                {
                    if (end.GetInt64() != frames) throw new CorruptDataException(path, offset, $"footer counts {end.GetInt64()} frames but {frames} were read");
                    ended = true;
                }
                else
                {
                    var ns = root.GetProperty("ns").GetString()!;
                    if (!namespaces.TryGetValue(ns, out var state)) namespaces[ns] = state = ([], [], new(StringComparer.Ordinal));
                    if (root.TryGetProperty("r", out var r)) state.Records.Add(Codec.ReadRecord(r));
                    else if (root.TryGetProperty("i", out var i)) state.Idem.Add(Codec.ReadIdempotency(i));
                    else state.Fences[root.GetProperty("lock").GetString()!] = root.GetProperty("token").GetInt64();
                    frames++;
                }
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                throw new CorruptDataException(path, offset, $"unreadable frame: {e.Message}");
            }
            offset = next;
        }
        if (!ended) throw new CorruptDataException(path, offset, "snapshot is truncated (no end frame)");
        return new SnapshotImage(revision, ticks, [.. namespaces.Select(kv => new SnapshotImage.Namespace(kv.Key, kv.Value.Records, kv.Value.Idem, kv.Value.Fences))]);
    }
}

/// <summary>Startup recovery: newest snapshot, then every later log entry in order.</summary>
internal static class Recovery
{
    public readonly record struct Outcome(long SnapshotRevision, long LastRevision, long LastTicks);

    public static Outcome Load(string dir, Action<SnapshotImage> installSnapshot, Action<CommitEntry> installCommit)
    {
        foreach (var temp in Directory.EnumerateFiles(dir, "*.snap.tmp")) File.Delete(temp); // an interrupted snapshot
        long snapshotRevision = 0, lastTicks = 0;
        var newest = Directory.EnumerateFiles(dir, "snapshot-*.snap")
            .Select(p => (Path: p, Rev: Snapshots.ParseRevision(p)))
            .Where(x => x.Rev is not null)
            .OrderByDescending(x => x.Rev)
            .FirstOrDefault();
        if (newest.Path is not null)
        {
            var image = Snapshots.Read(newest.Path);
            installSnapshot(image);
            snapshotRevision = image.Revision;
            lastTicks = image.LastTicks;
        }

        var last = snapshotRevision;
        var logDir = WriteAheadLog.SegmentDirectory(dir);
        if (!Directory.Exists(logDir)) return new Outcome(snapshotRevision, last, lastTicks);
        var segments = Directory.EnumerateFiles(logDir, "*.log").Order(StringComparer.Ordinal).ToList();
        for (var s = 0; s < segments.Count; s++)
        {
            var path = segments[s];
            var isLast = s == segments.Count - 1;
            // A segment is named by the first revision it was created for: everything before that name existed, even
            // when no commit follows in the log (so a lost snapshot or segment cannot pass for an empty log).
            if (FirstRevision(path) is { } first && first > last + 1)
                throw new CorruptDataException(path, 0, $"the log starts at revision {first} but recovery reached only {last}: revisions {last + 1}..{first - 1} are missing (a gap)");
            var bytes = File.ReadAllBytes(path);
            var memory = bytes.AsMemory();
            if (bytes.Length < Framing.LogMagic.Length || !bytes.AsSpan(0, Framing.LogMagic.Length).SequenceEqual(Framing.LogMagic))
            {
                // The header is fsynced before any commit is appended, so a segment without one holds no commit: it was
                // being created when the process stopped. Anything longer is damage, never silently dropped.
                if (bytes.Length > Framing.LogMagic.Length) throw new CorruptDataException(path, 0, "not a Concord log segment (bad magic)");
                if (isLast) Truncate(path, 0);
                continue;
            }
            long offset = Framing.LogMagic.Length;
            var truncated = false;
            while (true)
            {
                var status = Framing.TryRead(memory, offset, out var payload, out var next, out var reason);
                if (status == Framing.ReadStatus.End) break;
                if (status == Framing.ReadStatus.Torn)
                {
                    // A torn tail is the expected trace of a crash mid-write: nothing after it was acknowledged.
                    if (isLast) { Truncate(path, offset); truncated = true; break; }
                    throw new CorruptDataException(path, offset, reason + " in a sealed log segment");
                }
                CommitEntry commit;
                try
                {
                    commit = Codec.ReadCommit(payload.Span);
                }
                catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
                {
                    throw new CorruptDataException(path, offset, $"checksummed entry is unreadable: {e.Message}");
                }
                if (commit.Revision > snapshotRevision)
                {
                    if (commit.Revision != last + 1) throw new CorruptDataException(path, offset, $"revision {commit.Revision} follows {last}: the log has a gap");
                    installCommit(commit);
                    last = commit.Revision;
                    lastTicks = Math.Max(lastTicks, commit.Time.UtcTicks);
                }
                offset = next;
            }
            // The newest segment may hold commits the crashed process wrote but never fsynced (still in the page cache).
            // They are about to become visible and new commits will build on them: make them durable first.
            if (isLast && !truncated) Sync(path);
        }
        return new Outcome(snapshotRevision, last, lastTicks);
    }

    private static long? FirstRevision(string segmentPath) =>
        long.TryParse(Path.GetFileNameWithoutExtension(segmentPath), NumberStyles.None, CultureInfo.InvariantCulture, out var first) ? first : null;

    private static void Sync(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Write);
        stream.Flush(flushToDisk: true);
    }

    private static void Truncate(string path, long length)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Write);
        stream.SetLength(length);
        stream.Flush(flushToDisk: true);
    }
}
