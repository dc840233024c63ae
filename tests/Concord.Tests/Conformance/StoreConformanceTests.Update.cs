using System.Text.Json;
using Concord.Tests.Conformance.Support;

namespace Concord.Tests.Conformance;

/// <summary><see cref="ConcordSession.UpdateAsync(string, Func{ConcordRecord?, CancellationToken, ValueTask{JsonElement?}}, UpdateOptions?, CancellationToken)"/>: read → compute → CAS → retry.</summary>
public abstract partial class StoreConformanceTests
{
    private static readonly RetryOptions ImmediateRetry = new() { MaxAttempts = 10, BaseDelay = TimeSpan.Zero, MaxDelay = TimeSpan.Zero };

    public sealed record Account(string Status, int Fees);

    [Fact]
    public async Task Update_AbsentKey_ComputeSeesNullAndCreatesVersion1()
    {
        var (_, s) = await OpenAsync();
        var calls = 0;
        ConcordRecord? seen = null;

        var result = await s.UpdateAsync("k", (record, _) =>
        {
            calls++;
            seen = record;
            return ValueTask.FromResult<JsonElement?>(N(1));
        }, cancellationToken: Ct);

        Assert.Equal(1, calls);
        Assert.Null(seen);
        Assert.True(result.IsApplied);
        Assert.Equal(1, result.Attempts);
        Assert.Equal(1, result.Record!.Version);
    }

    [Fact]
    public async Task Update_Typed_MapsTheCurrentValue()
    {
        var (_, s) = await OpenAsync();
        await s.UpdateAsync<Account>("acct", a => a ?? new Account("new", 0), cancellationToken: Ct);
        var result = await s.UpdateAsync<Account>("acct", a => a! with { Fees = a.Fees + 5 }, cancellationToken: Ct);

        Assert.True(result.IsApplied);
        Assert.Equal(new Account("new", 5), await s.GetValueAsync<Account>("acct", Ct));
    }

    [Fact]
    public async Task Update_Conflict_RetriesWithTheConflictRecordWithoutAnotherRead()
    {
        var store = await OpenStoreAsync();
        var counting = new CountingStore(store);
        var s = Session(counting, "updater", options: new SessionOptions { Retry = ImmediateRetry });
        var other = Session(store, "other");
        await other.PutAsync("k", N(1), cancellationToken: Ct);
        var seenVersions = new List<long>();

        var result = await s.UpdateAsync("k", async (record, ct) =>
        {
            seenVersions.Add(record!.Version);
            if (seenVersions.Count == 1) await other.PutAsync("k", N(50), Expect.Version(1), cancellationToken: ct);
            return N(NOf(record) + 1);
        }, new UpdateOptions { IdempotencyKey = "update-op-1" }, Ct);

        Assert.True(result.IsApplied);
        Assert.Equal(2, result.Attempts);
        Assert.Equal([1L, 2L], seenVersions);
        Assert.Equal(1, counting.Gets);
        Assert.Equal(2, counting.Puts);
        Assert.Equal(3, result.Record!.Version);
        Assert.Equal("updater", result.Record.Writer);
        Assert.Equal(51, NOf(await other.GetAsync("k", Ct)));
    }

    [Fact]
    public async Task Update_ComputeReturnsNull_WritesNothing()
    {
        var (store, s) = await OpenAsync();
        await s.PutAsync("k", N(1), cancellationToken: Ct);
        var before = await CaptureAsync(store);

        var result = await s.UpdateAsync("k", (_, _) => ValueTask.FromResult<JsonElement?>(null), cancellationToken: Ct);

        Assert.False(result.IsApplied);
        Assert.Null(result.Write);
        Assert.Equal(1, result.Attempts);
        Assert.Equal(before, await CaptureAsync(store));
    }

    [Fact]
    public async Task Update_ConflictOnEveryAttempt_StopsAtTheLimitWithTheLastConflict()
    {
        var store = await OpenStoreAsync();
        var s = Session(store, "updater", options: new SessionOptions { Retry = ImmediateRetry with { MaxAttempts = 4 } });
        var other = Session(store, "other");
        await other.PutAsync("k", N(0), cancellationToken: Ct);
        var computes = 0;

        var result = await s.UpdateAsync("k", async (record, ct) =>
        {
            computes++;
            await other.PatchAsync("k", JsonPatch.Create().Increment("/n", 100), cancellationToken: ct);
            return N(NOf(record) + 1);
        }, cancellationToken: Ct);

        Assert.False(result.IsApplied);
        Assert.Equal(4, result.Attempts);
        Assert.Equal(4, computes);
        Assert.Equal(ConflictKind.VersionMismatch, result.Write!.Conflict);
        Assert.Equal(400, NOf(result.Record));
        Assert.Equal(400, NOf(await s.GetAsync("k", Ct)));
    }

    [Fact]
    public async Task Update_WithIdempotencyKey_SecondCallReplaysTheFirst()
    {
        var (store, s) = await OpenAsync();
        static ValueTask<JsonElement?> Increment(ConcordRecord? r, CancellationToken _) => ValueTask.FromResult<JsonElement?>(N((r is null ? 0 : NOf(r)) + 1));

        var first = await s.UpdateAsync("k", Increment, new UpdateOptions { IdempotencyKey = "inc-1" }, Ct);
        var revision = await store.GetRevisionAsync(Ct);
        var retry = await s.UpdateAsync("k", Increment, new UpdateOptions { IdempotencyKey = "inc-1" }, Ct);

        Assert.True(first.IsApplied);
        Assert.True(retry.IsApplied);
        Assert.True(retry.Write!.Replayed);
        Assert.Equal(first.Record!.Version, retry.Record!.Version);
        Assert.Equal(first.Write!.Revision, retry.Write.Revision);
        Assert.Equal(revision, await store.GetRevisionAsync(Ct));
        Assert.Equal(1, NOf(await s.GetAsync("k", Ct)));
    }

    [Fact]
    public async Task Update_Backoff_IsCappedFullJitterAndReproducibleFromTheSeed()
    {
        var retry = new RetryOptions { MaxAttempts = 7, BaseDelay = TimeSpan.FromMilliseconds(100), MaxDelay = TimeSpan.FromMilliseconds(500) };

        var run1 = await RunAlwaysConflictingUpdateAsync(retry, seed: 7);
        var run2 = await RunAlwaysConflictingUpdateAsync(retry, seed: 7);
        var run3 = await RunAlwaysConflictingUpdateAsync(retry, seed: 8);

        Assert.Equal(retry.MaxAttempts - 1, run1.Count);
        Assert.Equal(run1, run2);
        Assert.NotEqual(run1, run3);
        var jitter = new SeededRandomizer(7);
        for (var i = 0; i < run1.Count; i++)
        {
            // Before attempt i+2: uniform in [0, min(base * 2^i, max)).
            var cap = Math.Min(100 * Math.Pow(2, i), 500);
            Assert.InRange(run1[i].TotalMilliseconds, 0, cap);
            // Timers have millisecond resolution, so the waited delay is the computed one truncated to a millisecond.
            var expected = cap * jitter.NextDouble();
            Assert.InRange(run1[i].TotalMilliseconds, Math.Floor(expected), expected);
        }
    }

    /// <summary>Runs an update that conflicts on every attempt under a fake client clock; returns the backoff delays it waited.</summary>
    private async Task<List<TimeSpan>> RunAlwaysConflictingUpdateAsync(RetryOptions retry, int seed)
    {
        var store = await OpenStoreAsync();
        var clock = new RecordingTimeProvider(Epoch);
        var s = Session(store, "updater", options: new SessionOptions { TimeProvider = clock, Randomizer = new SeededRandomizer(seed), Retry = retry });
        var other = Session(store, "other");
        await other.PutAsync("k", N(0), cancellationToken: Ct);
        var computes = 0;

        var update = s.UpdateAsync("k", async (record, ct) =>
        {
            Interlocked.Increment(ref computes);
            await other.PatchAsync("k", JsonPatch.Create().Increment("/n"), cancellationToken: ct);
            return N(NOf(record) + 1);
        }, cancellationToken: Ct).AsTask();

        var delays = new List<TimeSpan>();
        for (var attempt = 2; attempt <= retry.MaxAttempts; attempt++)
        {
            await clock.WaitForTimerAsync(Ct);
            // The next attempt waits for the fake clock: it cannot have run yet.
            Assert.Equal(attempt - 1, Volatile.Read(ref computes));
            Assert.True(clock.DueTimes.TryDequeue(out var due));
            delays.Add(due);
            clock.Advance(due);
        }
        var result = await update;
        Assert.False(result.IsApplied);
        Assert.Equal(retry.MaxAttempts, result.Attempts);
        Assert.Equal(retry.MaxAttempts, computes);
        return delays;
    }
}
