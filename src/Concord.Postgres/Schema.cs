using Npgsql;

namespace Concord.Postgres;

/// <summary>
/// The schema, created (or upgraded) on first start under an advisory lock so several nodes can start together.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item><c>meta</c>: one row holding the global revision, the HLC of the last commit and the oldest readable revision.
/// Every writer locks it first, so commits are totally ordered by revision (linearizable) and the change feed has no gaps.</item>
/// <item><c>kv</c>: the newest version of every key (tombstones included), keys in "C" collation so prefix ranges match ordinal order. Records are stored as <c>json</c>, not <c>jsonb</c>, so values come back byte-for-byte as written.</item>
/// <item><c>kv_log</c>: every version by revision: snapshot reads, prefix phantoms and watch read it; compacted to a retention window.</item>
/// <item><c>idempotency</c>: stored results, written in the same transaction as the effect.</item>
/// <item><c>stream_events</c>: the native event log (<see cref="Concord.Coordination.Streams.IEventLog"/>): every stream
/// event record by (namespace, revision, index), written in the same transaction as the event's <c>kv</c> row and never
/// compacted. Created with the events already in <c>kv</c> when an older database is upgraded.</item>
/// <item><c>queue_tasks</c>, <c>queue_dead</c>, <c>queue_dedup</c>, <c>queue_acked</c> (ack tombstones), <c>queue_seq</c>: the native queue (<see cref="PostgresQueueService"/>;
/// docs/backends.md explains the layout against table bloat).</item>
/// </list>
/// </remarks>
internal static class Schema
{
    public const int Version = 1;

    public static string Sql(string schema) => $"""
        CREATE SCHEMA IF NOT EXISTS {schema};
        CREATE TABLE IF NOT EXISTS {schema}.meta (
            id int PRIMARY KEY CHECK (id = 1),
            schema_version int NOT NULL,
            revision bigint NOT NULL,
            last_ticks bigint NOT NULL,
            oldest_readable bigint NOT NULL);
        INSERT INTO {schema}.meta VALUES (1, {Version}, 0, 0, 1) ON CONFLICT (id) DO NOTHING;
        CREATE TABLE IF NOT EXISTS {schema}.kv (
            ns text NOT NULL,
            key text COLLATE "C" NOT NULL,
            version bigint NOT NULL,
            revision bigint NOT NULL,
            record json NOT NULL,
            expires_at bigint,
            deleted boolean NOT NULL,
            PRIMARY KEY (ns, key));
        CREATE INDEX IF NOT EXISTS kv_expiry ON {schema}.kv (expires_at) WHERE expires_at IS NOT NULL AND NOT deleted;
        CREATE TABLE IF NOT EXISTS {schema}.kv_log (
            revision bigint NOT NULL,
            idx int NOT NULL,
            ns text NOT NULL,
            key text COLLATE "C" NOT NULL,
            kind smallint NOT NULL,
            record json NOT NULL,
            deleted boolean NOT NULL,
            PRIMARY KEY (revision, idx));
        CREATE INDEX IF NOT EXISTS kv_log_key ON {schema}.kv_log (ns, key, revision DESC);
        CREATE TABLE IF NOT EXISTS {schema}.idempotency (
            ns text NOT NULL,
            key text NOT NULL,
            expires_at bigint NOT NULL,
            entry json NOT NULL,
            PRIMARY KEY (ns, key));
        CREATE INDEX IF NOT EXISTS idempotency_expiry ON {schema}.idempotency (expires_at);
        CREATE SEQUENCE IF NOT EXISTS {schema}.queue_seq;
        CREATE TABLE IF NOT EXISTS {schema}.queue_tasks (
            ns text NOT NULL,
            queue text COLLATE "C" NOT NULL,
            id text COLLATE "C" NOT NULL,
            priority int NOT NULL,
            visible_at bigint NOT NULL,
            seq bigint NOT NULL,
            waiting boolean NOT NULL,
            group_key text COLLATE "C",
            attempts int NOT NULL,
            max_attempts int NOT NULL,
            receipt text,
            consumer text,
            deadline bigint,
            last_error text,
            enqueued_at bigint NOT NULL,
            dedup_id text,
            trace_parent text,
            payload json NOT NULL,
            PRIMARY KEY (ns, queue, id))
            WITH (fillfactor = 70, toast_tuple_target = 256, autovacuum_vacuum_scale_factor = 0.0, autovacuum_vacuum_threshold = 1000,
                  autovacuum_vacuum_insert_scale_factor = 0.0, autovacuum_vacuum_insert_threshold = 1000, autovacuum_vacuum_cost_delay = 0,
                  autovacuum_analyze_scale_factor = 0.0, autovacuum_analyze_threshold = 5000);
        CREATE INDEX IF NOT EXISTS queue_tasks_visible ON {schema}.queue_tasks (ns, queue, priority DESC, visible_at, seq) WHERE NOT waiting;
        CREATE INDEX IF NOT EXISTS queue_tasks_group ON {schema}.queue_tasks (ns, queue, group_key, seq) WHERE group_key IS NOT NULL;
        CREATE UNIQUE INDEX IF NOT EXISTS queue_tasks_group_head ON {schema}.queue_tasks (ns, queue, group_key) WHERE group_key IS NOT NULL AND NOT waiting;
        CREATE TABLE IF NOT EXISTS {schema}.queue_dead (
            ns text NOT NULL,
            queue text COLLATE "C" NOT NULL,
            id text COLLATE "C" NOT NULL,
            priority int NOT NULL,
            group_key text COLLATE "C",
            attempts int NOT NULL,
            max_attempts int NOT NULL,
            consumer text,
            last_error text,
            enqueued_at bigint NOT NULL,
            visible_at bigint NOT NULL,
            dedup_id text,
            trace_parent text,
            dead_at bigint NOT NULL,
            payload json NOT NULL,
            PRIMARY KEY (ns, queue, id));
        CREATE INDEX IF NOT EXISTS queue_dead_age ON {schema}.queue_dead (ns, queue, dead_at, id);
        CREATE UNLOGGED TABLE IF NOT EXISTS {schema}.queue_waiters (
            ns text NOT NULL,
            queue text COLLATE "C" NOT NULL,
            node text NOT NULL,
            expires_at bigint NOT NULL,
            PRIMARY KEY (ns, queue, node));
        CREATE TABLE IF NOT EXISTS {schema}.queue_dedup (
            ns text NOT NULL,
            queue text COLLATE "C" NOT NULL,
            dedup_id text NOT NULL,
            task_id text NOT NULL,
            expires_at bigint NOT NULL,
            PRIMARY KEY (ns, queue, dedup_id))
            WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_cost_delay = 0);
        CREATE TABLE IF NOT EXISTS {schema}.stream_events (
            ns text NOT NULL,
            revision bigint NOT NULL,
            idx int NOT NULL,
            stream text COLLATE "C" NOT NULL,
            version bigint NOT NULL,
            record json NOT NULL,
            PRIMARY KEY (ns, revision, idx));
        CREATE INDEX IF NOT EXISTS stream_events_stream ON {schema}.stream_events (ns, stream, revision, idx);
        CREATE TABLE IF NOT EXISTS {schema}.queue_acked (
            ns text NOT NULL,
            queue text COLLATE "C" NOT NULL,
            id text COLLATE "C" NOT NULL,
            receipt text NOT NULL,
            revision bigint NOT NULL,
            expires_at bigint NOT NULL,
            PRIMARY KEY (ns, queue, id))
            WITH (autovacuum_vacuum_scale_factor = 0.0, autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_cost_delay = 0);
        """;

    /// <summary>
    /// Fills <c>stream_events</c> from the event records in <c>kv</c> (a database from before the log). Event keys are
    /// <c>_sys/streams/e/{stream}/@{version:D20}</c>; the index is the event document's <c>index</c>. Runs with the meta
    /// row locked, so no commit interleaves.
    /// </summary>
    public static string BackfillSql(string schema) => $"""
        SELECT 1 FROM {schema}.meta WHERE id = 1 FOR UPDATE;
        INSERT INTO {schema}.stream_events (ns, revision, idx, stream, version, record)
        SELECT ns, revision, (record->'v'->>'index')::int, substr(key, 16, length(key) - 37), right(key, 20)::bigint, record
        FROM {schema}.kv
        WHERE key >= '_sys/streams/e/' AND key < '_sys/streams/e0' AND NOT deleted AND json_typeof(record->'v') = 'object'
            AND (record->'v'->>'index') ~ '^[0-9]+$' AND substr(key, length(key) - 21, 2) = '/@'
        ORDER BY revision, 3
        ON CONFLICT DO NOTHING;
        """;

    public static async Task EnsureAsync(NpgsqlDataSource dataSource, string schema, CancellationToken cancellationToken)
    {
        await using var conn = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var tx = await conn.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using (var lockCmd = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtext('concord-migrate:' || @s))", conn, tx))
        {
            lockCmd.Parameters.AddWithValue("s", schema);
            await lockCmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        bool hadEventLog;
        await using (var probe = new NpgsqlCommand("SELECT to_regclass(@t) IS NOT NULL", conn, tx))
        {
            probe.Parameters.AddWithValue("t", schema + ".stream_events");
            hadEventLog = (bool)(await probe.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }
        await using (var create = new NpgsqlCommand(Sql(schema), conn, tx))
            await create.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        if (!hadEventLog)
        {
            await using var backfill = new NpgsqlCommand(BackfillSql(schema), conn, tx);
            await backfill.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
    }
}
