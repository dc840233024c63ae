using Concord.Coordination.Streams;
using Concord.Engine;
using Concord.Internal;
using Npgsql;
using NpgsqlTypes;

namespace Concord.Postgres;

/// <summary>
/// The native event log of <see cref="PostgresStore"/>: table <c>stream_events</c> (namespace, revision, index), one row
/// per stream event, inserted by the commit that creates the event's record (same transaction: an append that is refused
/// or rolled back leaves no row; an idempotent replay commits nothing). Never compacted. Subscribers are woken by the
/// store's LISTEN connection (one per node), with <see cref="PostgresStoreOptions.PollInterval"/> as the fallback.
/// </summary>
public sealed partial class PostgresStore : IEventLog
{
    long IEventLog.EventLogStart => 1; // Schema backfills the events of older databases

    bool IEventLog.Serves(StreamFilter filter) => true;

    Task IEventLog.EventSignal => _changed.Next;

    /// <summary>Adds the commit's event log rows to its write batch (inside the commit's transaction).</summary>
    private void AddEventLogRows(NpgsqlBatch batch, CommitEntry commit)
    {
        foreach (var (change, index) in EventLogRows.Of(commit))
        {
            var r = commit.Changes[change].Record;
            var (stream, version) = StreamKeys.ParseEvent(r.Key);
            var insert = new NpgsqlBatchCommand($"INSERT INTO {_s}.stream_events (ns, revision, idx, stream, version, record) VALUES ($1, $2, $3, $4, $5, $6::json)");
            insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = commit.Namespace });
            insert.Parameters.Add(new NpgsqlParameter<long> { TypedValue = commit.Revision });
            insert.Parameters.Add(new NpgsqlParameter<int> { TypedValue = index });
            insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = stream });
            insert.Parameters.Add(new NpgsqlParameter<long> { TypedValue = version });
            insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = RecordJson(r) });
            batch.BatchCommands.Add(insert);
        }
    }

    async ValueTask<IReadOnlyList<RecordedEvent>> IEventLog.ReadEventLogAsync(string ns, StreamFilter filter, StreamPosition from, int count, ReadDirection direction, CancellationToken cancellationToken)
    {
        KeyRules.ValidateNamespace(ns);
        var forward = direction == ReadDirection.Forward;
        var where = filter.Stream is not null ? " AND stream = $5" : filter.Prefix.Length > 0 ? " AND stream >= $5 AND stream <= $6" : "";
        var sql = forward
            ? $"SELECT record FROM {_s}.stream_events WHERE ns = $1 AND (revision, idx) > ($2, $3){where} ORDER BY revision, idx LIMIT $4"
            : $"SELECT record FROM {_s}.stream_events WHERE ns = $1 AND (revision, idx) < ($2, $3){where} ORDER BY revision DESC, idx DESC LIMIT $4";
        return await Translate(async () =>
        {
            await using var cmd = _dataSource.CreateCommand(sql);
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = ns });
            cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = from.Revision });
            cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = from.Index });
            cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = count });
            if (filter.Stream is { } stream) cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = stream, NpgsqlDbType = NpgsqlDbType.Text });
            else if (filter.Prefix.Length > 0)
            {
                cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = filter.Prefix, NpgsqlDbType = NpgsqlDbType.Text });
                cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = PrefixEnd(filter.Prefix), NpgsqlDbType = NpgsqlDbType.Text });
            }
            var events = new List<RecordedEvent>(Math.Min(count, 1024));
            await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) events.Add(EventDoc.ToRecorded(ParseRecord(reader.GetString(0))));
            return (IReadOnlyList<RecordedEvent>)events;
        }).ConfigureAwait(false);
    }

    Task IEventLog.WaitForEventsAsync(Task signal, CancellationToken cancellationToken) =>
        EventLogWaits.WaitAsync(signal, _options.PollInterval, _time, _stop.Token, cancellationToken);
}
