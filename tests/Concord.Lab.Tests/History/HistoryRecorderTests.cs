using Concord.Lab.History;
using Microsoft.Extensions.Time.Testing;

namespace Concord.Lab.Tests.History;

public sealed class HistoryRecorderTests
{
    [Fact]
    public void Invoke_ThenOk_RecordsBothEventsWithNanosecondTimes()
    {
        var time = new FakeTimeProvider();
        var recorder = new HistoryRecorder(time, new HistoryMeta { Seed = "s" });

        time.Advance(TimeSpan.FromMilliseconds(2));
        var op = recorder.Invoke(3, Functions.Cas, "acct/42", HistoryValue.List(3, 4), agent: "fees");
        time.Advance(TimeSpan.FromMicroseconds(1.5));
        op.Ok(version: 4, revision: 9);

        var history = recorder.ToHistory();
        Assert.Equal("s", history.Meta.Seed);
        Assert.Equal(2, history.Operations.Count);
        var (invoke, ok) = (history.Operations[0], history.Operations[1]);
        Assert.Equal((0L, 2_000_000L, OperationType.Invoke), (invoke.Index, invoke.Time, invoke.Type));
        Assert.Equal((1L, 2_001_500L, OperationType.Ok, 4L, 9L), (ok.Index, ok.Time, ok.Type, ok.Version, ok.Revision));
        Assert.Equal("[3,4]", ok.Value.GetRawText());
        Assert.Equal(("fees", "acct/42"), (ok.Agent, ok.Key));
    }

    [Fact]
    public void Invoke_SameProcessTwice_Throws()
    {
        var recorder = new HistoryRecorder(new FakeTimeProvider());
        _ = recorder.Invoke(1, Functions.Read, "x");

        Assert.Throws<InvalidOperationException>(() => recorder.Invoke(1, Functions.Read, "y"));
    }

    [Fact]
    public void Complete_Twice_Throws()
    {
        var recorder = new HistoryRecorder(new FakeTimeProvider());
        var op = recorder.Invoke(1, Functions.Read, "x");
        op.Ok(HistoryValue.Null);

        Assert.Throws<InvalidOperationException>(() => op.Fail());
        Assert.Equal(2, recorder.Count);
    }

    [Fact]
    public void Dispose_WithoutCompletion_RecordsInfo()
    {
        var recorder = new HistoryRecorder(new FakeTimeProvider());
        try
        {
            using var op = recorder.Invoke(1, Functions.Write, "x", HistoryValue.Of(5));
            throw new TimeoutException("reply lost");
        }
        catch (TimeoutException)
        {
        }

        var last = recorder.ToHistory().Operations[^1];
        Assert.Equal(OperationType.Info, last.Type);
        Assert.Equal("5", last.Value.GetRawText());
    }

    [Fact]
    public void Dispose_AfterCompletion_RecordsNothingMore()
    {
        var recorder = new HistoryRecorder(new FakeTimeProvider());
        using (var op = recorder.Invoke(1, Functions.Write, "x", HistoryValue.Of(5)))
        {
            op.Fail("conflict");
        }

        Assert.Equal(2, recorder.Count);
        Assert.Equal("conflict", recorder.ToHistory().Operations[1].Error);
    }

    [Fact]
    public async Task Invoke_FromManyConcurrentTasks_ProducesAWellFormedHistory()
    {
        var recorder = new HistoryRecorder(TimeProvider.System);
        const int Workers = 8;
        const int PerWorker = 400;

        await Task.WhenAll(Enumerable.Range(0, Workers).Select(worker => Task.Run(async () =>
        {
            for (var i = 0; i < PerWorker; i++)
            {
                var op = recorder.Invoke(worker, Functions.Write, $"k{i % 7}", HistoryValue.Of(i));
                if (i % 16 == 0)
                {
                    await Task.Yield();
                }

                if (i % 5 == 0)
                {
                    op.Info();
                }
                else
                {
                    op.Ok();
                }
            }
        }, TestContext.Current.CancellationToken)));

        var history = recorder.ToHistory();
        Assert.Equal(Workers * PerWorker * 2, history.Operations.Count);
        Assert.Equal(Enumerable.Range(0, history.Operations.Count).Select(i => (long)i), history.Operations.Select(o => o.Index));
        Assert.True(history.Operations.Zip(history.Operations.Skip(1)).All(p => p.First.Time <= p.Second.Time), "times follow indices");

        // Revalidate through the public constructor, and through a write/read round trip.
        var revalidated = new OperationHistory(history.Meta, history.Operations);
        var reread = HistoryReader.Parse(HistoryWriter.Format(revalidated));
        Assert.Equal(history.Operations.Count, reread.Operations.Count);
    }
}
