using System.Buffers;

namespace Concord.Engine;

/// <summary>
/// The durable log: segment files of checksummed frames, written by one flusher task with group commit.
/// Writers append under the engine's write lock and await <see cref="WaitDurableAsync"/>; the flusher writes
/// everything appended so far, fsyncs once, and then acknowledges the whole group.
/// </summary>
/// <remarks>
/// Lock order: engine write lock → <c>_bufferGate</c>; the flusher takes <c>_fileGate</c> → <c>_bufferGate</c> and
/// never the engine write lock, so no cycle exists.
/// </remarks>
internal sealed class WriteAheadLog : IAsyncDisposable
{
    private sealed class Batch
    {
        public readonly ArrayBufferWriter<byte> Buffer = new(64 * 1024);
        public readonly TaskCompletionSource Durable = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public long LastRevision;
        public long FirstRevision;
    }

    private readonly string _directory;
    private readonly Action<long> _onDurable;
    private readonly Lock _bufferGate = new();
    private readonly SemaphoreSlim _fileGate = new(1, 1);
    private readonly SemaphoreSlim _signal = new(0);
    private readonly CancellationTokenSource _stop = new();
    private Batch _current = new();
    private Batch? _flushing;
    private long _durableRevision;
    private FileStream _segment;
    private Task? _flusher;
    private Exception? _fault;
    private bool _signalled;

    private WriteAheadLog(string directory, FileStream segment, long durableRevision, Action<long> onDurable)
    {
        _directory = directory;
        _segment = segment;
        _durableRevision = durableRevision;
        _onDurable = onDurable;
    }

    /// <summary>Bytes written since the last <see cref="Rotate"/>; drives automatic snapshots.</summary>
    public long BytesSinceRotation { get; private set; }

    public long DurableRevision => Volatile.Read(ref _durableRevision);

    public static string SegmentDirectory(string dataDirectory) => Path.Combine(dataDirectory, "log");

    public static string SegmentPath(string dataDirectory, long firstRevision) =>
        Path.Combine(SegmentDirectory(dataDirectory), $"{firstRevision:D20}.log");

    /// <summary>Opens a new segment starting at <paramref name="nextRevision"/> (recovery already ran).</summary>
    public static WriteAheadLog Open(string dataDirectory, long nextRevision, Action<long> onDurable)
    {
        Directory.CreateDirectory(SegmentDirectory(dataDirectory));
        // Make the directories' own entries durable (a new data directory, its log directory, LOCK), not just the
        // segment files inside: otherwise a power loss after the first acknowledged write could lose the whole log.
        FileSystem.SyncDirectory(dataDirectory);
        if (Path.GetDirectoryName(dataDirectory) is { Length: > 0 } parent)
        {
            try
            {
                FileSystem.SyncDirectory(parent);
            }
            catch (IOException)
            {
                // Best effort: the parent may be on another (e.g. read-only) file system when the data directory is a mount point.
            }
        }
        var log = new WriteAheadLog(dataDirectory, CreateSegment(dataDirectory, nextRevision), nextRevision - 1, onDurable);
        log._flusher = Task.Run(log.FlushLoopAsync);
        return log;
    }

    private static FileStream CreateSegment(string dataDirectory, long firstRevision)
    {
        var path = SegmentPath(dataDirectory, firstRevision);
        var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, 1, FileOptions.None);
        stream.Write(Framing.LogMagic);
        stream.Flush(flushToDisk: true);
        FileSystem.SyncDirectory(SegmentDirectory(dataDirectory));
        return stream;
    }

    /// <summary>Appends one commit (called under the engine write lock, in revision order).</summary>
    public Task Append(long revision, ReadOnlySpan<byte> payload)
    {
        lock (_bufferGate)
        {
            if (_fault is not null) throw Unavailable(_fault);
            var batch = _current;
            if (batch.FirstRevision == 0) batch.FirstRevision = revision;
            batch.LastRevision = revision;
            Framing.WriteFrame(batch.Buffer, payload);
            if (!_signalled)
            {
                _signalled = true;
                _signal.Release();
            }
            return batch.Durable.Task;
        }
    }

    /// <summary>Completes when every commit up to <paramref name="revision"/> is on disk.</summary>
    public Task WaitDurableAsync(long revision)
    {
        lock (_bufferGate)
        {
            if (_fault is not null) return Task.FromException(Unavailable(_fault));
            if (_durableRevision >= revision) return Task.CompletedTask;
            if (_flushing is { } f && f.LastRevision >= revision) return f.Durable.Task;
            return _current.Durable.Task;
        }
    }

    private async Task FlushLoopAsync()
    {
        try
        {
            while (true)
            {
                await _signal.WaitAsync(_stop.Token).ConfigureAwait(false);
                await _fileGate.WaitAsync(_stop.Token).ConfigureAwait(false);
                try
                {
                    FlushCurrent();
                }
                finally
                {
                    _fileGate.Release();
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>Writes and fsyncs the current batch. Caller holds <c>_fileGate</c>.</summary>
    private void FlushCurrent()
    {
        Batch batch;
        lock (_bufferGate)
        {
            _signalled = false;
            batch = _current;
            if (batch.LastRevision == 0) return;
            _current = new Batch();
            _flushing = batch;
        }
        try
        {
            _segment.Write(batch.Buffer.WrittenSpan);
            _segment.Flush(flushToDisk: true);
            BytesSinceRotation += batch.Buffer.WrittenCount;
        }
        catch (Exception e)
        {
            // A failed fsync leaves the page cache in an unknown state: stop accepting writes (fail-stop, like PostgreSQL).
            lock (_bufferGate)
            {
                _fault = e;
                _flushing = null;
                _current.Durable.TrySetException(Unavailable(e));
            }
            batch.Durable.TrySetException(Unavailable(e));
            return;
        }
        // Publish to readers before recording the revision as durable: WaitDurableAsync completes at once for a durable
        // revision, and whoever it answers (a conflict, an idempotent replay) may read what it saw right after.
        _onDurable(batch.LastRevision);
        lock (_bufferGate)
        {
            Volatile.Write(ref _durableRevision, batch.LastRevision);
            _flushing = null;
        }
        batch.Durable.TrySetResult();
    }

    /// <summary>
    /// Flushes everything appended so far and starts a new segment at <paramref name="nextRevision"/>.
    /// Called under the engine write lock so no append can interleave.
    /// </summary>
    public void Rotate(long nextRevision)
    {
        _fileGate.Wait();
        try
        {
            FlushCurrent();
            if (_fault is not null) throw Unavailable(_fault);
            _segment.Dispose();
            _segment = CreateSegment(_directory, nextRevision);
            BytesSinceRotation = 0;
        }
        finally
        {
            _fileGate.Release();
        }
    }

    private static StoreUnavailableException Unavailable(Exception e) =>
        new("The durable log failed; the store stopped accepting writes to protect acknowledged data", e);

    public async ValueTask DisposeAsync()
    {
        await _fileGate.WaitAsync().ConfigureAwait(false);
        try
        {
            FlushCurrent();
        }
        finally
        {
            _fileGate.Release();
        }
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_flusher is not null) await _flusher.ConfigureAwait(false);
        lock (_bufferGate)
        {
            _fault ??= new ObjectDisposedException(nameof(WriteAheadLog));
            _current.Durable.TrySetException(new StoreUnavailableException("The store is closed"));
        }
        await _segment.DisposeAsync().ConfigureAwait(false);
        _signal.Dispose();
        _stop.Dispose();
    }
}

internal static partial class FileSystem
{
    /// <summary>fsyncs a directory so a created, renamed or deleted entry is durable (no-op on Windows).</summary>
    public static void SyncDirectory(string path)
    {
        if (OperatingSystem.IsWindows()) return;
        var fd = Open(path, 0 /* O_RDONLY */);
        if (fd < 0) return; // some file systems refuse opening directories; their metadata is synchronous anyway
        try
        {
            if (Fsync(fd) != 0) throw new IOException($"fsync of directory '{path}' failed");
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "open", StringMarshalling = System.Runtime.InteropServices.StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "fsync")]
    private static partial int Fsync(int fd);

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
