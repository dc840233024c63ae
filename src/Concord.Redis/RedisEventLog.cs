using System.Globalization;
using Concord.Coordination.Streams;
using Concord.Engine;
using Concord.Internal;
using StackExchange.Redis;
using StreamPosition = Concord.Coordination.Streams.StreamPosition;

namespace Concord.Redis;

/// <summary>
/// The native event log of <see cref="RedisStore"/>: a Redis Stream per namespace, <c>{prefix}:events:{ns}</c>, whose entry
/// ids are the events' positions (<c>{revision}-{index}</c>, explicit ids that grow because revisions do), with fields
/// <c>k</c> (the event key) and <c>r</c> (the record). Entries are added by the commit script that writes the event records,
/// so an event is in the log exactly when its append committed. Never trimmed. Reads are XRANGE/XREVRANGE; subscribers
/// are woken by the store's pub/sub notification (one subscription per node), with
/// <see cref="RedisStoreOptions.PollInterval"/> as the fallback. Single streams are left to the stream service's per-stream
/// keys (one cursor), which a scan of the whole namespace could not beat.
/// </summary>
/// <remarks>
/// <c>{prefix}:events-from</c> records the revision the log started at: 1 for a store created with it; for a store that
/// already had commits when it was first opened by this version, the next revision — reads before it merge the streams.
/// </remarks>
public sealed partial class RedisStore : IEventLog
{
    private long _eventLogStart = 1;

    private RedisKey EventLogKey(string ns) => $"{_p}:events:{ns}";

    private RedisKey EventLogFromKey => _p + ":events-from";

    long IEventLog.EventLogStart => _eventLogStart;

    bool IEventLog.Serves(StreamFilter filter) => filter.Stream is null;

    Task IEventLog.EventSignal => _changed.Next;

    private async Task StartEventLogAsync()
    {
        const string script = """
            local from = redis.call('GET', KEYS[2])
            if not from then
              from = tonumber(redis.call('GET', KEYS[1]) or '0') + 1
              redis.call('SET', KEYS[2], from)
            end
            return tonumber(from)
            """;
        _eventLogStart = (long)await Translate(() => _db.ScriptEvaluateAsync(script, [RevKey, EventLogFromKey])).ConfigureAwait(false);
    }

    /// <summary>The commit script's event log arguments for <paramref name="commit"/>: stream key, count, (change number, index) pairs.</summary>
    private void AddEventLogArgs(List<RedisValue> args, CommitEntry commit)
    {
        var rows = EventLogRows.Of(commit);
        args.Add(rows.Count == 0 ? "" : (string)EventLogKey(commit.Namespace)!);
        args.Add(rows.Count);
        foreach (var (change, index) in rows)
        {
            args.Add(change + 1);
            args.Add(index);
        }
    }

    private static string EntryId(StreamPosition p) => p.Revision.ToString(CultureInfo.InvariantCulture) + "-" + p.Index.ToString(CultureInfo.InvariantCulture);

    async ValueTask<IReadOnlyList<RecordedEvent>> IEventLog.ReadEventLogAsync(string ns, StreamFilter filter, StreamPosition from, int count, ReadDirection direction, CancellationToken cancellationToken)
    {
        KeyRules.ValidateNamespace(ns);
        var key = EventLogKey(ns);
        var forward = direction == ReadDirection.Forward;
        var keyPrefix = filter.Stream is { } single ? StreamKeys.EventPrefix(single) : StreamKeys.Events + filter.Prefix;
        var filtered = keyPrefix.Length > StreamKeys.Events.Length;
        var page = filtered ? Math.Max(count, 256) : count;
        var events = new List<RecordedEvent>(Math.Min(count, 1024));
        // Exclusive bounds: "(" + id. The very start and end need none.
        RedisValue bound = forward
            ? from == StreamPosition.Start ? "-" : "(" + EntryId(from)
            : from == StreamPosition.End ? "+" : "(" + EntryId(from);
        while (events.Count < count)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var b = bound;
            var entries = await Translate(() => forward
                ? _db.StreamRangeAsync(key, b, "+", page, Order.Ascending)
                : _db.StreamRangeAsync(key, "-", b, page, Order.Descending)).ConfigureAwait(false);
            foreach (var entry in entries)
            {
                if (filtered && !((string)entry["k"]!).StartsWith(keyPrefix, StringComparison.Ordinal)) continue;
                events.Add(EventDoc.ToRecorded(ParseRecord((string)entry["r"]!)));
                if (events.Count == count) break;
            }
            if (entries.Length < page) break;
            bound = "(" + (string)entries[^1].Id!;
        }
        return events;
    }

    Task IEventLog.WaitForEventsAsync(Task signal, CancellationToken cancellationToken) =>
        EventLogWaits.WaitAsync(signal, _options.PollInterval, _time, _stop.Token, cancellationToken);
}
