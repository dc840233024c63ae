using System.Text.Json;
using Concord.Postgres;
using Npgsql;

namespace Concord.Tests.Postgres;

/// <summary>
/// Group commit when PostgreSQL refuses one statement of a batch (bad data, a constraint, a size limit): the whole
/// transaction rolls back, so the batch is split and every request runs again alone — the refused request gets the
/// error, the others commit, and the revisions stay consecutive.
/// </summary>
public sealed class PostgresBatchRefusalTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Batch_OneWriteRefusedByPostgres_OthersCommitAloneAndOnlyItFails()
    {
        Assert.SkipWhen(PostgresStores.Unavailable is not null, PostgresStores.Unavailable ?? "");
        var schema = "t_" + Guid.NewGuid().ToString("N")[..16];
        var options = new PostgresStoreOptions { ConnectionString = PostgresStores.ConnectionString, Schema = schema };
        try
        {
            await using var store = await PostgresStore.OpenAsync(options, Ct);
            // A trigger refuses the key "poison" with SQLSTATE 22023 (invalid_parameter_value) and counts its refusals in a
            // sequence (sequences are not rolled back): two refusals prove the request was refused inside a batch, then alone.
            await using (var conn = await store.DataSource.OpenConnectionAsync(Ct))
            await using (var ddl = new NpgsqlCommand($"""
                CREATE SEQUENCE {schema}.poison_hits;
                CREATE FUNCTION {schema}.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                  IF NEW.key = 'poison' THEN
                    PERFORM nextval('{schema}.poison_hits');
                    RAISE EXCEPTION 'poison is refused' USING ERRCODE = '22023';
                  END IF;
                  RETURN NEW;
                END $$;
                CREATE TRIGGER refuse_poison BEFORE INSERT OR UPDATE ON {schema}.kv FOR EACH ROW EXECUTE FUNCTION {schema}.refuse_poison();
                """, conn))
                await ddl.ExecuteNonQueryAsync(Ct);
            var start = await store.GetRevisionAsync(Ct);

            // Hold the commit lock so the writes below queue up behind the first one and form one batch.
            await using var blocker = await store.DataSource.OpenConnectionAsync(Ct);
            await using var tx = await blocker.BeginTransactionAsync(Ct);
            await using (var lockMeta = new NpgsqlCommand($"SELECT revision FROM {schema}.meta WHERE id = 1 FOR UPDATE", blocker, tx))
                await lockMeta.ExecuteScalarAsync(Ct);
            var first = store.PutAsync("t", "first", JsonSerializer.SerializeToElement(0), null, Ct).AsTask();
            var keys = Enumerable.Range(0, 9).Select(i => $"k{i}").Append("poison").OrderBy(k => k == "poison" ? 4 : 0).ToArray();
            var writes = keys.Select(k => store.PutAsync("t", k, JsonSerializer.SerializeToElement(k), null, Ct).AsTask()).ToArray();
            await Task.Delay(200, Ct); // let every write reach the commit queue behind the blocked first batch
            await tx.CommitAsync(Ct);

            Assert.True((await first.WaitAsync(TimeSpan.FromSeconds(60), Ct)).IsApplied);
            for (var i = 0; i < keys.Length; i++)
            {
                if (keys[i] == "poison")
                {
                    var error = await Assert.ThrowsAsync<StoreUnavailableException>(() => writes[i].WaitAsync(TimeSpan.FromSeconds(60), Ct));
                    Assert.Equal("22023", Assert.IsType<PostgresException>(error.InnerException).SqlState);
                }
                else Assert.True((await writes[i].WaitAsync(TimeSpan.FromSeconds(60), Ct)).IsApplied, keys[i]);
            }

            await using (var hits = store.DataSource.CreateCommand($"SELECT last_value FROM {schema}.poison_hits"))
                Assert.Equal(2L, (long)(await hits.ExecuteScalarAsync(Ct))!);
            Assert.Null(await store.GetAsync("t", "poison", null, Ct));
            foreach (var k in keys.Where(k => k != "poison")) Assert.Equal(k, (await store.GetAsync("t", k, null, Ct))!.Value.GetString());
            // One revision per applied write, no gap where the refused one was.
            Assert.Equal(start + 1 + keys.Length - 1, await store.GetRevisionAsync(Ct));
        }
        finally
        {
            await using var conn = new NpgsqlConnection(PostgresStores.ConnectionString);
            await conn.OpenAsync(CancellationToken.None);
            await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS {schema} CASCADE", conn);
            await drop.ExecuteNonQueryAsync(CancellationToken.None);
        }
    }
}
