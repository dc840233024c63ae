using System.Collections.Concurrent;
using Concord.Coordination.Streams;
using Concord.Engine;

namespace Concord.Tests.Coordination.Streams;

/// <summary>
/// Real concurrency: racing appenders, subscribers that start early, late, or stall. The engine's watch buffer is tiny
/// (16) so slow subscribers are disconnected and must resume from their position without loss or duplicates.
/// </summary>
public abstract class StreamConcurrencyTests : StoreTestBase
{
    private const string Ns = "stress";

    protected override bool UseRealTime => true;

    protected override void Configure(ConcordEngineOptions options) => options.WatchBufferSize = 16;

    protected abstract int Rounds { get; }

    private StoreStreamService NewService() => new(Store, new StreamServiceOptions { PageSize = 8 });

    [Fact]
    public async Task ConcurrentAppenders_ExactExpectedVersion_ExactlyOneWinnerPerVersion()
    {
        var streams = NewService();
        const int appenders = 6;
        var wins = new ConcurrentDictionary<long, string>();
        var refusals = 0;
        await Task.WhenAll(Enumerable.Range(0, appenders).Select(a => Task.Run(async () =>
        {
            for (var i = 0; i < Rounds; i++)
            {
                var version = (await streams.GetStreamAsync(Ns, "contended", Ct))?.Version ?? 0;
                var me = $"{a}/{i}";
                var result = await streams.AppendAsync(Ns, "contended", [EventData.From("Step", new { me })], ExpectedVersion.Exactly(version), null, Ct);
                if (result.IsAppended)
                {
                    Assert.Equal(version + 1, result.Version);
                    Assert.True(wins.TryAdd(result.Version, me), $"version {result.Version} won twice");
                }
                else
                {
                    Assert.Equal(AppendStatus.WrongExpectedVersion, result.Status);
                    Assert.True(result.Version > version, "a refusal must report the newer current version");
                    Interlocked.Increment(ref refusals);
                }
            }
        })));

        var stored = await streams.ReadStreamAsync(Ns, "contended", 1, 10_000, cancellationToken: Ct);
        Assert.Equal(wins.Count, stored.Count);
        Assert.Equal(Enumerable.Range(1, stored.Count).Select(v => (long)v), stored.Select(e => e.Version));
        foreach (var e in stored) Assert.Equal(wins[e.Version], e.Data.GetProperty("me").GetString());
        Assert.Equal(appenders * Rounds, wins.Count + refusals);
        TestContext.Current.SendDiagnosticMessage($"appends won {wins.Count}, refused {refusals}");
    }

    [Fact]
    public async Task RacingAppendersAndSubscribers_EachSubscriberSeesEveryEventOnceInGlobalOrder()
    {
        var streams = NewService();
        const int appenders = 4;
        var total = 0;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cts.CancelAfter(TimeSpan.FromSeconds(90)); // safety net only

        var expectedCount = appenders * Rounds * 3; // each round: 2 events on one stream + 1 outbox event
        var early = Collect(streams.SubscribeAsync(Ns, StreamFilter.All, StreamPosition.Start, cts.Token), expectedCount, stallEvery: 0);
        var stalling = Collect(streams.SubscribeAsync(Ns, StreamFilter.All, StreamPosition.Start, cts.Token), expectedCount, stallEvery: 50);
        var prefixed = Collect(streams.SubscribeAsync(Ns, StreamFilter.ForPrefix("acct/0"), StreamPosition.Start, cts.Token), Rounds * 2, stallEvery: 0);

        var writers = Enumerable.Range(0, appenders).Select(a => Task.Run(async () =>
        {
            for (var i = 0; i < Rounds; i++)
            {
                var r = await streams.AppendAsync(Ns, $"acct/{a}", [EventData.From("A", new { a, i }), EventData.From("B", new { a, i })], ExpectedVersion.Any, null, cts.Token);
                Assert.True(r.IsAppended);
                // Outbox: an event and a state write in one commit.
                var o = await streams.AppendWithAsync(Ns, $"audit/{a}", [EventData.From("Audit", new { a, i })], ExpectedVersion.Any,
                    [TxnOp.PatchKey($"state/{a}", JsonPatch.Create().Increment("/n"))], null, cts.Token);
                Assert.True(o.IsAppended);
                Interlocked.Add(ref total, 3);
            }
        }, cts.Token)).ToList();
        await Task.WhenAll(writers);
        // A subscriber that starts after everything was written catches up from history.
        var late = Collect(streams.SubscribeAsync(Ns, StreamFilter.All, StreamPosition.Start, cts.Token), expectedCount, stallEvery: 0);

        Assert.Equal(expectedCount, total);
        var truth = await streams.ReadAllAsync(Ns, StreamPosition.Start, 10_000, cancellationToken: Ct);
        Assert.Equal(expectedCount, truth.Count);
        Assert.True(truth.Zip(truth.Skip(1)).All(p => p.First.Position < p.Second.Position));
        foreach (var subscriber in new[] { early, stalling, late })
        {
            var seen = await subscriber;
            Assert.Equal(truth.Select(e => (e.Stream, e.Version)), seen.Select(e => (e.Stream, e.Version)));
            Assert.Equal(truth.Select(e => e.Position), seen.Select(e => e.Position));
        }
        var prefixedSeen = await prefixed;
        Assert.Equal(truth.Where(e => e.Stream == "acct/0").Select(e => e.Position), prefixedSeen.Select(e => e.Position));
        for (var a = 0; a < appenders; a++)
            Assert.Equal(Rounds, (await Store.GetAsync(Ns, $"state/{a}", null, Ct))!.Value.GetProperty("n").GetInt32());
    }

    private static async Task<List<RecordedEvent>> Collect(IAsyncEnumerable<RecordedEvent> source, int count, int stallEvery)
    {
        await Task.Yield();
        var list = new List<RecordedEvent>();
        await foreach (var e in source)
        {
            list.Add(e);
            // A stalled reader stops pulling for a while, so the engine's bounded watch buffer overflows.
            if (stallEvery > 0 && list.Count % stallEvery == 0) await Task.Delay(50);
            if (list.Count == count) break;
        }
        return list;
    }

    [Fact]
    public async Task StalledSubscriber_WatchOverflows_ResumesWithoutLossOrDuplicates()
    {
        var streams = NewService();
        await using var subscription = streams.SubscribeAsync(Ns, StreamFilter.All, StreamPosition.Start, Ct).GetAsyncEnumerator(Ct);
        await streams.AppendAsync(Ns, "s", [EventData.From("A", new { n = 0 })], ExpectedVersion.Any, null, Ct);
        Assert.True(await subscription.MoveNextAsync());
        // Not reading while 200 commits happen: far more than the 16-event watch buffer.
        for (var i = 1; i <= 200; i++) await streams.AppendAsync(Ns, "s", [EventData.From("A", new { n = i })], ExpectedVersion.Any, null, Ct);
        var seen = new List<int> { subscription.Current.Data.GetProperty("n").GetInt32() };
        while (seen.Count < 201 && await subscription.MoveNextAsync()) seen.Add(subscription.Current.Data.GetProperty("n").GetInt32());
        Assert.Equal(Enumerable.Range(0, 201), seen);
    }

    [Fact]
    public async Task ConsumerGroupWithDedup_RandomCrashes_EveryEffectOnce()
    {
        var streams = NewService();
        var count = Rounds * 2;
        for (var i = 0; i < count; i++) await streams.AppendAsync(Ns, $"pay/{i % 3}", [EventData.From("Paid", new { i })], ExpectedVersion.Any, null, Ct);
        var random = new Random(7);
        var handled = 0;
        var runs = 0;
        while (Volatile.Read(ref handled) < count && runs < 10_000)
        {
            runs++;
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            try
            {
                await streams.RunConsumerGroupAsync(Ns, "payments", StreamFilter.ForPrefix("pay/"), async (e, ct) =>
                {
                    if (random.NextDouble() < 0.2) throw new InvalidOperationException("crash before the effect");
                    var r = await streams.HandleOnceAsync(Ns, "payments", e, [TxnOp.PatchKey($"paid/{e.DataAs<Paid>()!.I}", JsonPatch.Create().Increment("/times"))], ct);
                    if (r.IsApplied) Interlocked.Increment(ref handled);
                    if (random.NextDouble() < 0.2) throw new InvalidOperationException("crash after the effect, before the checkpoint");
                    if (Volatile.Read(ref handled) == count) await stop.CancelAsync();
                }, new ConsumerGroupOptions { CheckpointEvery = 3 }, stop.Token);
            }
            catch (InvalidOperationException)
            {
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested && !Ct.IsCancellationRequested)
            {
            }
        }
        Assert.Equal(count, handled);
        for (var i = 0; i < count; i++)
            Assert.Equal(1, (await Store.GetAsync(Ns, $"paid/{i}", null, Ct))!.Value.GetProperty("times").GetInt32());
        TestContext.Current.SendDiagnosticMessage($"consumer group runs (restarts after crashes): {runs}");
    }

    private sealed record Paid(int I);
}

public sealed class MemoryStreamConcurrencyTests : StreamConcurrencyTests
{
    protected override TestBackend Backend => TestBackend.Memory;

    protected override int Rounds => 60;
}

public sealed class EmbeddedStreamConcurrencyTests : StreamConcurrencyTests
{
    protected override TestBackend Backend => TestBackend.Embedded;

    protected override int Rounds => 25;
}

public sealed class PostgresStreamConcurrencyTests : StreamConcurrencyTests
{
    protected override TestBackend Backend => TestBackend.Postgres;

    protected override int Rounds => 10;
}
