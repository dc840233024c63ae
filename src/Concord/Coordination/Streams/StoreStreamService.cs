using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Concord.Diagnostics;

namespace Concord.Coordination.Streams;

/// <summary>
/// <see cref="IStreamService"/> built on the state contract: a stream is a head record <c>_sys/streams/h/{stream}</c>
/// holding its version and one immutable record per event <c>_sys/streams/e/{stream}/@{version}</c>. An append is one
/// transaction that compare-and-swaps the head and creates the event records, so it can join any other transaction
/// (outbox). An event's global position is the revision that committed it plus its index in that commit.
/// </summary>
/// <remarks>
/// <para>
/// On a store with a native event log (PostgreSQL, Redis: see docs/backends.md), <see cref="ReadAllAsync"/>,
/// <see cref="SubscribeAsync"/> and consumer groups read that log: one ordered range read per page, whatever the number
/// of streams, and subscriptions are woken by the store's commit notifications. Otherwise (the embedded engine)
/// subscriptions watch the event keys from the position's revision (the store replays its retained history, then
/// delivers live commits in revision order); when the position is older than the retained history they catch up from
/// the stored events first, merging the selected streams by position (one cursor per stream), and then switch to the
/// watch. Either way the events, their positions and their order are the same.
/// </para>
/// <para>Thread-safe.</para>
/// </remarks>
public sealed class StoreStreamService : IStreamService
{
    /// <summary>Key prefix of every stream record.</summary>
    public const string KeyPrefix = "_sys/streams/";

    private const int MaxEventsPerAppend = 5000;
    private readonly IConcordStore _store;
    private readonly StreamServiceOptions _options;
    private readonly IEventLog? _log;

    /// <summary>Creates the service over <paramref name="store"/>.</summary>
    public StoreStreamService(IConcordStore store, StreamServiceOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        _options = options ?? new StreamServiceOptions();
        _options.Validate();
        _store = store;
        _log = _options.UseEventLog ? EventLogOf(store) : null;
    }

    /// <summary>The store's native event log, looking through the instrumentation wrapper (the server wraps every store in one).</summary>
    private static IEventLog? EventLogOf(IConcordStore store) => store switch
    {
        IEventLog log => log,
        InstrumentedStore instrumented => EventLogOf(instrumented.Inner),
        _ => null,
    };

    /// <summary>The store's event log when it serves <paramref name="filter"/> for positions after <paramref name="from"/> (forward) or all of it (backward).</summary>
    private IEventLog? LogFor(StreamFilter filter, StreamPosition from, ReadDirection direction)
    {
        if (_log is null || !_log.Serves(filter)) return null;
        var start = _log.EventLogStart;
        if (start <= 1) return _log;
        return direction == ReadDirection.Forward && from >= StreamPosition.AfterRevision(start - 1) ? _log : null;
    }

    // ---------------------------------------------------------------- append

    /// <inheritdoc />
    public ValueTask<AppendResult> AppendAsync(string ns, string stream, IReadOnlyList<EventData> events, ExpectedVersion expectedVersion, AppendOptions? options = null, CancellationToken cancellationToken = default) =>
        AppendWithAsync(ns, stream, events, expectedVersion, [], options, cancellationToken);

    /// <inheritdoc />
    public async ValueTask<AppendResult> AppendWithAsync(string ns, string stream, IReadOnlyList<EventData> events, ExpectedVersion expectedVersion, IReadOnlyList<TxnOp> stateOps,
        AppendOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stateOps);
        using var activity = ConcordTelemetry.ActivitySource.StartActivity("concord.stream.append", ActivityKind.Producer);
        if (activity is not null)
        {
            ConcordTelemetry.TagMessaging(activity, ns, stream, null, "send");
            activity.SetTag("messaging.batch.message_count", events?.Count ?? 0);
            if (options?.Agent is { } agent) activity.SetTag(ConcordTelemetry.Tags.AgentId, agent);
        }
        var append = new StreamAppend(stream, events!, expectedVersion);
        var logical = options?.IdempotencyKey is null ? null : LogicalAppend(append);
        for (var attempt = 1; attempt <= _options.MaxCasAttempts; attempt++)
        {
            var prepared = await PrepareAppendAsync(ns, [append], cancellationToken).ConfigureAwait(false);
            if (!prepared.IsReady)
            {
                // A retry of an append whose reply was lost finds the stream moved on by its own events.
                if (logical is not null && await ProbeReplayAsync(ns, stream, options!, logical, cancellationToken).ConfigureAwait(false) is { } replay) return replay;
                return prepared.Refused!;
            }
            var ops = new List<TxnOp>(prepared.Ops.Count + stateOps.Count);
            ops.AddRange(prepared.Ops);
            ops.AddRange(stateOps);
            var result = await _store.TransactAsync(ns, new TxnRequest { Then = ops },
                new WriteOptions { Agent = options?.Agent, IdempotencyKey = options?.IdempotencyKey, LogicalOperation = logical }, cancellationToken).ConfigureAwait(false);
            if (result.IsApplied)
            {
                activity?.SetTag(ConcordTelemetry.Tags.Revision, result.Revision);
                if (!result.Replayed) ConcordTelemetry.StreamAppended.Add(events!.Count, new KeyValuePair<string, object?>(ConcordTelemetry.Tags.MessagingDestination, stream));
                return result.Replayed && logical is not null
                    ? FromStoredResult(stream, result)
                    : prepared.ResultsAt(result.Revision)[0] with { Replayed = result.Replayed };
            }
            if (result.FailedOpIndex >= prepared.Ops.Count)
            {
                return new AppendResult(AppendStatus.StateConflict, stream, prepared.Streams[0].FirstVersion - 1, default, default,
                    $"state operation {result.FailedOpIndex - prepared.Ops.Count} was refused ({result.Conflict!.Message}); nothing was written")
                { Conflict = result.Conflict };
            }
            if (result.FailedOpIndex != 0) throw Unexpected(result);
            // The head moved between our read and the commit: another append won.
            var current = HeadDoc.From(result.Conflict!.Record).Version;
            if (!expectedVersion.IsSatisfiedBy(current)) return WrongVersion(stream, expectedVersion, current);
        }
        throw new ContentionException($"Append to stream '{stream}'", _options.MaxCasAttempts);
    }

    /// <summary>Fingerprint of an append for idempotency: the stream and the event ids and types (not the expected version, which a retry may restate).</summary>
    private static string LogicalAppend(StreamAppend append) =>
        $"concord:stream-append:{append.Stream}:{string.Join(",", append.Events.Select(e => e.Type + "/" + e.Id))}";

    private async ValueTask<AppendResult?> ProbeReplayAsync(string ns, string stream, AppendOptions options, string logical, CancellationToken cancellationToken)
    {
        var probe = await _store.TransactAsync(ns, new TxnRequest { Then = [TxnOp.Get(StreamKeys.Head(stream))] },
            new WriteOptions { Agent = options.Agent, IdempotencyKey = options.IdempotencyKey, LogicalOperation = logical }, cancellationToken).ConfigureAwait(false);
        return probe.Replayed ? FromStoredResult(stream, probe) : null;
    }

    /// <summary>Rebuilds an append's result from the stored transaction result of its first commit.</summary>
    private static AppendResult FromStoredResult(string stream, TxnResult stored)
    {
        var events = stored.Results.Where(r => r.Record is not null && StreamKeys.IsEvent(r.Key) && StreamKeys.ParseEvent(r.Key).Stream == stream)
            .Select(r => EventDoc.ToRecorded(r.Record!)).ToList();
        return new AppendResult(AppendStatus.Appended, stream, events[^1].Version, events[0].Position, events[^1].Position, null) { Replayed = true };
    }

    private static AppendResult WrongVersion(string stream, ExpectedVersion expected, long current) =>
        new(AppendStatus.WrongExpectedVersion, stream, current, default, default,
            $"stream '{stream}' was expected at {expected} but is at version {current}");

    /// <inheritdoc />
    public async ValueTask<PreparedAppend> PrepareAppendAsync(string ns, IReadOnlyList<StreamAppend> appends, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(appends);
        if (appends.Count == 0) throw new InvalidRequestException("An append needs at least one stream");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var ops = new List<TxnOp>();
        var streams = new List<PreparedStreamAppend>(appends.Count);
        var index = 0;
        var traceParent = ConcordTelemetry.CurrentTraceParent();
        foreach (var append in appends)
        {
            ArgumentNullException.ThrowIfNull(append);
            StreamKeys.ValidateStream(append.Stream);
            if (!seen.Add(append.Stream)) throw new InvalidRequestException($"Stream '{append.Stream}' appears twice in one append; merge its events");
            if (append.Events is null || append.Events.Count is 0 or > MaxEventsPerAppend)
                throw new InvalidRequestException($"An append to '{append.Stream}' needs 1 to {MaxEventsPerAppend} events");
            var head = await _store.GetAsync(ns, StreamKeys.Head(append.Stream), null, cancellationToken).ConfigureAwait(false);
            var current = HeadDoc.From(head).Version;
            if (!append.ExpectedVersion.IsSatisfiedBy(current))
                return new PreparedAppend { Ops = [], Streams = [], Refused = WrongVersion(append.Stream, append.ExpectedVersion, current) };
            // The head's record version guards the append: any concurrent append to the stream changes it.
            ops.Add(TxnOp.Put(StreamKeys.Head(append.Stream), new HeadDoc { Version = current + append.Events.Count }.ToJson(), Expect.Version(head?.Version ?? 0)));
            streams.Add(new PreparedStreamAppend(append.Stream, current + 1, append.Events.Count, index));
            for (var i = 0; i < append.Events.Count; i++)
            {
                var e = append.Events[i] ?? throw new ArgumentException("Events must not contain null", nameof(appends));
                var doc = new EventDoc
                {
                    Id = e.Id,
                    Type = e.Type,
                    Data = e.Data.ValueKind == JsonValueKind.Undefined ? null : e.Data,
                    Metadata = e.Metadata.ValueKind == JsonValueKind.Undefined ? null : e.Metadata,
                    Index = index++,
                    TraceParent = traceParent,
                };
                ops.Add(TxnOp.Put(StreamKeys.Event(append.Stream, current + 1 + i), doc.ToJson(), Expect.Absent));
            }
        }
        return new PreparedAppend { Ops = ops, Streams = streams };
    }

    // ---------------------------------------------------------------- reads

    /// <inheritdoc />
    public async ValueTask<StreamInfo?> GetStreamAsync(string ns, string stream, CancellationToken cancellationToken = default)
    {
        StreamKeys.ValidateStream(stream);
        var head = await _store.GetAsync(ns, StreamKeys.Head(stream), null, cancellationToken).ConfigureAwait(false);
        return head is null ? null : new StreamInfo(stream, HeadDoc.From(head).Version, head.Revision);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<RecordedEvent>> ReadStreamAsync(string ns, string stream, long fromVersion, int count, ReadDirection direction = ReadDirection.Forward, CancellationToken cancellationToken = default)
    {
        StreamKeys.ValidateStream(stream);
        ValidateCount(count);
        if (fromVersion < 0) throw new InvalidRequestException("fromVersion must not be negative");
        if (direction == ReadDirection.Forward)
            return await ReadRangeAsync(ns, stream, Math.Max(1, fromVersion), count, cancellationToken).ConfigureAwait(false);
        var head = await GetStreamAsync(ns, stream, cancellationToken).ConfigureAwait(false);
        var last = Math.Min(fromVersion, head?.Version ?? 0);
        if (last < 1) return [];
        var first = Math.Max(1, last - count + 1);
        var events = await ReadRangeAsync(ns, stream, first, (int)(last - first + 1), cancellationToken).ConfigureAwait(false);
        events.Reverse();
        return events;
    }

    /// <summary>Events <paramref name="first"/> … <paramref name="first"/> + <paramref name="count"/> − 1 (fewer at the end of the stream).</summary>
    private async ValueTask<List<RecordedEvent>> ReadRangeAsync(string ns, string stream, long first, int count, CancellationToken cancellationToken)
    {
        var request = new ListRequest { Prefix = StreamKeys.EventPrefix(stream), After = first > 1 ? StreamKeys.Event(stream, first - 1) : null, Limit = count };
        var page = await _store.ListAsync(ns, request, cancellationToken).ConfigureAwait(false);
        return [.. page.Records.Select(EventDoc.ToRecorded)];
    }

    private static void ValidateCount(int count)
    {
        if (count is < 1 or > 10_000) throw new InvalidRequestException("count must be between 1 and 10000");
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<RecordedEvent>> ReadAllAsync(string ns, StreamPosition from, int count, StreamFilter? filter = null, ReadDirection direction = ReadDirection.Forward, CancellationToken cancellationToken = default)
    {
        ValidateCount(count);
        if (LogFor(filter ?? StreamFilter.All, from, direction) is { } log)
            return await log.ReadEventLogAsync(ns, filter ?? StreamFilter.All, from, count, direction, cancellationToken).ConfigureAwait(false);
        var upTo = await _store.GetRevisionAsync(cancellationToken).ConfigureAwait(false);
        var result = new List<RecordedEvent>(Math.Min(count, 1024));
        await foreach (var e in MergeAsync(ns, filter ?? StreamFilter.All, from, upTo, direction, cancellationToken).ConfigureAwait(false))
        {
            result.Add(e);
            if (result.Count == count) break;
        }
        return result;
    }

    /// <inheritdoc />
    public async ValueTask<StreamPosition> GetEndPositionAsync(string ns, CancellationToken cancellationToken = default) =>
        StreamPosition.AfterRevision(await _store.GetRevisionAsync(cancellationToken).ConfigureAwait(false));

    /// <summary>
    /// The selected streams' events after (forward) or before (backward) <paramref name="from"/> with revision ≤
    /// <paramref name="upTo"/>, in position order: a k-way merge over one cursor per stream. Each cursor starts with a
    /// binary search for its first event past <paramref name="from"/> (O(log n) point reads) and then reads pages.
    /// </summary>
    private async IAsyncEnumerable<RecordedEvent> MergeAsync(string ns, StreamFilter filter, StreamPosition from, long upTo, ReadDirection direction,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var forward = direction == ReadDirection.Forward;
        var queue = new PriorityQueue<StreamCursor, StreamPosition>(forward ? Comparer<StreamPosition>.Default : Comparer<StreamPosition>.Create(static (a, b) => b.CompareTo(a)));
        await foreach (var head in HeadsAsync(ns, filter, cancellationToken).ConfigureAwait(false))
        {
            if (forward && head.Revision < from.Revision) continue; // every event of the stream is before `from`
            var cursor = new StreamCursor(this, ns, StreamKeys.StreamOfHead(head.Key), HeadDoc.From(head).Version, forward, upTo);
            if (await cursor.StartAsync(from, cancellationToken).ConfigureAwait(false)) queue.Enqueue(cursor, cursor.Current.Position);
        }
        while (queue.TryDequeue(out var cursor, out _))
        {
            yield return cursor.Current;
            if (await cursor.MoveNextAsync(cancellationToken).ConfigureAwait(false)) queue.Enqueue(cursor, cursor.Current.Position);
        }
    }

    private async IAsyncEnumerable<ConcordRecord> HeadsAsync(string ns, StreamFilter filter, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (filter.Stream is { } stream)
        {
            if (await _store.GetAsync(ns, StreamKeys.Head(stream), null, cancellationToken).ConfigureAwait(false) is { } head) yield return head;
            yield break;
        }
        string? after = null;
        do
        {
            var page = await _store.ListAsync(ns, new ListRequest { Prefix = StreamKeys.Heads + filter.Prefix, After = after }, cancellationToken).ConfigureAwait(false);
            foreach (var record in page.Records) yield return record;
            after = page.NextAfter;
        }
        while (after is not null);
    }

    /// <summary>Reads one stream in one direction, page by page, skipping events committed after the snapshot revision.</summary>
    private sealed class StreamCursor(StoreStreamService service, string ns, string stream, long lastVersion, bool forward, long upTo)
    {
        private readonly Queue<RecordedEvent> _buffer = new();
        private long _next; // next version to fetch
        private int _page = 8; // grows to the configured page size: a merge over many streams often needs few events of each
        public RecordedEvent Current { get; private set; } = null!;

        public async ValueTask<bool> StartAsync(StreamPosition from, CancellationToken cancellationToken)
        {
            if (lastVersion < 1) return false;
            if (forward)
            {
                // Smallest version whose position is after `from` (positions grow with versions).
                long lo = 1, hi = lastVersion + 1;
                if (from > StreamPosition.Start)
                {
                    while (lo < hi)
                    {
                        var mid = lo + (hi - lo) / 2;
                        if (await PositionOfAsync(mid, cancellationToken).ConfigureAwait(false) > from) hi = mid;
                        else lo = mid + 1;
                    }
                }
                _next = lo;
            }
            else
            {
                // Largest version whose position is before `from`.
                long lo = 0, hi = lastVersion;
                if (from != StreamPosition.End)
                {
                    while (lo < hi)
                    {
                        var mid = lo + (hi - lo + 1) / 2;
                        if (await PositionOfAsync(mid, cancellationToken).ConfigureAwait(false) < from) lo = mid;
                        else hi = mid - 1;
                    }
                }
                else lo = lastVersion;
                _next = lo;
            }
            return await MoveNextAsync(cancellationToken).ConfigureAwait(false);
        }

        private async ValueTask<StreamPosition> PositionOfAsync(long version, CancellationToken cancellationToken)
        {
            var record = await service._store.GetAsync(ns, StreamKeys.Event(stream, version), null, cancellationToken).ConfigureAwait(false)
                ?? throw new InvalidRequestException($"Event {version} of stream '{stream}' is missing; keys under {StreamKeys.Root} are reserved");
            return new StreamPosition(record.Revision, EventDoc.IndexOf(record));
        }

        public async ValueTask<bool> MoveNextAsync(CancellationToken cancellationToken)
        {
            while (true)
            {
                if (_buffer.Count == 0 && !await FillAsync(cancellationToken).ConfigureAwait(false)) return false;
                var e = _buffer.Dequeue();
                if (e.Position.Revision > upTo)
                {
                    if (forward) return false; // later versions are later still
                    continue;
                }
                Current = e;
                return true;
            }
        }

        private async ValueTask<bool> FillAsync(CancellationToken cancellationToken)
        {
            var page = _page;
            _page = Math.Min(_page * 2, service._options.PageSize);
            if (forward)
            {
                if (_next > lastVersion) return false;
                var events = await service.ReadRangeAsync(ns, stream, _next, (int)Math.Min(page, lastVersion - _next + 1), cancellationToken).ConfigureAwait(false);
                foreach (var e in events) _buffer.Enqueue(e);
                _next += events.Count;
                if (events.Count == 0) _next = lastVersion + 1;
            }
            else
            {
                if (_next < 1) return false;
                var first = Math.Max(1, _next - page + 1);
                var events = await service.ReadRangeAsync(ns, stream, first, (int)(_next - first + 1), cancellationToken).ConfigureAwait(false);
                for (var i = events.Count - 1; i >= 0; i--) _buffer.Enqueue(events[i]);
                _next = first - 1;
            }
            return _buffer.Count > 0;
        }
    }

    // ---------------------------------------------------------------- subscriptions

    /// <inheritdoc />
    public async IAsyncEnumerable<RecordedEvent> SubscribeAsync(string ns, StreamFilter filter, StreamPosition after, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        if (_log is not null && _log.Serves(filter))
        {
            await foreach (var e in TailLogAsync(_log, ns, filter, after, cancellationToken).ConfigureAwait(false)) yield return e;
            yield break;
        }
        var position = after;
        var prefix = StreamKeys.WatchPrefix(filter);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var compacted = false;
            // AfterRevision(r) has seen all of r: watch from r + 1 (r itself may already be outside the retained history).
            var fromRevision = position.Index == int.MaxValue ? position.Revision + 1 : Math.Max(1, position.Revision);
            var request = new WatchRequest { Prefix = prefix, FromRevision = fromRevision };
            var watch = _store.WatchAsync(ns, request, cancellationToken).GetAsyncEnumerator(cancellationToken);
            try
            {
                while (true)
                {
                    bool more;
                    try
                    {
                        more = await watch.MoveNextAsync().ConfigureAwait(false);
                    }
                    catch (RevisionCompactedException)
                    {
                        compacted = true;
                        break;
                    }
                    catch (WatchOverflowException)
                    {
                        break; // we fell behind: resume from the last delivered position
                    }
                    if (!more) yield break;
                    var change = watch.Current;
                    if (change.Kind != ChangeKind.Put || !StreamKeys.IsEvent(change.Key)) continue;
                    var e = EventDoc.ToRecorded(change.Record);
                    if (e.Position <= position || !filter.Matches(e.Stream)) continue;
                    position = e.Position;
                    yield return e;
                }
            }
            finally
            {
                await watch.DisposeAsync().ConfigureAwait(false);
            }
            if (!compacted) continue;

            // The position is older than the store's retained history: catch up from the stored events, then watch again.
            var upTo = await _store.GetRevisionAsync(cancellationToken).ConfigureAwait(false);
            await foreach (var e in MergeAsync(ns, filter, position, upTo, ReadDirection.Forward, cancellationToken).ConfigureAwait(false))
            {
                position = e.Position;
                yield return e;
            }
            if (position < StreamPosition.AfterRevision(upTo)) position = StreamPosition.AfterRevision(upTo);
        }
    }

    /// <summary>
    /// A subscription on the store's event log: pages of the log after the last delivered position, and between pages
    /// that reach the end, a wait for the store's next commit notification (or its poll interval). Events before the log
    /// start (a store that could not backfill) are caught up by the merge first.
    /// </summary>
    private async IAsyncEnumerable<RecordedEvent> TailLogAsync(IEventLog log, string ns, StreamFilter filter, StreamPosition after, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var position = after;
        var logged = StreamPosition.AfterRevision(log.EventLogStart - 1);
        if (log.EventLogStart > 1 && position < logged)
        {
            await foreach (var e in MergeAsync(ns, filter, position, log.EventLogStart - 1, ReadDirection.Forward, cancellationToken).ConfigureAwait(false))
            {
                position = e.Position;
                yield return e;
            }
            position = logged;
        }
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var signal = log.EventSignal;
            var page = await log.ReadEventLogAsync(ns, filter, position, _options.PageSize, ReadDirection.Forward, cancellationToken).ConfigureAwait(false);
            foreach (var e in page)
            {
                position = e.Position;
                yield return e;
            }
            if (page.Count < _options.PageSize) await log.WaitForEventsAsync(signal, cancellationToken).ConfigureAwait(false);
        }
    }

    // ---------------------------------------------------------------- consumer groups

    /// <inheritdoc />
    public async Task RunConsumerGroupAsync(string ns, string group, StreamFilter filter, Func<RecordedEvent, CancellationToken, ValueTask> handler,
        ConsumerGroupOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentNullException.ThrowIfNull(handler);
        options ??= new ConsumerGroupOptions();
        if (options.CheckpointEvery < 1) throw new InvalidRequestException("CheckpointEvery must be at least 1");
        var start = await GetCheckpointAsync(ns, group, cancellationToken).ConfigureAwait(false)
            ?? (options.StartFromEnd ? await GetEndPositionAsync(ns, cancellationToken).ConfigureAwait(false) : StreamPosition.Start);
        var handled = start;
        var unsaved = 0;
        try
        {
            await foreach (var e in SubscribeAsync(ns, filter, start, cancellationToken).ConfigureAwait(false))
            {
                using (var activity = ConcordTelemetry.StartStreamDeliver(ns, e, group))
                {
                    await handler(e, cancellationToken).ConfigureAwait(false);
                }
                // At-least-once: the checkpoint moves only after the handler finished.
                handled = e.Position;
                if (++unsaved >= options.CheckpointEvery)
                {
                    await SaveCheckpointAsync(ns, group, handled, cancellationToken).ConfigureAwait(false);
                    unsaved = 0;
                }
            }
        }
        finally
        {
            if (unsaved > 0)
            {
                try
                {
                    await SaveCheckpointAsync(ns, group, handled, CancellationToken.None).ConfigureAwait(false);
                }
                catch (ConcordException)
                {
                    // The store is gone; the events after the stored checkpoint are delivered again next time.
                }
            }
        }
    }

    /// <inheritdoc />
    public async ValueTask<StreamPosition?> GetCheckpointAsync(string ns, string group, CancellationToken cancellationToken = default)
    {
        var record = await _store.GetAsync(ns, StreamKeys.Checkpoint(group), null, cancellationToken).ConfigureAwait(false);
        return CheckpointDoc.From(record)?.Position;
    }

    /// <inheritdoc />
    public async ValueTask<bool> SaveCheckpointAsync(string ns, string group, StreamPosition position, CancellationToken cancellationToken = default)
    {
        var key = StreamKeys.Checkpoint(group);
        for (var attempt = 1; attempt <= _options.MaxCasAttempts; attempt++)
        {
            var record = await _store.GetAsync(ns, key, null, cancellationToken).ConfigureAwait(false);
            if (CheckpointDoc.From(record) is { } stored && stored.Position >= position) return false;
            var doc = new CheckpointDoc { Revision = position.Revision, Index = position.Index, UpdatedAt = _options.TimeProvider.GetUtcNow() };
            var result = await _store.PutAsync(ns, key, doc.ToJson(), new WriteOptions { Expect = Expect.Version(record?.Version ?? 0), Agent = "concord:group:" + group }, cancellationToken).ConfigureAwait(false);
            if (result.IsApplied) return true;
        }
        throw new ContentionException($"Checkpoint of consumer group '{group}'", _options.MaxCasAttempts);
    }

    /// <inheritdoc />
    public async ValueTask<HandleResult> HandleOnceAsync(string ns, string group, RecordedEvent recordedEvent, IReadOnlyList<TxnOp> effects, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(recordedEvent);
        ArgumentNullException.ThrowIfNull(effects);
        var marker = StreamKeys.HandledMarker(group, recordedEvent.Id);
        var value = JsonSerializer.SerializeToElement(new { stream = recordedEvent.Stream, version = recordedEvent.Version, position = recordedEvent.Position.ToString() }, JsonDefaults.Web);
        var ops = new List<TxnOp>(effects.Count + 1) { TxnOp.Put(marker, value, Expect.Absent, _options.DedupRetention) };
        ops.AddRange(effects);
        // The marker makes the dedup permanent; the idempotency key makes a retry after a lost reply report the first result.
        var idempotency = $"concord:stream-handle:{group}/{recordedEvent.Id}";
        var result = await _store.TransactAsync(ns, new TxnRequest { Then = ops },
            new WriteOptions { IdempotencyKey = idempotency, LogicalOperation = idempotency, Agent = "concord:group:" + group }, cancellationToken).ConfigureAwait(false);
        if (result.Replayed || result.FailedOpIndex == 0) return new HandleResult(HandleStatus.Duplicate, result.Revision, null);
        if (result.IsApplied) return new HandleResult(HandleStatus.Applied, result.Revision, null);
        return new HandleResult(HandleStatus.EffectConflict, result.Revision, result.Conflict);
    }

    // ---------------------------------------------------------------- change feed

    /// <inheritdoc />
    public async IAsyncEnumerable<StateChange> ReadChangesAsync(string ns, string prefix, long fromRevision, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        var includeSystem = prefix.StartsWith("_sys/", StringComparison.Ordinal);
        long revision = -1;
        var index = 0;
        await foreach (var change in _store.WatchAsync(ns, new WatchRequest { Prefix = prefix, FromRevision = fromRevision }, cancellationToken).ConfigureAwait(false))
        {
            if (!includeSystem && change.Key.StartsWith("_sys/", StringComparison.Ordinal)) continue;
            index = change.Revision == revision ? index + 1 : 0;
            revision = change.Revision;
            yield return new StateChange(new StreamPosition(revision, index), change);
        }
    }

    private static InvalidRequestException Unexpected(TxnResult result) =>
        new($"Stream append was refused unexpectedly: {result.Conflict?.Message}; keys under {KeyPrefix} are reserved for the stream service");
}
