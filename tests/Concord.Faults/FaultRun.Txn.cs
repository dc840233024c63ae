using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Concord.Client;
using Concord.Lab.Checkers;
using Concord.Lab.Checkers.Isolation;
using Concord.Lab.History;

namespace Concord.Faults;

/// <summary>The list-append transaction workload, checked by the lab's isolation checker (Elle's list-append).</summary>
public sealed partial class FaultRun
{
    private long _nextElement;

    /// <summary>
    /// One multi-key transaction through <c>POST /v1/ns/{ns}/txn</c>: reads of up to two lists, then appends of fresh
    /// elements to up to two lists (reads first: an etcd-style transaction reads its snapshot, not its own writes).
    /// A transaction with appends is retried with the same idempotency key until its outcome is known; if it never is,
    /// it is recorded <c>info</c> and false is returned (the process id must not be reused).
    /// </summary>
    private async Task<bool> TxnAsync(ConcordHttpStore store, Random random, int process, int client, CancellationToken ct)
    {
        var reads = Pick(random, random.Next(3));
        var appends = Pick(random, reads.Count == 0 ? 1 + random.Next(2) : random.Next(3));
        var elements = appends.ToDictionary(k => k, _ => Interlocked.Increment(ref _nextElement), StringComparer.Ordinal);
        var intent = reads.Select(k => MicroOp.Read(k)).Concat(appends.Select(k => MicroOp.Append(k, HistoryValue.Of(elements[k])))).ToList();
        var then = reads.Select(TxnOp.Get).Concat(appends.Select(k => TxnOp.PatchKey(k, JsonPatch.Create().Append("/l", JsonValue.Create(elements[k]))))).ToList();
        var idempotencyKey = appends.Count > 0 ? "txn-" + Guid.NewGuid().ToString("N") : null;
        using var op = _txnRecorder.Invoke(process, Functions.Txn, value: MicroOp.ToJson(intent), agent: $"c{client}");
        var deadline = Stopwatch.StartNew();
        string? lastError = null;
        while (deadline.Elapsed < TimeSpan.FromSeconds(15))
        {
            try
            {
                var result = await store.TransactAsync(_ns, new TxnRequest { Then = then }, new WriteOptions { IdempotencyKey = idempotencyKey, Agent = $"c{client}" }, ct);
                if (!result.IsApplied)
                {
                    op.Fail(result.Conflict?.Conflict.ToString());
                    Interlocked.Increment(ref _r.TxnFail);
                    return true;
                }
                var done = new List<MicroOp>(intent.Count);
                for (var i = 0; i < then.Count; i++)
                {
                    var record = result.Results[i].Record;
                    done.Add(then[i].Kind == TxnOpKind.Get
                        ? MicroOp.Read(then[i].Key, record is null ? HistoryValue.List() : ListOf(record.Value), record?.Version ?? 0)
                        : MicroOp.Append(then[i].Key, HistoryValue.Of(elements[then[i].Key]), record?.Version));
                }
                op.Ok(MicroOp.ToJson(done));
                Interlocked.Increment(ref _r.TxnOk);
                return true;
            }
            catch (Exception e) when (IsFault(e, ct))
            {
                Count(_r.Errors, Kind(e));
                lastError = e.Message;
                if (appends.Count == 0)
                {
                    op.Fail(e.Message); // a read-only transaction has no effect
                    Interlocked.Increment(ref _r.TxnFail);
                    return true;
                }
                await Task.Delay(200, ct);
            }
        }
        op.Info(lastError);
        Interlocked.Increment(ref _r.TxnInfo);
        return false;
    }

    private static List<string> Pick(Random random, int count)
    {
        var keys = new List<string>();
        while (keys.Count < count)
        {
            var key = "l/" + random.Next(ListKeys);
            if (!keys.Contains(key)) keys.Add(key);
        }
        return keys;
    }

    private static JsonElement ListOf(JsonElement value) =>
        value.ValueKind == JsonValueKind.Object && value.TryGetProperty("l", out var list) ? list : HistoryValue.List();

    private void CheckTransactions(CancellationToken ct)
    {
        var history = _txnRecorder.ToHistory();
        if (_o.HistoryPath is { } path) HistoryWriter.WriteFile(history, Path.ChangeExtension(path, null) + "-txn.jsonl");
        var serializable = IsolationChecker.Check(history, new IsolationOptions { Timeout = TimeSpan.FromSeconds(60) }, ct);
        _r.Verdicts.Add(new FaultVerdict("serializable transactions", serializable.Verdict == Verdict.Valid, Summary(serializable)));
        var strict = IsolationChecker.Check(history, new IsolationOptions { RealTime = true, Timeout = TimeSpan.FromSeconds(60) }, ct);
        _r.Verdicts.Add(new FaultVerdict("strict serializable transactions (real-time order)", strict.Verdict == Verdict.Valid, Summary(strict)));
        if (serializable.Verdict != Verdict.Valid || strict.Verdict != Verdict.Valid) _r.Anomaly ??= strict.Explanation;
    }

    private string Summary(IsolationReport report)
    {
        var text = $"{report.Verdict}: {report.TransactionCount} txns ({_r.TxnOk} ok, {_r.TxnFail} failed, {_r.TxnInfo} unknown), {report.Workload}";
        if (report.Verdict == Verdict.Valid) return text;
        var kinds = report.Anomalies.GroupBy(a => a.Name).Select(g => $"{g.Count()}× {g.Key}");
        return text + " — " + string.Join(", ", kinds) + (report.Anomalies.FirstOrDefault() is { } first ? $"; first: {first.Explanation}" : "")
            + (report.Notes.Count > 0 ? " — " + string.Join(" ", report.Notes) : "");
    }
}
