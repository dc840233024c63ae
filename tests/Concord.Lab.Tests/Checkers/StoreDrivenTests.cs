using Concord.Lab.Checkers;
using Concord.Lab.Checkers.Isolation;
using Concord.Lab.Checkers.Linearizability;
using Concord.Lab.History;
using Concord.Lab.Tests.Support;

namespace Concord.Lab.Tests.Checkers;

/// <summary>Histories recorded from in-test stores, correct and deliberately broken, through <see cref="HistoryRecorder"/>.</summary>
public sealed class StoreDrivenTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task LockedStore_DrivenByConcurrentTasks_IsLinearizable()
    {
        var store = new LockedRegisterStore();
        var recorder = new HistoryRecorder(TimeProvider.System, new HistoryMeta { Workload = "locked-store", Model = "cas-register" });
        const int Workers = 8;

        await Task.WhenAll(Enumerable.Range(0, Workers).Select(worker => Task.Run(async () =>
        {
            var random = new Random(worker);
            for (var i = 0; i < 250; i++)
            {
                var key = $"acct/{random.Next(4)}";
                switch (random.Next(3))
                {
                    case 0:
                        var value = (worker * 1000) + i;
                        var write = recorder.Invoke(worker, Functions.Write, key, HistoryValue.Of(value), $"agent-{worker}");
                        write.Ok(version: store.Write(key, value));
                        break;
                    case 1:
                        var read = recorder.Invoke(worker, Functions.Read, key, agent: $"agent-{worker}");
                        var (current, version) = store.Read(key);
                        read.Ok(current is null ? HistoryValue.Null : HistoryValue.Of(current.Value), version);
                        break;
                    default:
                        var (seen, _) = store.Read(key);
                        var next = (worker * 1000) + i;
                        var cas = recorder.Invoke(worker, Functions.Cas, key, HistoryValue.Of(new long?[] { seen, next }), $"agent-{worker}");
                        if (store.Cas(key, seen, next) is { } created)
                        {
                            cas.Ok(version: created);
                        }
                        else
                        {
                            cas.Fail("conflict");
                        }

                        break;
                }

                if (i % 8 == 0)
                {
                    await Task.Yield();
                }
            }
        }, Token)));

        var history = HistoryReader.Parse(HistoryWriter.Format(recorder.ToHistory()));
        var result = LinearizabilityChecker.Check(history, new LinearizabilityOptions { Model = LinearizabilityModel.CasRegister }, Token);

        Assert.True(result.Verdict == Verdict.Valid, result.Explanation);
        Assert.Equal(4, result.Keys.Count);
    }

    [Fact]
    public void LaggingReplica_StaleReads_AreNotLinearizable()
    {
        var store = new LaggingReplicaStore(refreshEvery: 10);
        var recorder = new HistoryRecorder(TimeProvider.System);
        for (var i = 1; i <= 30; i++)
        {
            var write = recorder.Invoke(1, Functions.Write, "x", HistoryValue.Of(i), "writer");
            store.Write("x", i);
            write.Ok();
            var read = recorder.Invoke(2, Functions.Read, "x", agent: "reader");
            read.Ok(store.Read("x") is { } seen ? HistoryValue.Of(seen) : HistoryValue.Null);
        }

        var result = LinearizabilityChecker.Check(recorder.ToHistory(), new LinearizabilityOptions { Model = LinearizabilityModel.Register }, Token);

        Assert.Equal(Verdict.Invalid, result.Verdict);
        var key = Assert.Single(result.Keys);
        Assert.Equal(3L, key.StuckOperation); // the very first read returned null after 1 was written
        Assert.Contains("process 2 (agent reader) read null from x", key.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RacyCas_BothCallersSucceed_IsNotLinearizable()
    {
        var store = new RacyCasStore(new Rendezvous(2));
        var recorder = new HistoryRecorder(TimeProvider.System);
        store.Write(0);
        recorder.Invoke(0, Functions.Write, "x", HistoryValue.Of(0)).Ok();

        async Task Agent(int process, string agent, long value)
        {
            var op = recorder.Invoke(process, Functions.Cas, "x", HistoryValue.List(0, value), agent);
            if (await store.CasAsync(0, value))
            {
                op.Ok();
            }
            else
            {
                op.Fail();
            }
        }

        await Task.WhenAll(Task.Run(() => Agent(1, "fees", 4), Token), Task.Run(() => Agent(2, "compliance", 5), Token));
        var result = LinearizabilityChecker.Check(recorder.ToHistory(), new LinearizabilityOptions { Model = LinearizabilityModel.CasRegister }, Token);

        Assert.Equal(Verdict.Invalid, result.Verdict);
        Assert.Equal(3, result.Keys[0].Window.Count);
    }

    [Fact]
    public async Task RacyQueue_DuplicateDequeue_IsNotLinearizable()
    {
        var queue = new RacyQueue(new Rendezvous(2));
        var recorder = new HistoryRecorder(TimeProvider.System);
        foreach (var job in new[] { "job-1", "job-2" })
        {
            var op = recorder.Invoke(0, Functions.Enqueue, "jobs", HistoryValue.Of(job), "producer");
            queue.Enqueue(job);
            op.Ok();
        }

        async Task Worker(int process)
        {
            var op = recorder.Invoke(process, Functions.Dequeue, "jobs", agent: $"worker-{process}");
            var job = await queue.DequeueAsync();
            op.Ok(job is null ? HistoryValue.Null : HistoryValue.Of(job));
        }

        await Task.WhenAll(Task.Run(() => Worker(1), Token), Task.Run(() => Worker(2), Token));
        var result = LinearizabilityChecker.Check(recorder.ToHistory(), new LinearizabilityOptions { Model = LinearizabilityModel.Queue }, Token);

        Assert.Equal(Verdict.Invalid, result.Verdict);
        Assert.Contains("duplicate dequeue", result.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TxnStore_DrivenByConcurrentTasks_IsStrictSerializable()
    {
        var store = new TxnStore();
        var recorder = new HistoryRecorder(TimeProvider.System);
        var nextElement = 0L;

        await Task.WhenAll(Enumerable.Range(0, 6).Select(worker => Task.Run(async () =>
        {
            var random = new Random(100 + worker);
            for (var i = 0; i < 150; i++)
            {
                var ops = new List<MicroOp>();
                for (var m = random.Next(1, 4); m > 0; m--)
                {
                    var pick = random.Next(4);
                    ops.Add(pick switch
                    {
                        0 => MicroOp.Read($"list/{random.Next(3)}"),
                        1 => MicroOp.Append($"list/{random.Next(3)}", HistoryValue.Of(Interlocked.Increment(ref nextElement))),
                        2 => MicroOp.Read($"reg/{random.Next(3)}"),
                        _ => MicroOp.Write($"reg/{random.Next(3)}", HistoryValue.Of(Interlocked.Increment(ref nextElement))),
                    });
                }

                var txn = recorder.Invoke(worker, Functions.Txn, value: MicroOp.ToJson(ops), agent: $"agent-{worker}");
                txn.Ok(MicroOp.ToJson(await store.RunAsync(ops)));
            }
        }, Token)));

        var history = recorder.ToHistory();
        var report = IsolationChecker.Check(history, new IsolationOptions { RealTime = true, ProcessOrder = true }, Token);

        Assert.True(report.Verdict == Verdict.Valid, report.Explanation);
        Assert.Equal("mixed", report.Workload);
        Assert.Equal(900, report.TransactionCount);
        Assert.Empty(report.Notes);
    }

    [Fact]
    public async Task TxnStore_BlindReadModifyWrite_LosesAnUpdate()
    {
        var store = new TxnStore();
        var recorder = new HistoryRecorder(TimeProvider.System);
        var seed = recorder.Invoke(0, Functions.Txn, value: MicroOp.ToJson([MicroOp.Write("acct/42", HistoryValue.Of(100))]), agent: "status");
        seed.Ok(MicroOp.ToJson(await store.RunAsync([MicroOp.Write("acct/42", HistoryValue.Of(100))])));
        var window = new Rendezvous(2);

        async Task Agent(int process, string agent, long delta)
        {
            var ops = MicroOp.ToJson([MicroOp.Read("acct/42"), MicroOp.Write("acct/42", HistoryValue.Of(100 + delta))]);
            var txn = recorder.Invoke(process, Functions.Txn, value: ops, agent: agent);
            txn.Ok(MicroOp.ToJson(await store.ReadThenBlindWriteAsync("acct/42", v => v + delta, window)));
        }

        await Task.WhenAll(Task.Run(() => Agent(1, "fees", -5), Token), Task.Run(() => Agent(2, "compliance", 7), Token));
        var report = IsolationChecker.Check(recorder.ToHistory(), cancellationToken: Token);

        Assert.Equal(Verdict.Invalid, report.Verdict);
        var lost = Assert.Single(report.Anomalies, a => a.Type == AnomalyType.LostUpdate);
        Assert.Contains("both read version 1 of acct/42 and both wrote it", lost.Explanation, StringComparison.Ordinal);
        Assert.Contains(report.Anomalies, a => a.Type == AnomalyType.GSingle);
    }

    [Fact]
    public async Task TxnStore_ExposedUncommittedWrite_IsADirtyRead()
    {
        var store = new TxnStore();
        var recorder = new HistoryRecorder(TimeProvider.System);
        var writer = recorder.Invoke(1, Functions.Txn, value: MicroOp.ToJson([MicroOp.Write("acct/42", HistoryValue.Of(666))]), agent: "fees");
        await store.WriteThenAbortAsync("acct/42", 666, async () =>
        {
            var reader = recorder.Invoke(2, Functions.Txn, value: MicroOp.ToJson([MicroOp.Read("acct/42")]), agent: "compliance");
            reader.Ok(MicroOp.ToJson(await store.RunAsync([MicroOp.Read("acct/42")])));
        });
        writer.Fail("aborted");

        var report = IsolationChecker.Check(recorder.ToHistory(), cancellationToken: Token);

        var dirty = Assert.Single(report.Anomalies);
        Assert.Equal(AnomalyType.G1a, dirty.Type);
        Assert.Contains("T2 (compliance) read 666 from acct/42, written by T3 (fees), a transaction that failed", dirty.Explanation, StringComparison.Ordinal);
    }
}
