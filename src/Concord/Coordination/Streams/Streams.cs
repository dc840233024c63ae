using System.Globalization;
using System.Text.Json;

namespace Concord.Coordination.Streams;

/// <summary>
/// Event streams (DESIGN.md "Streams"): append with an expected stream version, immutable events with a stream version
/// and a global position, reads forward and backward, subscriptions (one stream, a stream-name prefix, or all) with
/// consumer groups and stored checkpoints, at-least-once delivery with an event-id dedup helper, outbox appends that
/// commit with state writes, and the state change feed read as a stream.
/// </summary>
/// <remarks>Expected outcomes (wrong expected version, duplicate delivery) are results. Implementations are thread-safe.</remarks>
public interface IStreamService
{
    /// <summary>
    /// Appends <paramref name="events"/> to <paramref name="stream"/> atomically if the stream is at
    /// <paramref name="expectedVersion"/>; otherwise nothing is written and the result carries the current version.
    /// </summary>
    ValueTask<AppendResult> AppendAsync(string ns, string stream, IReadOnlyList<EventData> events, ExpectedVersion expectedVersion, AppendOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Outbox: the operations that append to one or more streams, to add (in this order) to the caller's own transaction
    /// so the events commit together with its state writes, or not at all. The head of each stream is guarded by an exact
    /// expectation; if the caller's transaction fails on one, prepare again.
    /// </summary>
    ValueTask<PreparedAppend> PrepareAppendAsync(string ns, IReadOnlyList<StreamAppend> appends, CancellationToken cancellationToken = default);

    /// <summary>
    /// Appends to <paramref name="stream"/> and applies <paramref name="stateOps"/> in one transaction (both or neither),
    /// re-preparing when the stream moved and <paramref name="expectedVersion"/> still allows the append.
    /// </summary>
    ValueTask<AppendResult> AppendWithAsync(string ns, string stream, IReadOnlyList<EventData> events, ExpectedVersion expectedVersion, IReadOnlyList<TxnOp> stateOps,
        AppendOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>The stream's current version and last append; null when it has no events.</summary>
    ValueTask<StreamInfo?> GetStreamAsync(string ns, string stream, CancellationToken cancellationToken = default);

    /// <summary>
    /// Reads up to <paramref name="count"/> events of one stream: forward from version <paramref name="fromVersion"/>
    /// (inclusive), or backward from it (inclusive; <see cref="long.MaxValue"/> reads from the end).
    /// </summary>
    ValueTask<IReadOnlyList<RecordedEvent>> ReadStreamAsync(string ns, string stream, long fromVersion, int count, ReadDirection direction = ReadDirection.Forward, CancellationToken cancellationToken = default);

    /// <summary>
    /// Reads up to <paramref name="count"/> events of the streams <paramref name="filter"/> selects in global order,
    /// strictly after <paramref name="from"/> (forward) or strictly before it (backward; use <see cref="StreamPosition.End"/>).
    /// </summary>
    ValueTask<IReadOnlyList<RecordedEvent>> ReadAllAsync(string ns, StreamPosition from, int count, StreamFilter? filter = null, ReadDirection direction = ReadDirection.Forward, CancellationToken cancellationToken = default);

    /// <summary>The position just after every event committed so far (subscribe from it to receive only new events).</summary>
    ValueTask<StreamPosition> GetEndPositionAsync(string ns, CancellationToken cancellationToken = default);

    /// <summary>
    /// Every event <paramref name="filter"/> selects with a position after <paramref name="after"/>, in global order,
    /// each once: first the stored ones, then live ones as they commit, until cancelled.
    /// </summary>
    IAsyncEnumerable<RecordedEvent> SubscribeAsync(string ns, StreamFilter filter, StreamPosition after, CancellationToken cancellationToken = default);

    /// <summary>
    /// Runs a consumer group: resumes after the group's stored checkpoint, calls <paramref name="handler"/> for each event
    /// and stores the checkpoint after the handler returns (at-least-once: an event whose handler ran but whose checkpoint
    /// was not stored is delivered again after a restart; make effects idempotent with <see cref="HandleOnceAsync"/>).
    /// Runs until <paramref name="cancellationToken"/> is cancelled (then throws <see cref="OperationCanceledException"/>)
    /// or the handler throws.
    /// </summary>
    Task RunConsumerGroupAsync(string ns, string group, StreamFilter filter, Func<RecordedEvent, CancellationToken, ValueTask> handler,
        ConsumerGroupOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>The stored checkpoint of a consumer group (the position of the last handled event); null before the first.</summary>
    ValueTask<StreamPosition?> GetCheckpointAsync(string ns, string group, CancellationToken cancellationToken = default);

    /// <summary>Stores a consumer group's checkpoint; checkpoints never move backwards. False when a later one is already stored.</summary>
    ValueTask<bool> SaveCheckpointAsync(string ns, string group, StreamPosition position, CancellationToken cancellationToken = default);

    /// <summary>
    /// Event-id dedup for handlers: applies <paramref name="effects"/> in one transaction with a marker for
    /// (<paramref name="group"/>, event id), so an event delivered again (at-least-once) applies its effect once.
    /// </summary>
    ValueTask<HandleResult> HandleOnceAsync(string ns, string group, RecordedEvent recordedEvent, IReadOnlyList<TxnOp> effects, CancellationToken cancellationToken = default);

    /// <summary>
    /// The change feed of state writes under <paramref name="prefix"/> from <paramref name="fromRevision"/> (0 = from now),
    /// as a stream with positions, until cancelled. Reserved <c>_sys/</c> keys are left out unless the prefix names them.
    /// </summary>
    IAsyncEnumerable<StateChange> ReadChangesAsync(string ns, string prefix, long fromRevision, CancellationToken cancellationToken = default);
}

/// <summary>
/// A global position: the revision that committed an event and the event's index among the events of that commit.
/// Totally ordered; compares like the tuple (Revision, Index).
/// </summary>
/// <param name="Revision">Commit revision.</param>
/// <param name="Index">Index among the stream events of the commit (0-based).</param>
public readonly record struct StreamPosition(long Revision, int Index) : IComparable<StreamPosition>
{
    /// <summary>Before every event.</summary>
    public static StreamPosition Start => new(0, 0);

    /// <summary>After every event (for backward reads from the end).</summary>
    public static StreamPosition End => new(long.MaxValue, int.MaxValue);

    /// <summary>The position after every event of <paramref name="revision"/> and before those of the next one.</summary>
    public static StreamPosition AfterRevision(long revision) => new(revision, int.MaxValue);

    /// <inheritdoc />
    public int CompareTo(StreamPosition other)
    {
        var c = Revision.CompareTo(other.Revision);
        return c != 0 ? c : Index.CompareTo(other.Index);
    }

    /// <summary>Less than.</summary>
    public static bool operator <(StreamPosition a, StreamPosition b) => a.CompareTo(b) < 0;

    /// <summary>Greater than.</summary>
    public static bool operator >(StreamPosition a, StreamPosition b) => a.CompareTo(b) > 0;

    /// <summary>Less than or equal.</summary>
    public static bool operator <=(StreamPosition a, StreamPosition b) => a.CompareTo(b) <= 0;

    /// <summary>Greater than or equal.</summary>
    public static bool operator >=(StreamPosition a, StreamPosition b) => a.CompareTo(b) >= 0;

    /// <summary><c>revision:index</c>.</summary>
    public override string ToString() => $"{Revision.ToString(CultureInfo.InvariantCulture)}:{Index.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Parses <c>revision:index</c>.</summary>
    public static bool TryParse(string? text, out StreamPosition position)
    {
        position = default;
        var colon = text?.IndexOf(':') ?? -1;
        if (colon <= 0) return false;
        if (!long.TryParse(text.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var revision)) return false;
        if (!int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var index)) return false;
        position = new StreamPosition(revision, index);
        return true;
    }
}

/// <summary>What an append expects about the stream's current version.</summary>
public enum ExpectedVersionKind
{
    /// <summary>No expectation (concurrent appends are serialized, never refused).</summary>
    Any,

    /// <summary>The stream must have no events.</summary>
    NoStream,

    /// <summary>The stream must have at least one event.</summary>
    StreamExists,

    /// <summary>The stream must be exactly at <see cref="ExpectedVersion.Version"/>.</summary>
    Exact,
}

/// <summary>The expected version of an append: <see cref="Any"/>, <see cref="NoStream"/>, <see cref="StreamExists"/> or <see cref="Exactly"/>.</summary>
public readonly record struct ExpectedVersion(ExpectedVersionKind Kind, long Version = 0)
{
    /// <summary>No expectation.</summary>
    public static ExpectedVersion Any => new(ExpectedVersionKind.Any);

    /// <summary>The stream must be empty.</summary>
    public static ExpectedVersion NoStream => new(ExpectedVersionKind.NoStream);

    /// <summary>The stream must exist.</summary>
    public static ExpectedVersion StreamExists => new(ExpectedVersionKind.StreamExists);

    /// <summary>The stream must be at <paramref name="version"/> (0 = empty).</summary>
    public static ExpectedVersion Exactly(long version)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(version);
        return version == 0 ? NoStream : new(ExpectedVersionKind.Exact, version);
    }

    /// <summary>True when a stream at <paramref name="current"/> satisfies the expectation.</summary>
    public bool IsSatisfiedBy(long current) => Kind switch
    {
        ExpectedVersionKind.NoStream => current == 0,
        ExpectedVersionKind.StreamExists => current > 0,
        ExpectedVersionKind.Exact => current == Version,
        _ => true,
    };

    /// <inheritdoc />
    public override string ToString() => Kind switch
    {
        ExpectedVersionKind.NoStream => "no stream",
        ExpectedVersionKind.StreamExists => "stream exists",
        ExpectedVersionKind.Exact => $"version {Version}",
        _ => "any",
    };
}

/// <summary>An event to append.</summary>
public sealed record EventData
{
    /// <summary>Creates an event with a fresh time-ordered id.</summary>
    public EventData(string type, JsonElement data, JsonElement metadata = default, string? id = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(type);
        Type = type;
        Data = data.ValueKind == JsonValueKind.Undefined ? default : data.Clone();
        Metadata = metadata.ValueKind == JsonValueKind.Undefined ? default : metadata.Clone();
        Id = id ?? Guid.CreateVersion7().ToString("N");
    }

    /// <summary>Creates an event serializing <paramref name="data"/>.</summary>
    public static EventData From<T>(string type, T data, string? id = null) =>
        new(type, JsonSerializer.SerializeToElement(data, JsonDefaults.Web), default, id);

    /// <summary>Unique event id; handlers deduplicate on it. <value>Default: a new version-7 GUID.</value></summary>
    public string Id { get; init; }

    /// <summary>Event type name.</summary>
    public string Type { get; init; }

    /// <summary>Payload.</summary>
    public JsonElement Data { get; init; }

    /// <summary>Optional metadata (correlation ids, causation, agent). <value>Default: undefined (none).</value></summary>
    public JsonElement Metadata { get; init; }
}

/// <summary>A stored event.</summary>
public sealed record RecordedEvent
{
    /// <summary>Stream name.</summary>
    public required string Stream { get; init; }

    /// <summary>Version within the stream (1-based, dense).</summary>
    public required long Version { get; init; }

    /// <summary>Global position.</summary>
    public required StreamPosition Position { get; init; }

    /// <summary>Event id.</summary>
    public required string Id { get; init; }

    /// <summary>Event type.</summary>
    public required string Type { get; init; }

    /// <summary>Payload.</summary>
    public JsonElement Data { get; init; }

    /// <summary>Metadata (undefined when none).</summary>
    public JsonElement Metadata { get; init; }

    /// <summary>Commit time (the store's hybrid logical clock).</summary>
    public DateTimeOffset RecordedAt { get; init; }

    /// <summary>Agent that appended it, if known.</summary>
    public string? Writer { get; init; }

    /// <summary>W3C traceparent of the span that appended it, if it was traced; consumer spans link to it.</summary>
    public string? TraceParent { get; init; }

    /// <summary>Deserializes <see cref="Data"/>.</summary>
    public T? DataAs<T>() => Data.ValueKind == JsonValueKind.Undefined ? default : Data.Deserialize<T>(JsonDefaults.Web);
}

/// <summary>Direction of a read.</summary>
public enum ReadDirection
{
    /// <summary>Oldest first.</summary>
    Forward,

    /// <summary>Newest first.</summary>
    Backward,
}

/// <summary>Options of an append.</summary>
public sealed record AppendOptions
{
    /// <summary>Operation id: a retry with the same id and events returns the original result. <value>Default: null.</value></summary>
    public string? IdempotencyKey { get; init; }

    /// <summary>Agent id recorded as the writer. <value>Default: null.</value></summary>
    public string? Agent { get; init; }
}

/// <summary>One stream's part of an outbox append (<see cref="IStreamService.PrepareAppendAsync"/>).</summary>
/// <param name="Stream">Stream name.</param>
/// <param name="Events">Events to append (at least one).</param>
/// <param name="ExpectedVersion">Expected version of the stream.</param>
public sealed record StreamAppend(string Stream, IReadOnlyList<EventData> Events, ExpectedVersion ExpectedVersion);

/// <summary>Outcome of an append.</summary>
public enum AppendStatus
{
    /// <summary>The events were appended.</summary>
    Appended,

    /// <summary>The stream was not at the expected version; nothing was written.</summary>
    WrongExpectedVersion,

    /// <summary>(Outbox appends) A state operation's own expectation failed; nothing was written.</summary>
    StateConflict,
}

/// <summary>The outcome of an append.</summary>
/// <param name="Status">Appended, wrong expected version, or (with state writes) a state conflict.</param>
/// <param name="Stream">Stream name.</param>
/// <param name="Version">The stream's version after the append, or its current version when refused.</param>
/// <param name="FirstPosition">Global position of the first appended event (default when refused).</param>
/// <param name="LastPosition">Global position of the last appended event (default when refused).</param>
/// <param name="Message">Explanation when refused.</param>
public sealed record AppendResult(AppendStatus Status, string Stream, long Version, StreamPosition FirstPosition, StreamPosition LastPosition, string? Message)
{
    /// <summary>True when appended.</summary>
    public bool IsAppended => Status == AppendStatus.Appended;

    /// <summary>Commit revision when appended.</summary>
    public long Revision => LastPosition.Revision;

    /// <summary>True when this is the stored result of an earlier call with the same idempotency key.</summary>
    public bool Replayed { get; init; }

    /// <summary>For <see cref="AppendStatus.StateConflict"/>: the refused state operation, carrying the current record.</summary>
    public WriteResult? Conflict { get; init; }
}

/// <summary>The operations of an outbox append, or why it cannot happen (<see cref="IStreamService.PrepareAppendAsync"/>).</summary>
public sealed record PreparedAppend
{
    /// <summary>Operations to add to the caller's then-branch, in this order (empty when refused).</summary>
    public required IReadOnlyList<TxnOp> Ops { get; init; }

    /// <summary>Per stream: where its events go. Positions are known once committed (<see cref="ResultsAt"/>).</summary>
    public required IReadOnlyList<PreparedStreamAppend> Streams { get; init; }

    /// <summary>When a stream is not at its expected version: the refusal (nothing to commit).</summary>
    public AppendResult? Refused { get; init; }

    /// <summary>True when the operations can be committed.</summary>
    public bool IsReady => Refused is null;

    /// <summary>The results once the caller's transaction committed at <paramref name="revision"/>.</summary>
    public IReadOnlyList<AppendResult> ResultsAt(long revision) =>
        [.. Streams.Select(s => new AppendResult(AppendStatus.Appended, s.Stream, s.FirstVersion + s.Count - 1,
            new StreamPosition(revision, s.FirstIndex), new StreamPosition(revision, s.FirstIndex + s.Count - 1), null))];
}

/// <summary>One stream's part of a <see cref="PreparedAppend"/>.</summary>
/// <param name="Stream">Stream name.</param>
/// <param name="FirstVersion">Version of the first event.</param>
/// <param name="Count">Number of events.</param>
/// <param name="FirstIndex">Index of the first event among the events of the commit.</param>
public sealed record PreparedStreamAppend(string Stream, long FirstVersion, int Count, int FirstIndex);

/// <summary>A stream's head.</summary>
/// <param name="Stream">Stream name.</param>
/// <param name="Version">Number of events (the last event's version).</param>
/// <param name="LastRevision">Revision of the last append.</param>
public sealed record StreamInfo(string Stream, long Version, long LastRevision);

/// <summary>Which streams a read or subscription covers.</summary>
public sealed record StreamFilter
{
    private StreamFilter(string? stream, string prefix)
    {
        Stream = stream;
        Prefix = prefix;
    }

    /// <summary>Every stream.</summary>
    public static StreamFilter All { get; } = new(null, "");

    /// <summary>One stream.</summary>
    public static StreamFilter ForStream(string stream)
    {
        StreamKeys.ValidateStream(stream);
        return new(stream, "");
    }

    /// <summary>Every stream whose name starts with <paramref name="prefix"/> (e.g. <c>orders/</c>).</summary>
    public static StreamFilter ForPrefix(string prefix)
    {
        StreamKeys.ValidatePrefix(prefix);
        return new(null, prefix);
    }

    /// <summary>The single stream, or null for prefix filters.</summary>
    public string? Stream { get; }

    /// <summary>Stream-name prefix (empty = all) when <see cref="Stream"/> is null.</summary>
    public string Prefix { get; }

    internal bool Matches(string stream) => Stream is not null ? stream == Stream : stream.StartsWith(Prefix, StringComparison.Ordinal);

    /// <inheritdoc />
    public override string ToString() => Stream is not null ? $"stream '{Stream}'" : Prefix.Length == 0 ? "all streams" : $"streams '{Prefix}*'";
}

/// <summary>Settings of a consumer group run.</summary>
public sealed record ConsumerGroupOptions
{
    /// <summary>Store the checkpoint after this many handled events (and when the run ends). <value>Default: 1 (after every event).</value></summary>
    public int CheckpointEvery { get; init; } = 1;

    /// <summary>Where a group without a checkpoint starts: <see cref="StreamPosition.Start"/> (every stored event) or the end (new events only). <value>Default: start.</value></summary>
    public bool StartFromEnd { get; init; }
}

/// <summary>Outcome of <see cref="IStreamService.HandleOnceAsync"/>.</summary>
public enum HandleStatus
{
    /// <summary>The effects were applied now.</summary>
    Applied,

    /// <summary>The event was already handled by this group: nothing was applied.</summary>
    Duplicate,

    /// <summary>An effect's own expectation failed: nothing was applied (the event is not marked handled).</summary>
    EffectConflict,
}

/// <summary>The outcome of <see cref="IStreamService.HandleOnceAsync"/>.</summary>
/// <param name="Status">Applied, duplicate or effect conflict.</param>
/// <param name="Revision">Commit revision when applied.</param>
/// <param name="Conflict">The refused effect operation for <see cref="HandleStatus.EffectConflict"/>.</param>
public sealed record HandleResult(HandleStatus Status, long Revision, WriteResult? Conflict)
{
    /// <summary>True when the effects were applied by this call.</summary>
    public bool IsApplied => Status == HandleStatus.Applied;
}

/// <summary>One state change read as a stream event (<see cref="IStreamService.ReadChangesAsync"/>).</summary>
/// <param name="Position">Revision of the change and its index among the changes of that commit this feed delivers.</param>
/// <param name="Change">The change.</param>
public sealed record StateChange(StreamPosition Position, ChangeEvent Change)
{
    /// <summary>The key changed.</summary>
    public string Key => Change.Key;

    /// <summary>Put, delete or expiry.</summary>
    public ChangeKind Kind => Change.Kind;

    /// <summary>The new version (a tombstone for deletes).</summary>
    public ConcordRecord Record => Change.Record;
}

/// <summary>Settings of <see cref="StoreStreamService"/>.</summary>
public sealed record StreamServiceOptions
{
    /// <summary>Clock for handler dedup markers. <value>Default: <see cref="TimeProvider.System"/>.</value></summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Events read per page by catch-up reads and subscriptions. <value>Default: 256.</value></summary>
    public int PageSize { get; init; } = 256;

    /// <summary>How long <see cref="IStreamService.HandleOnceAsync"/> remembers a handled event id. Null remembers forever. <value>Default: null.</value></summary>
    public TimeSpan? DedupRetention { get; init; }

    /// <summary>Attempts of an append with <see cref="ExpectedVersion.Any"/> that keeps losing the race. <value>Default: 1,000.</value></summary>
    public int MaxCasAttempts { get; init; } = 1000;

    /// <summary>
    /// Read the store's native event log when it has one (false: always merge the streams' own records; for comparisons
    /// and benchmarks). <value>Default: true.</value>
    /// </summary>
    internal bool UseEventLog { get; init; } = true;

    internal void Validate()
    {
        ArgumentNullException.ThrowIfNull(TimeProvider);
        if (PageSize is < 1 or > 10_000) throw new ArgumentException("PageSize must be between 1 and 10000", nameof(PageSize));
        if (DedupRetention is { } r && r <= TimeSpan.Zero) throw new ArgumentException("DedupRetention must be positive", nameof(DedupRetention));
        if (MaxCasAttempts < 1) throw new ArgumentException("MaxCasAttempts must be at least 1", nameof(MaxCasAttempts));
    }
}
