using Concord.Engine;

namespace Concord.Coordination.Streams;

/// <summary>
/// Optional capability of a store: a native, position-ordered log of the stream events of each namespace, written in the
/// same atomic commit as the event records (so an event is in the log exactly when its append committed, at the position
/// the append reported). <see cref="StoreStreamService"/> serves <c>ReadAll</c>, subscriptions and consumer-group
/// catch-up from it instead of merging one cursor per stream; stores without it (the embedded engine) keep the merge.
/// </summary>
/// <remarks>
/// The log holds every event record the store committed at or after revision <see cref="EventLogStart"/>: a put of a key
/// under <c>_sys/streams/e/</c> whose value is an event document, at position (commit revision, the event's index). One
/// event per position: should a commit hold two events with the same index (two separately prepared appends in one
/// transaction), the log keeps the first. The log is never compacted. Implementations are thread-safe.
/// </remarks>
internal interface IEventLog
{
    /// <summary>
    /// First revision from which the log holds every event (1 = complete). A store that held events before it had the log
    /// and could not backfill them reports the revision it started logging at; reads before it use the merge.
    /// </summary>
    long EventLogStart { get; }

    /// <summary>True when the log serves <paramref name="filter"/> better than a merge (a store may leave single streams to the merge).</summary>
    bool Serves(StreamFilter filter);

    /// <summary>
    /// Up to <paramref name="count"/> events of <paramref name="ns"/> matching <paramref name="filter"/> after
    /// (<see cref="ReadDirection.Forward"/>) or before (<see cref="ReadDirection.Backward"/>) <paramref name="from"/>, in
    /// position order (descending when backward).
    /// </summary>
    ValueTask<IReadOnlyList<RecordedEvent>> ReadEventLogAsync(string ns, StreamFilter filter, StreamPosition from, int count, ReadDirection direction, CancellationToken cancellationToken);

    /// <summary>
    /// Completes at the next commit this node learns of (its own, or another node's notification). Take it before a read
    /// that found nothing new, then <see cref="WaitForEventsAsync"/> on it, and a commit between the two is not missed.
    /// </summary>
    Task EventSignal { get; }

    /// <summary>
    /// Waits until <paramref name="signal"/> completes or the store's poll interval passes (notifications can be lost);
    /// callers then read again. Throws <see cref="StoreUnavailableException"/> when the store closes.
    /// </summary>
    Task WaitForEventsAsync(Task signal, CancellationToken cancellationToken);
}

/// <summary>Waiting for new events, shared by the stores whose <see cref="IEventLog"/> is woken by commit notifications.</summary>
internal static class EventLogWaits
{
    /// <summary>
    /// <see cref="IEventLog.WaitForEventsAsync"/> for a store that wakes <paramref name="signal"/> on commits and
    /// notifications: waits for it or <paramref name="pollInterval"/> (a notification can be lost; the caller reads
    /// anyway), and turns the store's own shutdown (<paramref name="storeStopped"/>) into <see cref="StoreUnavailableException"/>.
    /// </summary>
    public static async Task WaitAsync(Task signal, TimeSpan pollInterval, TimeProvider time, CancellationToken storeStopped, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, storeStopped);
        try
        {
            await signal.WaitAsync(pollInterval, time, stop.Token).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Read anyway: a notification can be lost (pub/sub is not guaranteed, a listener reconnects).
        }
        catch (OperationCanceledException) when (storeStopped.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new StoreUnavailableException("The store is closed");
        }
    }
}

/// <summary>Which changes of a commit go to a native event log (shared by the stores that have one).</summary>
internal static class EventLogRows
{

    /// <summary>
    /// The event records of <paramref name="commit"/> as (index in <see cref="CommitEntry.Changes"/>, event index), sorted
    /// by event index, one per index (the first). Empty for commits without events (most of them: a key-prefix check).
    /// </summary>
    public static IReadOnlyList<(int Change, int Index)> Of(CommitEntry commit)
    {
        List<(int Change, int Index)>? rows = null;
        for (var i = 0; i < commit.Changes.Count; i++)
        {
            var change = commit.Changes[i];
            if (change.Kind != ChangeKind.Put || change.Record.IsDeleted || !StreamKeys.IsEvent(change.Record.Key)) continue;
            int index;
            try
            {
                index = EventDoc.IndexOf(change.Record);
            }
            catch (InvalidRequestException)
            {
                continue; // not an event document: reads of the stream refuse it; the log leaves it out
            }
            (rows ??= []).Add((i, index));
        }
        if (rows is null) return [];
        if (rows.Count > 1)
        {
            rows.Sort(static (a, b) => a.Index != b.Index ? a.Index.CompareTo(b.Index) : a.Change.CompareTo(b.Change));
            var distinct = new List<(int Change, int Index)>(rows.Count) { rows[0] };
            for (var i = 1; i < rows.Count; i++)
            {
                if (rows[i].Index != distinct[^1].Index) distinct.Add(rows[i]);
            }
            return distinct;
        }
        return rows;
    }
}
