using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Concord.Engine;
using Microsoft.Data.Sqlite;

namespace Concord.Benchmarks.Load;

/// <summary>
/// Durable acknowledged writes per second: every counted write was fsynced before its call returned. N writers
/// upsert small JSON values on their own keys (no conflicts), so the figure is the cost of durability alone.
/// </summary>
/// <remarks>
/// <para>Concord: the embedded engine (group commit: one fsync acknowledges every write appended meanwhile); writers are
/// async tasks, its natural client model.</para>
/// <para>SQLite: Microsoft.Data.Sqlite, journal_mode=WAL, synchronous=FULL (the WAL is fsynced at every commit), one
/// autocommit transaction per write, one connection per writer, busy_timeout=10 s because SQLite admits one writer at
/// a time. Its API blocks, so its writers are dedicated threads.</para>
/// <para>Both write under the same work directory, hence to the same disk.</para>
/// </remarks>
internal static class DurableLoad
{
    private const string Ns = "bench";
    public static readonly int[] WriterCounts = [1, 8, 64];
    private static readonly Target GroupCommitTarget = new(AtLeast: 5, AtMost: null);

    public static IEnumerable<Comparison> Run(LoadSettings settings, Action<string> log)
    {
        foreach (var writers in WriterCounts)
        {
            var concord = new List<RunResult>();
            var sqlite = new List<RunResult>();
            for (var run = 0; run < settings.Runs; run++)
            {
                concord.Add(RunConcord(writers, settings, run));
                sqlite.Add(RunSqlite(writers, settings, run));
                log($"durable {writers,2} writers run {run + 1}: concord {concord[^1].Rate,8:N0} writes/s (p50 {concord[^1].P50Ms:0.00} ms, p99 {concord[^1].P99Ms:0.00} ms), sqlite {sqlite[^1].Rate,8:N0} writes/s (p50 {sqlite[^1].P50Ms:0.00} ms, p99 {sqlite[^1].P99Ms:0.00} ms)");
            }
            yield return new Comparison("durable", $"{writers} writer{(writers == 1 ? "" : "s")}", "writes/s", true,
                ToSample(ConcordSubject, concord),
                ToSample("SQLite WAL, synchronous=FULL, one transaction per write, a connection per writer", sqlite),
                writers == 64 ? GroupCommitTarget : null);
        }

        // SQLite's busy handler sleeps (1, 2, 5, … 100 ms) instead of waking a waiting writer, which depresses its
        // multi-writer figure. Queueing the writers in-process on one connection removes that, isolating what group
        // commit itself is worth.
        const int Queued = 64;
        var concordQueued = new List<RunResult>();
        var sqliteQueued = new List<RunResult>();
        for (var run = 0; run < settings.Runs; run++)
        {
            concordQueued.Add(RunConcord(Queued, settings, run));
            sqliteQueued.Add(RunSqlite(Queued, settings, run, sharedConnection: true));
            log($"durable {Queued,2} writers, sqlite on one shared connection, run {run + 1}: concord {concordQueued[^1].Rate,8:N0} writes/s, sqlite {sqliteQueued[^1].Rate,8:N0} writes/s (p50 {sqliteQueued[^1].P50Ms:0.00} ms, p99 {sqliteQueued[^1].P99Ms:0.00} ms)");
        }
        yield return new Comparison("durable", $"{Queued} writers, SQLite queued on one connection", "writes/s", true,
            ToSample(ConcordSubject, concordQueued),
            ToSample("SQLite WAL, synchronous=FULL, one transaction per write, one connection shared behind a lock", sqliteQueued));
    }

    private const string ConcordSubject = "Concord embedded engine: PutAsync, acknowledged after group fsync";

    private sealed record RunResult(double Rate, double P50Ms, double P99Ms);

    private static Sample ToSample(string subject, List<RunResult> runs) =>
        new(subject, [.. runs.Select(r => r.Rate)], new()
        {
            ["p50 latency ms"] = [.. runs.Select(r => r.P50Ms)],
            ["p99 latency ms"] = [.. runs.Select(r => r.P99Ms)],
        });

    private static string FreshDirectory(LoadSettings settings, string name)
    {
        var dir = Path.Combine(settings.WorkDirectory, name);
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static RunResult RunConcord(int writers, LoadSettings settings, int run)
    {
        var dir = FreshDirectory(settings, $"concord-{writers}-{run}");
        var value = JsonDocument.Parse("""{"n":1}""").RootElement.Clone();
        var engine = ConcordEngine.OpenAsync(new ConcordEngineOptions { DataDirectory = dir }).GetAwaiter().GetResult();
        try
        {
            var phases = new Phases();
            var latencies = new List<double>[writers];
            var tasks = new Task[writers];
            for (var w = 0; w < writers; w++)
            {
                var index = w;
                latencies[w] = [];
                tasks[w] = Task.Run(async () =>
                {
                    for (var i = 0; ; i++)
                    {
                        var started = Stopwatch.GetTimestamp();
                        await engine.PutAsync(Ns, $"w{index:D2}/k{i % 100:D3}", value).ConfigureAwait(false);
                        if (!Record(phases, latencies[index], started)) return;
                    }
                });
            }
            var seconds = phases.Drive(settings.Warmup, settings.DurableDuration);
            Task.WaitAll(tasks);
            return Summarize(latencies, seconds);
        }
        finally
        {
            engine.DisposeAsync().AsTask().GetAwaiter().GetResult();
            Directory.Delete(dir, recursive: true);
        }
    }

    private static RunResult RunSqlite(int writers, LoadSettings settings, int run, bool sharedConnection = false)
    {
        var dir = FreshDirectory(settings, $"sqlite-{writers}-{run}");
        var connectionString = new SqliteConnectionStringBuilder { DataSource = Path.Combine(dir, "bench.db"), Pooling = false }.ToString();
        using (var setup = new SqliteConnection(connectionString))
        {
            setup.Open();
            Execute(setup, "PRAGMA journal_mode=WAL; CREATE TABLE kv(k TEXT PRIMARY KEY, v BLOB NOT NULL, version INTEGER NOT NULL);");
        }
        var bytes = Encoding.UTF8.GetBytes("""{"n":1}""");
        var phases = new Phases();
        var latencies = new List<double>[writers];
        var threads = new Thread[writers];
        var gate = new Lock();
        var shared = sharedConnection ? new SqliteWriter(connectionString, bytes) : null;
        using var ready = new CountdownEvent(writers);
        for (var w = 0; w < writers; w++)
        {
            var index = w;
            latencies[w] = [];
            threads[w] = new Thread(() =>
            {
                using var own = shared is null ? new SqliteWriter(connectionString, bytes) : null;
                ready.Signal();
                for (var i = 0; ; i++)
                {
                    var started = Stopwatch.GetTimestamp();
                    var key = $"w{index:D2}/k{i % 100:D3}";
                    if (own is not null) own.Write(key);
                    else lock (gate) shared!.Write(key);
                    if (!Record(phases, latencies[index], started)) return;
                }
            }) { IsBackground = true, Name = $"sqlite-{index}" };
            threads[w].Start();
        }
        ready.Wait();
        var seconds = phases.Drive(settings.Warmup, settings.DurableDuration);
        foreach (var thread in threads) thread.Join();
        shared?.Dispose();
        SqliteConnection.ClearAllPools();
        Directory.Delete(dir, recursive: true);
        return Summarize(latencies, seconds);
    }

    /// <summary>One SQLite connection with its prepared upsert.</summary>
    private sealed class SqliteWriter : IDisposable
    {
        private readonly SqliteConnection _connection;
        private readonly SqliteCommand _command;
        private readonly SqliteParameter _key;

        public SqliteWriter(string connectionString, byte[] value)
        {
            _connection = new SqliteConnection(connectionString);
            _connection.Open();
            Execute(_connection, "PRAGMA synchronous=FULL; PRAGMA busy_timeout=10000;");
            _command = _connection.CreateCommand();
            _command.CommandText = "INSERT INTO kv(k, v, version) VALUES ($k, $v, 1) ON CONFLICT(k) DO UPDATE SET v = excluded.v, version = version + 1";
            _key = _command.Parameters.Add("$k", SqliteType.Text);
            _command.Parameters.Add("$v", SqliteType.Blob).Value = value;
            _command.Prepare();
        }

        /// <summary>Autocommit: one transaction, one WAL fsync.</summary>
        public void Write(string key)
        {
            _key.Value = key;
            _command.ExecuteNonQuery();
        }

        public void Dispose()
        {
            _command.Dispose();
            _connection.Dispose();
        }
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    /// <summary>Records one acknowledged write if the window is open; false when the writer should stop.</summary>
    private static bool Record(Phases phases, List<double> latencies, long started)
    {
        var phase = phases.Current;
        if (phase == Phases.Stopped) return false;
        if (phase == Phases.Measuring) latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        return true;
    }

    private static RunResult Summarize(List<double>[] latencies, double seconds)
    {
        var all = latencies.SelectMany(l => l).Order().ToArray();
        double Percentile(double p) => all.Length == 0 ? double.NaN : all[Math.Min(all.Length - 1, (int)(p * all.Length))];
        return new RunResult(all.Length / seconds, Percentile(0.50), Percentile(0.99));
    }
}
