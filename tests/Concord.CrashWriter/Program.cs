// Crash writer: the child process of the crash-recovery stress test (tests/Concord.Tests/Engine/CrashRecoveryTests.cs).
//
// Opens the embedded engine on a data directory and runs concurrent writers doing a burst of mixed operations.
// After EACH acknowledged operation it writes one line to stdout (unbuffered, one write per line), so the parent
// knows exactly what was acknowledged when it SIGKILLs this process. A line is printed only after the engine
// acknowledged the write, i.e. after its group fsync. Lines (space-separated, JSON values without spaces):
//
//   ready <revision>                                      engine opened (recovery done)
//   init <revision>                                       bank accounts created (first run only)
//   ctr <key> <version> <n> <revision>                    CAS increment of a hot counter: value {"n":n}, n == version
//   new <key> <version> <revision> <json>                 create-only write of a unique key
//   idem <key> <version> <revision> <idemKey> <json>      blind put of a unique key with an idempotency key
//   txn <receipt> <revision> <acctA> <verA> <acctB> <verB> <json>
//                                                         transfer between two accounts + receipt, one revision
//   snap-begin / snap-end <revision>                      explicit SnapshotAsync around it
//   done                                                  the operation cap was reached and the engine closed
//
// Usage: dotnet Concord.CrashWriter.dll <dataDir> <runId> <seed> [writers=6] [snapshotEveryBytes=32768] [maxOps=1000000]
using System.Globalization;
using System.Text;
using System.Text.Json;
using Concord;
using Concord.Engine;

if (args.Length < 3)
{
    await Console.Error.WriteLineAsync("usage: Concord.CrashWriter <dataDir> <runId> <seed> [writers] [snapshotEveryBytes] [maxOps]");
    return 2;
}

var dataDir = args[0];
var runId = int.Parse(args[1], CultureInfo.InvariantCulture);
var seed = int.Parse(args[2], CultureInfo.InvariantCulture);
var writers = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 6;
var snapshotEvery = args.Length > 4 ? long.Parse(args[4], CultureInfo.InvariantCulture) : 32 * 1024;
var maxOps = args.Length > 5 ? int.Parse(args[5], CultureInfo.InvariantCulture) : 1_000_000;

var output = new AckOutput(Console.OpenStandardOutput());
try
{
    await using var engine = await ConcordEngine.OpenAsync(new ConcordEngineOptions { DataDirectory = dataDir, SnapshotEveryBytes = snapshotEvery });
    output.Line($"ready {await engine.GetRevisionAsync()}");
    var setup = new ConcordSession(engine, CrashWorkload.Namespace, "setup");
    var init = await setup.TransactAsync(new TxnRequest
    {
        Compares = [TxnCompare.Absent(CrashWorkload.Account(0))],
        Then = [.. Enumerable.Range(0, CrashWorkload.Accounts).Select(i =>
            TxnOp.Put(CrashWorkload.Account(i), CrashWorkload.Json($$"""{"bal":{{CrashWorkload.InitialBalance}}}"""), Expect.Absent))],
    });
    if (init.Succeeded) output.Line($"init {init.Revision}");

    var perWriter = Math.Max(1, maxOps / writers);
    var tasks = Enumerable.Range(0, writers)
        .Select(w => Task.Run(() => new Writer(engine, output, runId, w, new Random(HashCode.Combine(seed, w, runId))).RunAsync(perWriter)))
        .ToArray();
    await Task.WhenAll(tasks);
}
#pragma warning disable CA1031 // the parent only needs to know the child failed, and why
catch (Exception e)
#pragma warning restore CA1031
{
    await Console.Error.WriteLineAsync("crash writer failed: " + e);
    return 3;
}
output.Line("done");
return 0;

/// <summary>One writer: a seeded mix of operations, each acknowledged line printed after the write returned.</summary>
internal sealed class Writer(ConcordEngine engine, AckOutput output, int runId, int id, Random random)
{
    private readonly ConcordSession _session = new(engine, CrashWorkload.Namespace, $"w{id}");
    private int _seq;

    public async Task RunAsync(int ops)
    {
        for (var i = 0; i < ops; i++)
        {
            var roll = random.Next(100);
            if (roll < 35) await CounterAsync();
            else if (roll < 58) await CreateAsync();
            else if (roll < 78) await IdempotentPutAsync();
            else if (roll < 99) await TransferAsync();
            else await SnapshotAsync();
        }
    }

    private string NextId() => $"{runId}/{id}/{_seq++}";

    private async Task CounterAsync()
    {
        var key = CrashWorkload.Counter(random.Next(CrashWorkload.Counters));
        var current = await _session.GetAsync(key);
        while (true)
        {
            var version = current?.Version ?? 0;
            var write = await _session.PutAsync(key, CrashWorkload.Json($$"""{"n":{{version + 1}}}"""), Expect.Version(version));
            if (write.IsApplied)
            {
                output.Line($"ctr {key} {write.Version} {write.Record!.Value.GetProperty("n").GetInt64()} {write.Revision}");
                return;
            }
            if (write.Conflict != ConflictKind.VersionMismatch) throw new InvalidOperationException("unexpected conflict: " + write);
            current = write.Record;
        }
    }

    private async Task CreateAsync()
    {
        var id = NextId();
        var key = "u/" + id;
        var value = CrashWorkload.UniqueValue(id);
        var write = await _session.PutAsync(key, CrashWorkload.Json(value), Expect.Absent);
        if (!write.IsApplied) throw new InvalidOperationException("unique create failed: " + write);
        output.Line($"new {key} {write.Version} {write.Revision} {value}");
    }

    private async Task IdempotentPutAsync()
    {
        var id = NextId();
        var key = "idem/" + id;
        var value = CrashWorkload.IdempotentValue(id);
        var idemKey = "op-" + id.Replace('/', '-');
        var write = await _session.PutAsync(key, CrashWorkload.Json(value), idempotencyKey: idemKey);
        if (!write.IsApplied || write.Replayed) throw new InvalidOperationException("idempotent put failed: " + write);
        output.Line($"idem {key} {write.Version} {write.Revision} {idemKey} {value}");
        if (random.Next(4) == 0)
        {
            // A client retry: must be answered from the idempotency record, not applied twice.
            var retry = await _session.PutAsync(key, CrashWorkload.Json(value), idempotencyKey: idemKey);
            if (!retry.Replayed || retry.Version != write.Version || retry.Revision != write.Revision)
                throw new InvalidOperationException($"retry was not replayed: {retry} (original {write})");
        }
    }

    private async Task TransferAsync()
    {
        var from = random.Next(CrashWorkload.Accounts);
        var to = (from + 1 + random.Next(CrashWorkload.Accounts - 1)) % CrashWorkload.Accounts;
        var amount = 1 + random.Next(50);
        var receipt = "rcpt/" + NextId();
        var receiptValue = $$"""{"from":{{from}},"to":{{to}},"amt":{{amount}}}""";
        while (true)
        {
            var a = await _session.GetAsync(CrashWorkload.Account(from));
            var b = await _session.GetAsync(CrashWorkload.Account(to));
            if (a is null || b is null) throw new InvalidOperationException("accounts missing");
            var balA = a.Value.GetProperty("bal").GetInt64();
            var balB = b.Value.GetProperty("bal").GetInt64();
            var result = await _session.TransactAsync(new TxnRequest
            {
                Compares = [TxnCompare.Version(a.Key, CompareOp.Equal, a.Version), TxnCompare.Version(b.Key, CompareOp.Equal, b.Version)],
                Then =
                [
                    TxnOp.Put(a.Key, CrashWorkload.Json($$"""{"bal":{{balA - amount}}}"""), Expect.Version(a.Version)),
                    TxnOp.Put(b.Key, CrashWorkload.Json($$"""{"bal":{{balB + amount}}}"""), Expect.Version(b.Version)),
                    TxnOp.Put(receipt, CrashWorkload.Json(receiptValue), Expect.Absent),
                ],
            });
            if (!result.IsApplied) throw new InvalidOperationException("transfer conflicted inside a guarded branch: " + result.Conflict);
            if (!result.Succeeded) continue; // another writer moved one of the accounts: re-read and retry
            output.Line($"txn {receipt} {result.Revision} {a.Key} {result.Results[0].Record!.Version} {b.Key} {result.Results[1].Record!.Version} {receiptValue}");
            return;
        }
    }

    private async Task SnapshotAsync()
    {
        output.Line("snap-begin");
        var revision = await engine.SnapshotAsync();
        output.Line($"snap-end {revision}");
    }
}

/// <summary>Writes whole lines with one unbuffered write each, so a kill never leaves an acknowledged line unwritten in a buffer.</summary>
internal sealed class AckOutput(Stream stdout)
{
    private readonly Lock _gate = new();

    public void Line(string line)
    {
        var bytes = Encoding.UTF8.GetBytes(line + "\n");
        lock (_gate)
        {
            stdout.Write(bytes);
            stdout.Flush();
        }
    }
}

/// <summary>Names and values shared with the verifier (which re-derives them from the printed lines).</summary>
internal static class CrashWorkload
{
    public const string Namespace = "crash";
    public const int Counters = 4;
    public const int Accounts = 5;
    public const long InitialBalance = 1000;

    public static string Counter(int i) => $"ctr/{i}";

    public static string Account(int i) => $"bank/{i}";

    public static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();

    public static string UniqueValue(string id) => $$"""{"id":"{{id}}","kind":"new"}""";

    public static string IdempotentValue(string id) => $$"""{"id":"{{id}}","kind":"idem"}""";
}
