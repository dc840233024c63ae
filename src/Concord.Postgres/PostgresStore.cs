using System.Buffers;
using System.Data;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Concord.Engine;
using Concord.Internal;
using Npgsql;
using NpgsqlTypes;
using PendingCommit = Concord.Engine.PendingCommit<Concord.Postgres.CommitStep>;

namespace Concord.Postgres;

/// <summary>Settings of <see cref="PostgresStore"/>.</summary>
public sealed class PostgresStoreOptions
{
    /// <summary>Npgsql connection string (ignored when <see cref="DataSource"/> is set).</summary>
    public string? ConnectionString { get; set; }

    /// <summary>A data source owned by the caller. <value>Default: null (one is built from the connection string and owned by the store).</value></summary>
    public NpgsqlDataSource? DataSource { get; set; }

    /// <summary>Schema holding Concord's tables; lets several Concord deployments share a database. <value>Default: concord.</value></summary>
    public string Schema { get; set; } = "concord";

    /// <summary>
    /// Semantics shared with the embedded engine: strict mode, value limit, idempotency retention, retained revisions,
    /// sweep interval and clock. <see cref="ConcordEngineOptions.DataDirectory"/> is ignored.
    /// </summary>
    public ConcordEngineOptions Semantics { get; set; } = new();

    /// <summary>How often watchers and stream subscribers poll when no notification arrives (notifications make delivery immediate). <value>Default: 1 s.</value></summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Attempts for serialization failures and deadlocks before giving up. <value>Default: 5.</value></summary>
    public int MaxAttempts { get; set; } = 5;

    /// <summary>
    /// PostgreSQL's <c>idle_in_transaction_session_timeout</c> for the store's sessions (set through the connection
    /// string's <c>Options</c> unless it already names it; not applied to a caller's <see cref="DataSource"/>). Every
    /// commit holds the <c>meta</c> row lock, so a node frozen mid-commit (SIGSTOP, a long GC pause, a stalled VM, a
    /// silent partition) would otherwise stall every other node until it resumed; with the timeout PostgreSQL ends the
    /// frozen session and the others continue (the frozen node's commit then fails, outcome known only by retrying with
    /// its idempotency key). Concord's transactions never wait on a client, so a few seconds is ample. Null leaves the
    /// server's setting. <value>Default: 5 s.</value>
    /// </summary>
    public TimeSpan? IdleInTransactionTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The connection string with <see cref="IdleInTransactionTimeout"/> added to its <c>Options</c>.</summary>
    internal string EffectiveConnectionString()
    {
        var builder = new NpgsqlConnectionStringBuilder(ConnectionString ?? throw new ArgumentException("ConnectionString or DataSource is required", nameof(ConnectionString)));
        if (IdleInTransactionTimeout is { } timeout && !(builder.Options ?? "").Contains("idle_in_transaction_session_timeout", StringComparison.Ordinal))
        {
            var ms = (long)Math.Ceiling(timeout.TotalMilliseconds);
            builder.Options = ((builder.Options ?? "") + " -c idle_in_transaction_session_timeout=" + ms.ToString(System.Globalization.CultureInfo.InvariantCulture)).Trim();
        }
        return builder.ConnectionString;
    }
}

/// <summary>
/// <see cref="IConcordStore"/> natively on PostgreSQL. Several Concord nodes may share one database: every commit locks
/// the single <c>meta</c> row, takes the next revision, writes the new versions, the change log and the idempotency
/// record, and commits — so commits are totally ordered (linearizable) and the change feed has no gaps. Each node
/// group-commits: requests queued together are evaluated in order and written as consecutive revisions in one
/// transaction (one lock acquisition, one WAL flush). The semantics
/// of each mutation are the embedded engine's own (<see cref="TxnEvaluator"/>), evaluated on rows read inside the
/// transaction. Watchers are woken by LISTEN/NOTIFY. Stream events also go to a native event log (<c>stream_events</c>,
/// in the same transaction), which the stream service reads instead of merging streams.
/// </summary>
/// <remarks>Thread-safe. Times (TTL, idempotency retention, commit HLC) come from <see cref="ConcordEngineOptions.TimeProvider"/> of the node.</remarks>
public sealed partial class PostgresStore : IConcordStore
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly bool _ownsDataSource;
    private readonly PostgresStoreOptions _options;
    private readonly ConcordEngineOptions _semantics;
    private readonly TimeProvider _time;
    private readonly string _s;
    private readonly string _channel;
    private readonly CancellationTokenSource _stop = new();
    private readonly GroupCommitQueue<PendingCommit> _commits = new(MaxBatch, static _ => false);
    private readonly AsyncPulse _changed = new();
    private Task? _listener;
    private ITimer? _sweeper;
    private int _sweeping;

    private PostgresStore(NpgsqlDataSource dataSource, bool owns, PostgresStoreOptions options)
    {
        _dataSource = dataSource;
        _ownsDataSource = owns;
        _options = options;
        _semantics = options.Semantics;
        _time = _semantics.TimeProvider;
        _s = options.Schema;
        _channel = "concord_changes_" + options.Schema;
    }

    /// <summary>Connects, creates or upgrades the schema, and starts the change listener and the sweeper.</summary>
    /// <exception cref="StoreUnavailableException">PostgreSQL cannot be reached.</exception>
    public static async Task<PostgresStore> OpenAsync(PostgresStoreOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Semantics.Validate();
        if (!IsIdentifier(options.Schema)) throw new ArgumentException("Schema must be a lowercase SQL identifier", nameof(options));
        var owns = options.DataSource is null;
        var dataSource = options.DataSource ?? NpgsqlDataSource.Create(options.EffectiveConnectionString());
        var store = new PostgresStore(dataSource, owns, options);
        try
        {
            await Translate(() => Schema.EnsureAsync(dataSource, options.Schema, cancellationToken)).ConfigureAwait(false);
        }
        catch
        {
            if (owns) await dataSource.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        store._listener = Task.Run(store.ListenAsync);
        store._sweeper = store._time.CreateTimer(static s => _ = ((PostgresStore)s!).SweepAsync(), store, store._semantics.ExpirySweepInterval, store._semantics.ExpirySweepInterval);
        return store;
    }

    private static bool IsIdentifier(string s) => s.Length is > 0 and < 48 && s.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_') && !char.IsDigit(s[0]);

    // ------------------------------------------------------------------ reads

    /// <inheritdoc />
    public async ValueTask<long> GetRevisionAsync(CancellationToken cancellationToken = default)
    {
        var (revision, _) = await ReadMetaAsync(cancellationToken).ConfigureAwait(false);
        return revision;
    }

    /// <summary>
    /// The current revision and the oldest readable one. The retention window is logical: revisions older than
    /// <see cref="ConcordEngineOptions.RetainedRevisions"/> are compacted the moment they leave it, whether or not the
    /// sweeper has deleted their rows yet, so every node answers the same.
    /// </summary>
    private async Task<(long Revision, long Oldest)> ReadMetaAsync(CancellationToken cancellationToken) =>
        await Translate(async () =>
        {
            await using var cmd = _dataSource.CreateCommand($"SELECT revision, oldest_readable FROM {_s}.meta WHERE id = 1");
            await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var revision = reader.GetInt64(0);
            return (revision, Math.Max(reader.GetInt64(1), revision - _semantics.RetainedRevisions + 1));
        }).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask<ConcordRecord?> GetAsync(string ns, string key, ReadOptions? options = null, CancellationToken cancellationToken = default)
    {
        KeyRules.ValidateNamespace(ns);
        KeyRules.ValidateKey(key);
        if (options?.AtRevision is { } at)
        {
            await CheckRevisionAsync(at, cancellationToken).ConfigureAwait(false);
            var old = await Translate(async () =>
            {
                await using var cmd = _dataSource.CreateCommand($"SELECT record FROM {_s}.kv_log WHERE ns = $1 AND key = $2 AND revision <= $3 ORDER BY revision DESC, idx DESC LIMIT 1");
                cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = ns });
                cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = key });
                cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = at });
                return await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string;
            }).ConfigureAwait(false);
            return old is null ? null : Visible(ParseRecord(old), latest: false);
        }
        var json = await Translate(async () =>
        {
            await using var cmd = _dataSource.CreateCommand($"SELECT record FROM {_s}.kv WHERE ns = $1 AND key = $2");
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = ns });
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = key });
            return await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string;
        }).ConfigureAwait(false);
        return json is null ? null : Visible(ParseRecord(json), latest: true);
    }

    private async Task CheckRevisionAsync(long at, CancellationToken cancellationToken)
    {
        if (at < 0) throw new InvalidRequestException($"AtRevision must not be negative (got {at})");
        var (revision, oldest) = await ReadMetaAsync(cancellationToken).ConfigureAwait(false);
        if (at > revision) throw new UnknownRevisionException(at, revision);
        oldest = Math.Min(oldest, revision);
        if (at < oldest) throw new RevisionCompactedException(at, oldest - 1);
    }

    private ConcordRecord? Visible(ConcordRecord record, bool latest)
    {
        if (record.IsDeleted) return null;
        if (latest && record.ExpiresAt is { } expires && expires <= _time.GetUtcNow()) return null;
        return record;
    }

    /// <inheritdoc />
    public async ValueTask<ListResult> ListAsync(string ns, ListRequest request, CancellationToken cancellationToken = default)
    {
        KeyRules.ValidateNamespace(ns);
        ArgumentNullException.ThrowIfNull(request);
        KeyRules.ValidatePrefix(request.Prefix);
        if (request.Limit is < 1 or > 10_000) throw new InvalidRequestException($"List limit must be between 1 and 10000 (got {request.Limit})");
        if (request.AtRevision is { } at) await CheckRevisionAsync(at, cancellationToken).ConfigureAwait(false);
        return await Translate(async () =>
        {
            await using var conn = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            // One snapshot for the revision and the rows: writers commit both together.
            await using var tx = await conn.BeginTransactionAsync(IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
            long revision;
            await using (var meta = new NpgsqlCommand($"SELECT revision FROM {_s}.meta WHERE id = 1", conn, tx))
                revision = (long)(await meta.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
            var readAt = request.AtRevision ?? revision;
            var records = new List<ConcordRecord>();
            var after = request.After;
            while (records.Count < request.Limit)
            {
                var want = request.Limit - records.Count;
                var sql = request.AtRevision is null
                    ? $"SELECT key, record FROM {_s}.kv WHERE ns = $1 AND NOT deleted AND key >= $2 AND ($3 = '' OR key <= $3) AND ($4::text IS NULL OR key > $4) ORDER BY key LIMIT $5"
                    : $"SELECT key, record FROM (SELECT DISTINCT ON (key) key, record, deleted FROM {_s}.kv_log WHERE ns = $1 AND revision <= $6 AND key >= $2 AND ($3 = '' OR key <= $3) AND ($4::text IS NULL OR key > $4) ORDER BY key, revision DESC, idx DESC) v WHERE NOT deleted ORDER BY key LIMIT $5";
                await using var cmd = new NpgsqlCommand(sql, conn, tx);
                cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = ns });
                cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = request.Prefix });
                cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = PrefixEnd(request.Prefix) });
                cmd.Parameters.Add(new NpgsqlParameter<string?> { TypedValue = after, NpgsqlDbType = NpgsqlDbType.Text });
                cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = want });
                if (request.AtRevision is not null) cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = readAt });
                var rows = 0;
                await using (var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        rows++;
                        after = reader.GetString(0);
                        if (Visible(ParseRecord(reader.GetString(1)), request.AtRevision is null) is { } record) records.Add(record);
                    }
                }
                if (rows < want) return new ListResult(records, readAt, null);
            }
            return new ListResult(records, readAt, after);
        }).ConfigureAwait(false);
    }

    /// <summary>Inclusive upper bound of keys under a prefix in "C" collation ('' = no bound).</summary>
    private static string PrefixEnd(string prefix) => prefix.Length == 0 ? "" : prefix + char.ConvertFromUtf32(0x10FFFF);

    // ------------------------------------------------------------------ writes

    /// <inheritdoc />
    public async ValueTask<WriteResult> PutAsync(string ns, string key, JsonElement value, WriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= WriteOptions.Default;
        return SingleKeyWrites.ToWriteResult(key, await ExecuteAsync(ns, SingleKeyWrites.Put(key, value, options), options, cancellationToken).ConfigureAwait(false));
    }

    /// <inheritdoc />
    public async ValueTask<WriteResult> DeleteAsync(string ns, string key, WriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= WriteOptions.Default;
        return SingleKeyWrites.ToWriteResult(key, await ExecuteAsync(ns, SingleKeyWrites.Delete(key, options), options, cancellationToken).ConfigureAwait(false));
    }

    /// <inheritdoc />
    public async ValueTask<WriteResult> PatchAsync(string ns, string key, JsonPatch patch, WriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= WriteOptions.Default;
        return SingleKeyWrites.ToWriteResult(key, await ExecuteAsync(ns, SingleKeyWrites.Patch(key, patch, options), options, cancellationToken).ConfigureAwait(false));
    }

    /// <inheritdoc />
    public ValueTask<TxnResult> TransactAsync(string ns, TxnRequest request, WriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return ExecuteAsync(ns, request, options ?? WriteOptions.Default, cancellationToken);
    }

    /// <summary>
    /// Commits <paramref name="request"/> like <see cref="TransactAsync"/> and runs <paramref name="step"/> inside the same
    /// PostgreSQL transaction, after the commit's rows are written: a refusal or an exception from the step rolls the
    /// whole commit back (versions, log, idempotency record, notification), so the step and the commit happen together
    /// or not at all. The step does not run when nothing is committed (a failed expectation, a replay, a read-only
    /// transaction). Used by the native queue (<see cref="PostgresQueueService"/>) to ack a task with its effects.
    /// </summary>
    internal ValueTask<TxnResult> TransactWithStepAsync(string ns, TxnRequest request, WriteOptions options, CommitStep step, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        return ExecuteAsync(ns, request, options, cancellationToken, step);
    }

    /// <summary>The data source and the schema, for the native queue that shares them.</summary>
    internal NpgsqlDataSource DataSource => _dataSource;

    internal string SchemaName => _s;

    private async ValueTask<TxnResult> ExecuteAsync(string ns, TxnRequest request, WriteOptions options, CancellationToken cancellationToken, CommitStep? step = null)
    {
        var pending = PendingCommit.Create(ns, request, options, _semantics.MaxValueBytes, step, cancellationToken);
        _commits.Submit(pending, CommitLoopAsync, _stop.Token);
        // Cancelling the wait does not withdraw a request the loop already took: like a cancelled COMMIT, its outcome is unknown.
        return await pending.Done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Most requests one transaction evaluates and writes.</summary>
    private const int MaxBatch = 256;

    /// <summary>
    /// Group commit. Every commit holds the meta row lock until its WAL flush, so PostgreSQL cannot group-commit
    /// Concord's transactions; Concord does it itself. One loop per node (started by the request that finds it idle,
    /// ending when the queue is empty) takes every request queued meanwhile, evaluates them in queue order against one
    /// read of their rows (each sees the effects of those before it), and writes them as consecutive revisions in one
    /// transaction: one lock acquisition and one flush for the batch. Nodes still serialize among themselves on the
    /// row lock, batch by batch. The loop never throws: every request it takes is completed, with its result or an
    /// exception.
    /// </summary>
    private async Task CommitLoopAsync()
    {
        var split = new Queue<PendingCommit>();
        while (true)
        {
            List<PendingCommit> batch;
            if (split.TryDequeue(out var alone)) batch = [alone];
            else if ((batch = _commits.TakeBatch()).Count == 0) return;
            // A request cancelled while it waited is withdrawn: nothing of it was sent.
            batch.RemoveAll(p => p.CancellationToken.IsCancellationRequested && p.Done.TrySetCanceled(p.CancellationToken));
            if (batch.Count > 0) await CommitBatchWithRetriesAsync(batch, split).ConfigureAwait(false);
        }
    }

    private async Task CommitBatchWithRetriesAsync(List<PendingCommit> batch, Queue<PendingCommit> split)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                PendingCommit.Complete(batch, await Translate(() => CommitBatchAsync(batch, _stop.Token)).ConfigureAwait(false));
                return;
            }
            catch (StoreUnavailableException e) when (attempt < _options.MaxAttempts && e.InnerException is PostgresException { SqlState: "40001" or "40P01" })
            {
                // Serialization failure or deadlock: nothing was applied, so the whole batch simply runs again.
            }
            catch (SplitBatchException)
            {
                // A commit step refused (or failed) inside a batch: nothing was applied; each request runs again alone.
                foreach (var p in batch) split.Enqueue(p);
                return;
            }
            catch (StoreUnavailableException e) when (batch.Count > 1 && e.InnerException is PostgresException { SqlState: ['2', '2' or '3', ..] or ['5', '4', ..] })
            {
                // PostgreSQL refused a statement (bad data, a constraint, a size limit): the transaction was rolled back,
                // so nothing of the batch was applied. Each request runs again alone, so one request PostgreSQL refuses
                // cannot fail the others.
                foreach (var p in batch) split.Enqueue(p);
                return;
            }
            catch (Exception e)
            {
                // A failure before COMMIT applied nothing; one during COMMIT leaves the outcome unknown. Either way the
                // callers get a transient StoreUnavailableException and retry with their idempotency keys.
                PendingCommit.Fail(batch, e, _stop.IsCancellationRequested);
                return;
            }
        }
    }

    /// <summary>A commit step refused or failed in a batch of several requests: run each alone.</summary>
    private sealed class SplitBatchException : Exception;

    /// <summary>
    /// Evaluates and writes a batch in one transaction; returns each request's <see cref="TxnResult"/> or the
    /// <see cref="ConcordException"/> its evaluation threw (a request refused by its own semantics fails alone).
    /// </summary>
    private async Task<object[]> CommitBatchAsync(List<PendingCommit> batch, CancellationToken cancellationToken)
    {
        await using var conn = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var tx = await conn.BeginTransactionAsync(IsolationLevel.ReadCommitted, cancellationToken).ConfigureAwait(false);
        var views = new Dictionary<string, BatchView>(StringComparer.Ordinal);
        long last, lastTicks;
        // One round trip: lock the revision counter (serializing commits), then read everything the evaluations need.
        await using (var read = new NpgsqlBatch(conn, tx))
        {
            read.BatchCommands.Add(new NpgsqlBatchCommand($"SELECT revision, last_ticks FROM {_s}.meta WHERE id = 1 FOR UPDATE"));
            foreach (var p in batch)
            {
                var rows = new NpgsqlBatchCommand($"SELECT key, record FROM {_s}.kv WHERE ns = $1 AND key = ANY($2)");
                rows.Parameters.Add(new NpgsqlParameter<string> { TypedValue = p.Ns });
                rows.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = p.Keys });
                read.BatchCommands.Add(rows);
                foreach (var prefix in p.Prefixes)
                {
                    var c = new NpgsqlBatchCommand($"SELECT coalesce(max(revision), 0) FROM {_s}.kv WHERE ns = $1 AND key >= $2 AND ($3 = '' OR key <= $3)");
                    c.Parameters.Add(new NpgsqlParameter<string> { TypedValue = p.Ns });
                    c.Parameters.Add(new NpgsqlParameter<string> { TypedValue = prefix });
                    c.Parameters.Add(new NpgsqlParameter<string> { TypedValue = PrefixEnd(prefix) });
                    read.BatchCommands.Add(c);
                }
                if (p.Options.IdempotencyKey is { } idemKey)
                {
                    var i = new NpgsqlBatchCommand($"SELECT entry FROM {_s}.idempotency WHERE ns = $1 AND key = $2");
                    i.Parameters.Add(new NpgsqlParameter<string> { TypedValue = p.Ns });
                    i.Parameters.Add(new NpgsqlParameter<string> { TypedValue = idemKey });
                    read.BatchCommands.Add(i);
                }
            }
            await using var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            last = reader.GetInt64(0);
            lastTicks = reader.GetInt64(1);
            foreach (var p in batch)
            {
                if (!views.TryGetValue(p.Ns, out var view)) views[p.Ns] = view = new BatchView();
                await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) view.Rows[reader.GetString(0)] = ParseRecord(reader.GetString(1));
                foreach (var prefix in p.Prefixes)
                {
                    await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
                    await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                    view.Prefixes[prefix] = reader.GetInt64(0);
                }
                if (p.Options.IdempotencyKey is not null)
                {
                    await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
                    if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        using var doc = JsonDocument.Parse(reader.GetString(0));
                        var entry = Codec.ReadIdempotency(doc.RootElement);
                        view.Idempotency[entry.Key] = entry;
                    }
                }
            }
        }

        // Evaluate in queue order; each commit is visible to the requests after it.
        var outcomes = new object[batch.Count];
        var commits = new List<CommitEntry>();
        var committed = new List<int>(); // batch index of each commit
        for (var i = 0; i < batch.Count; i++)
        {
            var p = batch[i];
            var view = views[p.Ns];
            var now = _time.GetUtcNow();
            var commitTime = new DateTimeOffset(Math.Max(now.UtcTicks, lastTicks + 1), TimeSpan.Zero);
            CommitEntry? commit;
            try
            {
                outcomes[i] = TxnEvaluator.Evaluate(p.Ns, p.Request, p.Options, p.Fingerprint, view, new EvaluationContext(last, now, commitTime, _semantics), out commit);
            }
            catch (ConcordException e)
            {
                outcomes[i] = e;
                continue;
            }
            if (commit is null) continue;
            commits.Add(commit);
            committed.Add(i);
            last = commit.Revision;
            lastTicks = commit.Time.UtcTicks;
            view.Apply(commit);
        }
        if (commits.Count == 0)
        {
            await tx.RollbackAsync(cancellationToken).ConfigureAwait(false);
            return outcomes;
        }
        await WriteCommitsAsync(conn, tx, commits, cancellationToken).ConfigureAwait(false);
        // Native queue operations prepared into these transactions (PostgresQueueService.PrepareEnqueue/PrepareAck), then
        // each caller's step, in revision order. A refusal rolls everything back: alone, the request gets it as its
        // result; in a batch, every request runs again alone (later ones were evaluated on top of the refused one).
        for (var c = 0; c < commits.Count; c++)
        {
            var (index, commit) = (committed[c], commits[c]);
            CommitRefusal? refusal;
            try
            {
                refusal = await PostgresQueueService.ApplyPreparedAsync(conn, tx, _s, commit, cancellationToken).ConfigureAwait(false);
                if (refusal is null && batch[index].Attachment is { } step) refusal = await step(conn, tx, commit, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception) when (batch.Count > 1)
            {
                throw new SplitBatchException();
            }
            if (refusal is null) continue;
            await tx.RollbackAsync(cancellationToken).ConfigureAwait(false);
            if (batch.Count > 1) throw new SplitBatchException();
            outcomes[index] = refusal.ToResult(batch[index].Request, ((TxnResult)outcomes[index]).Succeeded, commit.Revision - 1);
            return outcomes;
        }
        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        return outcomes;
    }

    /// <summary>Writes one commit's versions, log rows, idempotency record and the new revision; notifies watchers on commit.</summary>
    private Task WriteCommitAsync(NpgsqlConnection conn, NpgsqlTransaction tx, CommitEntry commit, CancellationToken cancellationToken) =>
        WriteCommitsAsync(conn, tx, [commit], cancellationToken);

    /// <summary>
    /// Writes consecutive commits (in revision order) in one round trip: their versions, log rows and idempotency records,
    /// then the newest revision once; watchers are notified once, on commit.
    /// </summary>
    private async Task WriteCommitsAsync(NpgsqlConnection conn, NpgsqlTransaction tx, IReadOnlyList<CommitEntry> commits, CancellationToken cancellationToken)
    {
        await using var batch = new NpgsqlBatch(conn, tx);
        foreach (var commit in commits) AddCommit(batch, commit);
        var newest = commits[^1];
        var meta = new NpgsqlBatchCommand($"UPDATE {_s}.meta SET revision = $1, last_ticks = $2 WHERE id = 1");
        meta.Parameters.Add(new NpgsqlParameter<long> { TypedValue = newest.Revision });
        meta.Parameters.Add(new NpgsqlParameter<long> { TypedValue = newest.Time.UtcTicks });
        batch.BatchCommands.Add(meta);
        var notify = new NpgsqlBatchCommand("SELECT pg_notify($1, $2)");
        notify.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _channel });
        notify.Parameters.Add(new NpgsqlParameter<string> { TypedValue = newest.Revision.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        batch.BatchCommands.Add(notify);
        await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private void AddCommit(NpgsqlBatch batch, CommitEntry commit)
    {
        var idx = 0;
        foreach (var change in commit.Changes)
        {
            var r = change.Record;
            var json = RecordJson(r);
            var upsert = new NpgsqlBatchCommand($"""
                INSERT INTO {_s}.kv (ns, key, version, revision, record, expires_at, deleted) VALUES ($1, $2, $3, $4, $5::json, $6, $7)
                ON CONFLICT (ns, key) DO UPDATE SET version = excluded.version, revision = excluded.revision, record = excluded.record,
                    expires_at = excluded.expires_at, deleted = excluded.deleted
                """);
            upsert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = commit.Namespace });
            upsert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = r.Key });
            upsert.Parameters.Add(new NpgsqlParameter<long> { TypedValue = r.Version });
            upsert.Parameters.Add(new NpgsqlParameter<long> { TypedValue = r.Revision });
            upsert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = json });
            upsert.Parameters.Add(new NpgsqlParameter<long?> { TypedValue = r.ExpiresAt?.UtcTicks, NpgsqlDbType = NpgsqlDbType.Bigint });
            upsert.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = r.IsDeleted });
            batch.BatchCommands.Add(upsert);
            var log = new NpgsqlBatchCommand($"INSERT INTO {_s}.kv_log (revision, idx, ns, key, kind, record, deleted) VALUES ($1, $2, $3, $4, $5, $6::json, $7)");
            log.Parameters.Add(new NpgsqlParameter<long> { TypedValue = commit.Revision });
            log.Parameters.Add(new NpgsqlParameter<int> { TypedValue = idx++ });
            log.Parameters.Add(new NpgsqlParameter<string> { TypedValue = commit.Namespace });
            log.Parameters.Add(new NpgsqlParameter<string> { TypedValue = r.Key });
            log.Parameters.Add(new NpgsqlParameter<short> { TypedValue = (short)change.Kind });
            log.Parameters.Add(new NpgsqlParameter<string> { TypedValue = json });
            log.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = r.IsDeleted });
            batch.BatchCommands.Add(log);
        }
        AddEventLogRows(batch, commit);
        if (commit.Idempotency is { } idem)
        {
            var buffer = new ArrayBufferWriter<byte>(256);
            using (var w = new Utf8JsonWriter(buffer)) Codec.WriteIdempotency(w, idem);
            var i = new NpgsqlBatchCommand($"""
                INSERT INTO {_s}.idempotency (ns, key, expires_at, entry) VALUES ($1, $2, $3, $4::json)
                ON CONFLICT (ns, key) DO UPDATE SET expires_at = excluded.expires_at, entry = excluded.entry
                """);
            i.Parameters.Add(new NpgsqlParameter<string> { TypedValue = commit.Namespace });
            i.Parameters.Add(new NpgsqlParameter<string> { TypedValue = idem.Key });
            i.Parameters.Add(new NpgsqlParameter<long> { TypedValue = idem.ExpiresAt.UtcTicks });
            i.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Encoding.UTF8.GetString(buffer.WrittenSpan) });
            batch.BatchCommands.Add(i);
        }
    }

    private static string RecordJson(ConcordRecord record)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer)) Codec.WriteRecord(w, record);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static ConcordRecord ParseRecord(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return Codec.ReadRecord(doc.RootElement);
    }

    // ------------------------------------------------------------------ watch

    /// <inheritdoc />
    public async IAsyncEnumerable<ChangeEvent> WatchAsync(string ns, WatchRequest request, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        KeyRules.ValidateNamespace(ns);
        ArgumentNullException.ThrowIfNull(request);
        request.Validate();
        var (revision, oldest) = await ReadMetaAsync(cancellationToken).ConfigureAwait(false);
        long lastRevision;
        if (request.FromRevision == 0) lastRevision = revision;
        else
        {
            if (request.FromRevision < oldest) throw new RevisionCompactedException(request.FromRevision, oldest - 1);
            lastRevision = request.FromRevision - 1;
        }
        var lastIdx = int.MaxValue;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        while (true)
        {
            var signal = ChangedSignal();
            var page = await Translate(() => ReadChangesAsync(ns, request, lastRevision, lastIdx, stop.Token)).ConfigureAwait(false);
            foreach (var (rev, idx, change) in page)
            {
                lastRevision = rev;
                lastIdx = idx;
                yield return change;
            }
            if (page.Count == 1000) continue;
            try
            {
                await signal.WaitAsync(_options.PollInterval, _time, stop.Token).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // Poll anyway: a notification can be lost when the listener reconnects.
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                throw new StoreUnavailableException("The store is closed");
            }
        }
    }

    private async Task<List<(long Revision, int Idx, ChangeEvent Change)>> ReadChangesAsync(string ns, WatchRequest request, long afterRevision, int afterIdx, CancellationToken cancellationToken)
    {
        var filter = request.Key is not null ? "key = $4" : "key >= $4 AND ($5 = '' OR key <= $5)";
        await using var cmd = _dataSource.CreateCommand(
            $"SELECT revision, idx, kind, record FROM {_s}.kv_log WHERE (revision, idx) > ($1, $2) AND ns = $3 AND {filter} ORDER BY revision, idx LIMIT 1000");
        cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = afterRevision });
        cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = afterIdx });
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = ns });
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = request.Key ?? request.Prefix });
        if (request.Key is null) cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = PrefixEnd(request.Prefix) });
        var result = new List<(long, int, ChangeEvent)>();
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            result.Add((reader.GetInt64(0), reader.GetInt32(1), new ChangeEvent(ns, (ChangeKind)reader.GetInt16(2), ParseRecord(reader.GetString(3)))));
        return result;
    }

    private Task ChangedSignal() => _changed.Next;

    private void PulseChanged() => _changed.Pulse();

    /// <summary>One LISTEN connection per store; reconnects with backoff after failures.</summary>
    private async Task ListenAsync()
    {
        var delay = TimeSpan.FromMilliseconds(100);
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await using var conn = await _dataSource.OpenConnectionAsync(_stop.Token).ConfigureAwait(false);
                conn.Notification += (_, _) => PulseChanged();
                await using (var listen = new NpgsqlCommand($"LISTEN {_channel}", conn))
                    await listen.ExecuteNonQueryAsync(_stop.Token).ConfigureAwait(false);
                delay = TimeSpan.FromMilliseconds(100);
                PulseChanged(); // anything committed while we were not listening
                while (!_stop.IsCancellationRequested) await conn.WaitAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException)
            {
                try
                {
                    await Task.Delay(delay, _time, _stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
            }
        }
    }

    // ------------------------------------------------------------------ housekeeping

    /// <summary>
    /// Turns expired keys into tombstones (one revision per namespace), forgets expired idempotency records and compacts
    /// the change log to the retention window. Safe to run on every node at once: each step is a locked transaction.
    /// </summary>
    internal async Task SweepAsync()
    {
        if (Interlocked.Exchange(ref _sweeping, 1) == 1) return;
        try
        {
            await Translate(() => SweepOnceAsync(_stop.Token)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ConcordException or OperationCanceledException or ObjectDisposedException)
        {
            // Housekeeping retries on the next tick.
        }
        finally
        {
            Volatile.Write(ref _sweeping, 0);
        }
    }

    private async Task SweepOnceAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        await using var conn = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (var tx = await conn.BeginTransactionAsync(cancellationToken).ConfigureAwait(false))
        {
            long last, lastTicks;
            await using (var meta = new NpgsqlCommand($"SELECT revision, last_ticks FROM {_s}.meta WHERE id = 1 FOR UPDATE", conn, tx))
            await using (var reader = await meta.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                last = reader.GetInt64(0);
                lastTicks = reader.GetInt64(1);
            }
            var expired = new List<(string Ns, ConcordRecord Record)>();
            await using (var find = new NpgsqlCommand($"SELECT ns, record FROM {_s}.kv WHERE expires_at <= $1 AND NOT deleted ORDER BY ns, key LIMIT 1000", conn, tx))
            {
                find.Parameters.Add(new NpgsqlParameter<long> { TypedValue = now.UtcTicks });
                await using var reader = await find.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) expired.Add((reader.GetString(0), ParseRecord(reader.GetString(1))));
            }
            foreach (var group in expired.GroupBy(e => e.Ns))
            {
                var revision = ++last;
                lastTicks = Math.Max(now.UtcTicks, lastTicks + 1);
                var time = new DateTimeOffset(lastTicks, TimeSpan.Zero);
                var changes = group.Select(e => new ChangeEvent(group.Key, ChangeKind.Expire,
                    new ConcordRecord(e.Record.Key, default, e.Record.Version + 1, revision, e.Record.CreateRevision, "concord:ttl", time, null, true))).ToList();
                await WriteCommitAsync(conn, tx, new CommitEntry { Revision = revision, Namespace = group.Key, Time = time, Changes = changes }, cancellationToken).ConfigureAwait(false);
            }
            await using (var idem = new NpgsqlCommand($"DELETE FROM {_s}.idempotency WHERE expires_at <= $1", conn, tx))
            {
                idem.Parameters.Add(new NpgsqlParameter<long> { TypedValue = now.UtcTicks });
                await idem.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            // Compaction: keep every version newer than the horizon, plus the newest one at or below it.
            var horizon = last - _semantics.RetainedRevisions + 1;
            if (horizon > 1)
            {
                await using var compact = new NpgsqlCommand($"""
                    DELETE FROM {_s}.kv_log l WHERE l.revision < $1 AND EXISTS (
                        SELECT 1 FROM {_s}.kv_log n WHERE n.ns = l.ns AND n.key = l.key AND n.revision > l.revision AND n.revision <= $1);
                    UPDATE {_s}.meta SET oldest_readable = greatest(oldest_readable, $1) WHERE id = 1;
                    """, conn, tx);
                compact.Parameters.Add(new NpgsqlParameter<long> { TypedValue = horizon });
                await compact.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    // ------------------------------------------------------------------ errors and disposal

    /// <summary>Translates driver errors at the boundary: callers only ever see <see cref="ConcordException"/>s.</summary>
    private static async Task<T> Translate<T>(Func<Task<T>> action)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (PostgresException e)
        {
            throw new StoreUnavailableException($"PostgreSQL refused the operation ({e.SqlState}: {e.MessageText})", e, e.IsTransient || e.SqlState is "40001" or "40P01");
        }
        catch (NpgsqlException e)
        {
            // A failure during COMMIT leaves the outcome unknown: retry with the same idempotency key.
            throw new StoreUnavailableException($"PostgreSQL is unavailable: {e.Message}", e, isTransient: true);
        }
        catch (IOException e)
        {
            throw new StoreUnavailableException($"PostgreSQL connection failed: {e.Message}", e, isTransient: true);
        }
    }

    private static Task Translate(Func<Task> action) => Translate(async () =>
    {
        await action().ConfigureAwait(false);
        return true;
    });

    /// <summary>Stops the listener and the sweeper; disposes the data source if the store created it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested) return;
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_sweeper is not null) await _sweeper.DisposeAsync().ConfigureAwait(false);
        if (_listener is not null)
        {
            try
            {
                await _listener.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
        if (_ownsDataSource) await _dataSource.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
    }
}
