using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using Concord.Client;
using Concord.Coordination.Queues;

namespace Concord.Faults;

/// <summary>
/// The queue workload: tasks enqueued with a dedup id (retried with the same id until acknowledged), leased with a
/// short visibility timeout and acked with effects (increment <c>q/count</c> and <c>q/done/{task}</c>). A task whose
/// consumer dies, or whose ack reply is lost, is leased again after its visibility timeout; the ack's effects commit
/// atomically with the ack, so every task's effects must apply exactly once.
/// </summary>
public sealed partial class FaultRun
{
    private const string Queue = "jobs";
    private static readonly TimeSpan Visibility = TimeSpan.FromSeconds(2);
    private readonly ConcurrentDictionary<string, bool> _enqueued = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _enqueueUnknown = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _acked = new(StringComparer.Ordinal);

    private async Task EnqueueAsync(HttpQueueService queue, string task, CancellationToken ct)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(30))
        {
            try
            {
                await queue.EnqueueAsync(_ns, Queue, JsonSerializer.SerializeToElement(new { t = task }), new EnqueueOptions { DedupId = task, MaxAttempts = 1000 }, ct);
                _enqueued[task] = true;
                Interlocked.Increment(ref _r.Enqueued);
                return;
            }
            catch (Exception e) when (IsFault(e, ct))
            {
                Count(_r.Errors, Kind(e));
                await Task.Delay(200, ct);
            }
        }
        _enqueueUnknown[task] = true;
        Interlocked.Increment(ref _r.EnqueueUnknown);
    }

    /// <summary>Leases one task (if any is ready) and acks it with its effects; false when the queue had nothing ready.</summary>
    private async Task<bool> ConsumeAsync(HttpQueueService queue, string consumer, CancellationToken ct)
    {
        QueueLease? lease;
        try
        {
            lease = (await queue.LeaseAsync(_ns, Queue, consumer, Visibility, TimeSpan.Zero, ct)).Lease;
        }
        catch (Exception e) when (IsFault(e, ct))
        {
            Count(_r.Errors, Kind(e)); // a lease whose reply was lost expires after its visibility timeout
            return true;
        }
        if (lease is null) return false;
        var task = lease.Payload.GetProperty("t").GetString()!;
        IReadOnlyList<TxnOp> effects =
        [
            TxnOp.PatchKey("q/count", JsonPatch.Create().Increment("/n")),
            TxnOp.PatchKey($"q/done/{task}", JsonPatch.Create().Increment("/n")),
        ];
        try
        {
            var result = await queue.AckAsync(lease, effects, ct);
            switch (result.Status)
            {
                case AckStatus.Acked:
                    _acked.AddOrUpdate(task, 1, (_, n) => n + 1);
                    Interlocked.Increment(ref _r.Acks);
                    break;
                case AckStatus.StaleReceipt:
                    // The lease expired and someone else took the task, or an earlier attempt of this ack applied.
                    Interlocked.Increment(ref _r.StaleReceipts);
                    break;
                default:
                    throw new InvalidOperationException($"ack of {task} refused: {result.Status} {result.Message}");
            }
        }
        catch (Exception e) when (IsFault(e, ct))
        {
            Count(_r.Errors, Kind(e));
            Interlocked.Increment(ref _r.AckUnknown);
        }
        return true;
    }

    /// <summary>After the faults: consumers on every node work until nothing is ready, delayed or leased (bounded).</summary>
    private async Task DrainQueueAsync(List<HttpClient> https, CancellationToken ct)
    {
        var queues = https.Select(h => new HttpQueueService(h, new ConcordClientOptions { MaxAttempts = 4, RetryDelay = TimeSpan.FromMilliseconds(150) })).ToList();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            var any = false;
            for (var i = 0; i < queues.Count; i++) any |= await ConsumeAsync(queues[i], $"drain-{i}", ct);
            if (any) continue;
            var stats = await Retry(() => queues[0].GetStatsAsync(_ns, Queue, ct).AsTask(), ct);
            if (stats.Ready + stats.Delayed + stats.Leased == 0) return;
            await Task.Delay(250, ct);
        }
    }

    private async Task CheckQueueAsync(ConcordHttpStore store, CancellationToken ct)
    {
        var count = await Retry(() => store.GetAsync(_ns, "q/count", null, ct).AsTask(), ct);
        var n = count?.Value.GetProperty("n").GetInt64() ?? 0;
        _r.QueueCounter = n;
        var problems = new List<string>();
        var done = new Dictionary<string, long>(StringComparer.Ordinal);
        string? after = null;
        while (true)
        {
            var page = await Retry(() => store.ListAsync(_ns, new ListRequest { Prefix = "q/done/", After = after, Limit = 500 }, ct).AsTask(), ct);
            foreach (var record in page.Records) done[record.Key["q/done/".Length..]] = record.Value.GetProperty("n").GetInt64();
            if (page.Records.Count == 0 || page.NextAfter is null) break;
            after = page.NextAfter;
        }
        foreach (var (task, times) in done.Where(d => d.Value != 1)) problems.Add($"{task} applied {times}×");
        foreach (var task in _enqueued.Keys.Where(t => !done.ContainsKey(t))) problems.Add($"{task} enqueued but never applied");
        foreach (var task in done.Keys.Where(t => !_enqueued.ContainsKey(t) && !_enqueueUnknown.ContainsKey(t))) problems.Add($"{task} applied but never enqueued");
        foreach (var task in _acked.Keys.Where(t => !done.ContainsKey(t))) problems.Add($"{task} acked but its effects are missing");
        foreach (var (task, acks) in _acked.Where(a => a.Value > 1)) problems.Add($"{task} acked {acks}× (two consumers held it)");
        if (n != done.Values.Sum()) problems.Add($"q/count {n} ≠ sum of per-task counts {done.Values.Sum()}");
        _r.Verdicts.Add(new FaultVerdict("exactly-once queue effects", problems.Count == 0,
            $"{_enqueued.Count} enqueued (+{_enqueueUnknown.Count} unresolved), {_acked.Count} acked by the client, {_r.AckUnknown} acks with unknown outcome, {_r.StaleReceipts} stale receipts; q/count {n}, {done.Count} tasks applied"
            + (problems.Count == 0 ? "" : "; " + string.Join("; ", problems.Take(10)))));
    }
}
