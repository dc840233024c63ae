using System.Text.Json;
using Concord.Postgres;
using Npgsql;

namespace Concord.Tests.Postgres;

/// <summary>
/// <see cref="PostgresStoreOptions.IdleInTransactionTimeout"/>: a session that stops mid-transaction while holding the
/// commit lock (a frozen node) is ended by PostgreSQL, so other nodes keep committing (found by the fault suite: without
/// it one SIGSTOPped serve node stalled every node sharing the database).
/// </summary>
public sealed class PostgresSessionTimeoutTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void EffectiveConnectionString_AddsTheTimeout_UnlessTheOptionsNameIt()
    {
        var defaults = new PostgresStoreOptions { ConnectionString = "Host=h;Username=u" };
        Assert.Contains("idle_in_transaction_session_timeout=5000", new NpgsqlConnectionStringBuilder(defaults.EffectiveConnectionString()).Options, StringComparison.Ordinal);

        var own = new PostgresStoreOptions { ConnectionString = "Host=h;Options=-c idle_in_transaction_session_timeout=700 -c statement_timeout=9000" };
        Assert.Equal("-c idle_in_transaction_session_timeout=700 -c statement_timeout=9000", new NpgsqlConnectionStringBuilder(own.EffectiveConnectionString()).Options);

        var off = new PostgresStoreOptions { ConnectionString = "Host=h", IdleInTransactionTimeout = null };
        Assert.True(string.IsNullOrEmpty(new NpgsqlConnectionStringBuilder(off.EffectiveConnectionString()).Options));
    }

    [Fact]
    public async Task Commit_WhileAnotherSessionSitsOnTheCommitLock_ProceedsOnceTheIdleSessionIsEnded()
    {
        Assert.SkipWhen(PostgresStores.Unavailable is not null, PostgresStores.Unavailable ?? "");
        var schema = "t_" + Guid.NewGuid().ToString("N")[..16];
        var options = new PostgresStoreOptions { ConnectionString = PostgresStores.ConnectionString, Schema = schema, IdleInTransactionTimeout = TimeSpan.FromSeconds(1) };
        try
        {
            await using var store = await PostgresStore.OpenAsync(options, Ct);
            await store.PutAsync("t", "k", JsonSerializer.SerializeToElement(1), null, Ct);

            // A "frozen node": a session of the same configuration takes the commit lock and then does nothing.
            await using var frozen = await store.DataSource.OpenConnectionAsync(Ct);
            await using var tx = await frozen.BeginTransactionAsync(Ct);
            await using (var lockMeta = new NpgsqlCommand($"SELECT revision FROM {schema}.meta WHERE id = 1 FOR UPDATE", frozen, tx))
                await lockMeta.ExecuteScalarAsync(Ct);

            // Without the timeout this write waits for the lock for ever (the hang guard below fails the test).
            var write = await store.PutAsync("t", "k", JsonSerializer.SerializeToElement(2), null, Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(60), Ct);
            Assert.True(write.IsApplied, write.ToString());
            Assert.Equal(2, (await store.GetAsync("t", "k", null, Ct))!.Value.GetInt32());

            // The frozen session was ended by PostgreSQL: its transaction cannot continue.
            await Assert.ThrowsAnyAsync<Exception>(async () =>
            {
                await using var next = new NpgsqlCommand("SELECT 1", frozen, tx);
                await next.ExecuteScalarAsync(Ct);
            });
        }
        finally
        {
            await using var conn = new NpgsqlConnection(PostgresStores.ConnectionString);
            await conn.OpenAsync(Ct);
            await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS {schema} CASCADE", conn);
            await drop.ExecuteNonQueryAsync(Ct);
        }
    }
}
