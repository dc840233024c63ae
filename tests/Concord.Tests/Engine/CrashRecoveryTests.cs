using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Concord.Engine;

namespace Concord.Tests.Engine;

/// <summary>
/// Kills a child process (tests/Concord.CrashWriter) in the middle of a write burst, again and again on the same data
/// directory, and after each kill recovers in-process and checks that every write the child saw acknowledged is there,
/// that idempotency records survived, and that no unacknowledged half-commit breaks an invariant.
/// </summary>
/// <remarks>
/// Randomness is only in timing (when the kill lands) and comes from a fixed seed; every check is exact.
/// Some cycles also simulate a power loss after the kill: bytes past the last acknowledged frame of the newest
/// segment are cut or garbled, as a lost page cache would leave them (acknowledged frames were fsynced, so they stay).
/// </remarks>
[Trait("Category", "Stress")]
public sealed class CrashRecoveryTests
{
    private const int Cycles = 30;
    private const int Seed = 20_261_128;
    private const int Writers = 6;
    private const long SnapshotEveryBytes = 32 * 1024;

    [Fact]
    public async Task KillDuringWriteBurst_RepeatedOnOneDirectory_EveryAcknowledgedWriteSurvives()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDataDirectory();
        var model = new AcknowledgedModel();
        var stats = new StringBuilder();
        int killedInSnapshot = 0, powerLosses = 0;
        try
        {
            for (var cycle = 1; cycle <= Cycles; cycle++)
            {
                var random = new Random(Seed + cycle);
                var run = await RunChildUntilKilledAsync(dir.Path, cycle, random, ct);
                if (Directory.EnumerateFiles(dir.Path, "*.snap.tmp").Any()) killedInSnapshot++;
                model.Absorb(run.Lines, cycle);

                if (random.Next(3) == 0 && SimulatePowerLoss(dir, model.DurableRevision, random)) powerLosses++;

                await using (var engine = await dir.OpenAsync())
                {
                    await model.VerifyAsync(engine, random, cycle, ct);
                }
                stats.Append(CultureInfo.InvariantCulture, $"cycle {cycle}: {run.Lines.Count} lines ({run.Trigger}), revision {model.DurableRevision}\n");
            }
        }
        catch
        {
            dir.Keep = true;
            TestContext.Current.TestOutputHelper?.WriteLine($"data directory kept for inspection: {dir.Path}");
            throw;
        }
        finally
        {
            TestContext.Current.TestOutputHelper?.WriteLine(stats.ToString());
            TestContext.Current.TestOutputHelper?.WriteLine(
                $"acknowledged: {model.Summary}; kills that left a half-written snapshot: {killedInSnapshot}; simulated power losses: {powerLosses}");
        }

        // The run must have exercised every kind of operation, or the checks above were vacuous.
        Assert.True(model.CounterAcks > 0 && model.Uniques.Count > 0 && model.Idempotent.Count > 0 && model.Receipts.Count > 0, model.Summary);
        Assert.True(model.SnapshotsCompleted > 0, model.Summary);
    }

    private sealed record ChildRun(IReadOnlyList<string> Lines, string Trigger);

    /// <summary>Starts the child, lets it run a (seeded) random while, then SIGKILLs it and returns its complete output lines.</summary>
    private static async Task<ChildRun> RunChildUntilKilledAsync(string dataDir, int cycle, Random random, CancellationToken ct)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "Concord.CrashWriter.dll");
        Assert.True(File.Exists(dll), $"crash writer not found at {dll}");
        var start = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { dll, dataDir, cycle.ToString(CultureInfo.InvariantCulture), (Seed + cycle).ToString(CultureInfo.InvariantCulture),
                     Writers.ToString(CultureInfo.InvariantCulture), SnapshotEveryBytes.ToString(CultureInfo.InvariantCulture) })
            start.ArgumentList.Add(arg);

        // Every third cycle aims the kill at an explicit snapshot in progress; some others at the child's start-up (recovery,
        // creating the new segment); the rest at a random moment of the burst.
        var mode = cycle % 3 == 0 ? KillMode.Snapshot : cycle % 5 == 1 ? KillMode.StartUp : KillMode.Burst;
        var snapshotsBeforeKill = random.Next(1, 4);
        var delayMs = mode switch
        {
            KillMode.Snapshot => random.Next(0, 20),
            KillMode.StartUp => random.Next(30, 300),
            _ => random.Next(20, 400),
        };

        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the crash writer");
        var stderr = process.StandardError.ReadToEndAsync(ct);
        var reader = new LineReader(process.StandardOutput.BaseStream, snapshotsBeforeKill);
        var reading = reader.RunAsync(ct);

        // Bounded waits: if the child never gets there (it died, or it is very slow), kill it anyway and let the checks run.
        var trigger = mode switch
        {
            KillMode.Snapshot => reader.SnapshotsBegun,
            KillMode.StartUp => Task.CompletedTask,
            _ => reader.Ready,
        };
        var reached = await Task.WhenAny(trigger, reading, Task.Delay(TimeSpan.FromSeconds(20), ct)) == trigger;
        if (reached) await Task.Delay(delayMs, ct);
        if (process.HasExited)
            Assert.Fail($"the crash writer exited by itself with code {process.ExitCode}: {await stderr}");
        process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync(ct);
        await reading;
        var how = !reached ? "timeout" : mode switch
        {
            KillMode.Snapshot => $"snapshot #{snapshotsBeforeKill} +{delayMs} ms",
            KillMode.StartUp => $"{delayMs} ms after start{(reader.Ready.IsCompleted ? "" : ", before ready")}",
            _ => $"ready +{delayMs} ms",
        };
        return new ChildRun(reader.Lines, how);
    }

    private enum KillMode { Burst, Snapshot, StartUp }

    private static string DotnetHost()
    {
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host)) return host;
        if (Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet") return self;
        // The shared runtime lives in <root>/shared/Microsoft.NETCore.App/<version>/; the host is <root>/dotnet.
        var root = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
        var candidate = Path.Combine(root, OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet");
        return File.Exists(candidate) ? candidate : "dotnet";
    }

    /// <summary>
    /// Power loss after the kill: everything past the last frame known durable (acknowledged, or seen after an
    /// earlier recovery) in the newest segment may be lost or garbage. Cut or garble one byte somewhere in there.
    /// </summary>
    private static bool SimulatePowerLoss(TempDataDirectory dir, long durableRevision, Random random)
    {
        var segments = dir.Segments();
        if (segments.Count == 0) return false;
        var newest = segments[^1];
        var bytes = File.ReadAllBytes(newest);
        if (bytes.Length <= Framing.LogMagic.Length || !bytes.AsSpan(0, Framing.LogMagic.Length).SequenceEqual(Framing.LogMagic)) return false;
        var frames = DiskFrames.Read(bytes);
        var firstUnsafe = frames.FindIndex(f => f.Revision > durableRevision);
        if (firstUnsafe < 0) return false;
        var offset = frames[firstUnsafe].Offset + random.NextInt64(bytes.Length - frames[firstUnsafe].Offset);
        if (random.Next(2) == 0) DiskFrames.Truncate(newest, offset);
        else DiskFrames.FlipByte(newest, offset, (byte)random.Next(1, 256));
        return true;
    }

    /// <summary>Reads the child's stdout as raw bytes: only newline-terminated lines count (a kill can cut the last one).</summary>
    private sealed class LineReader(Stream stdout, int snapshotsBeforeKill)
    {
        private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _snapshots = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _snapshotsBegun;

        public List<string> Lines { get; } = [];

        public Task Ready => _ready.Task;

        public Task SnapshotsBegun => _snapshots.Task;

        public async Task RunAsync(CancellationToken ct)
        {
            var pending = new List<byte>();
            var buffer = new byte[64 * 1024];
            int read;
            while ((read = await stdout.ReadAsync(buffer, ct)) > 0)
            {
                for (var i = 0; i < read; i++)
                {
                    if (buffer[i] != (byte)'\n')
                    {
                        pending.Add(buffer[i]);
                        continue;
                    }
                    var line = Encoding.UTF8.GetString([.. pending]);
                    pending.Clear();
                    Lines.Add(line);
                    if (line.StartsWith("ready ", StringComparison.Ordinal)) _ready.TrySetResult();
                    if (line == "snap-begin" && ++_snapshotsBegun == snapshotsBeforeKill) _snapshots.TrySetResult();
                }
            }
            // Whatever is left in 'pending' is a line cut by the kill: it was never fully reported, so it is ignored.
        }
    }

    /// <summary>Everything the children saw acknowledged, accumulated over all cycles, and the checks against a recovered store.</summary>
    private sealed class AcknowledgedModel
    {
        private readonly Dictionary<string, long> _counterVersions = new(StringComparer.Ordinal);
        private readonly Dictionary<string, long> _accountVersions = new(StringComparer.Ordinal);
        private Dictionary<string, long> _observed = new(StringComparer.Ordinal);
        private long _observedRevision;
        private long _ackedRevision;
        private int _idempotentCheckedFrom;

        public Dictionary<string, string> Uniques { get; } = new(StringComparer.Ordinal);
        public List<(string Key, long Version, long Revision, string IdempotencyKey, string Value, int Cycle)> Idempotent { get; } = [];
        public Dictionary<string, (long Revision, string Value)> Receipts { get; } = new(StringComparer.Ordinal);
        public int CounterAcks { get; private set; }
        public int SnapshotsCompleted { get; private set; }

        /// <summary>Highest revision known durable: acknowledged to a child, or observed after an earlier recovery.</summary>
        public long DurableRevision => Math.Max(_ackedRevision, _observedRevision);

        public string Summary =>
            $"{CounterAcks} counter increments, {Uniques.Count} creates, {Idempotent.Count} idempotent puts, {Receipts.Count} transfers, {SnapshotsCompleted} explicit snapshots";

        public void Absorb(IReadOnlyList<string> lines, int cycle)
        {
            foreach (var line in lines)
            {
                var f = line.Split(' ');
                switch (f[0])
                {
                    case "ctr":
                        Assert.Equal(f[2], f[3]); // the child wrote n = version
                        Max(_counterVersions, f[1], Long(f[2]));
                        Acked(f[4]);
                        CounterAcks++;
                        break;
                    case "new":
                        Assert.Equal("1", f[2]);
                        Uniques.Add(f[1], f[4]);
                        Acked(f[3]);
                        break;
                    case "idem":
                        Assert.Equal("1", f[2]);
                        Idempotent.Add((f[1], Long(f[2]), Long(f[3]), f[4], f[5], cycle));
                        Acked(f[3]);
                        break;
                    case "txn":
                        Receipts.Add(f[1], (Long(f[2]), f[7]));
                        Max(_accountVersions, f[3], Long(f[4]));
                        Max(_accountVersions, f[5], Long(f[6]));
                        Acked(f[2]);
                        break;
                    case "init":
                        Acked(f[1]);
                        break;
                    case "snap-end":
                        SnapshotsCompleted++;
                        break;
                    case "ready" or "snap-begin" or "done":
                        break;
                    default:
                        Assert.Fail($"unexpected line from the crash writer: {line}");
                        break;
                }
            }
        }

        private void Acked(string revision) => _ackedRevision = Math.Max(_ackedRevision, Long(revision));

        private static void Max(Dictionary<string, long> map, string key, long value) =>
            map[key] = Math.Max(map.GetValueOrDefault(key), value);

        private static long Long(string s) => long.Parse(s, CultureInfo.InvariantCulture);

        private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();

        public async Task VerifyAsync(ConcordEngine engine, Random random, int cycle, CancellationToken ct)
        {
            var revision = await engine.GetRevisionAsync(ct);
            Assert.True(revision >= DurableRevision, $"cycle {cycle}: recovered revision {revision} < acknowledged/observed {DurableRevision}");

            var all = await ListAllAsync(engine, ct);

            // Nothing seen after an earlier recovery may disappear (recovery after recovery).
            foreach (var (key, version) in _observed)
            {
                Assert.True(all.TryGetValue(key, out var now) && now.Version >= version,
                    $"cycle {cycle}: '{key}' was at version {version} after the previous recovery, now {(now is null ? "absent" : now.Version)}");
            }

            // Hot CAS counters: at least the acknowledged version, and the value equals the number of increments.
            foreach (var (key, version) in _counterVersions)
                Assert.True(all.TryGetValue(key, out var r) && r.Version >= version, $"cycle {cycle}: counter '{key}' lost acknowledged version {version}");
            foreach (var r in all.Values.Where(r => r.Key.StartsWith("ctr/", StringComparison.Ordinal)))
                Assert.True(r.Value.GetProperty("n").GetInt64() == r.Version, $"cycle {cycle}: counter {r} has a value different from its version");

            // Unique creates: every acknowledged one is there, and every one there is intact.
            foreach (var (key, value) in Uniques)
            {
                Assert.True(all.TryGetValue(key, out var r), $"cycle {cycle}: acknowledged create '{key}' is missing");
                Assert.True(r.Version == 1 && JsonElement.DeepEquals(r.Value, Json(value)), $"cycle {cycle}: '{key}' is {r}, acknowledged v1 {value}");
            }
            foreach (var r in all.Values.Where(r => r.Key.StartsWith("u/", StringComparison.Ordinal)))
                Assert.True(r.Version == 1 && JsonElement.DeepEquals(r.Value, Json(CrashWriterValues.Unique(r.Key[2..]))), $"cycle {cycle}: bad create {r}");

            await VerifyIdempotencyAsync(engine, all, random, cycle, ct);
            VerifyBank(all, cycle);

            _observed = all.ToDictionary(kv => kv.Key, kv => kv.Value.Version, StringComparer.Ordinal);
            _observedRevision = revision;
        }

        private async Task VerifyIdempotencyAsync(ConcordEngine engine, Dictionary<string, ConcordRecord> all, Random random, int cycle, CancellationToken ct)
        {
            foreach (var r in all.Values.Where(r => r.Key.StartsWith("idem/", StringComparison.Ordinal)))
                Assert.True(r.Version == 1 && JsonElement.DeepEquals(r.Value, Json(CrashWriterValues.Idempotent(r.Key[5..]))), $"cycle {cycle}: bad idempotent put {r}");

            // Re-send every put acknowledged since the last verification, plus a sample of older ones (bounded cost).
            var toCheck = Idempotent.Skip(_idempotentCheckedFrom).ToList();
            for (var i = 0; i < 40 && _idempotentCheckedFrom > 0; i++) toCheck.Add(Idempotent[random.Next(_idempotentCheckedFrom)]);
            _idempotentCheckedFrom = Idempotent.Count;

            var session = new ConcordSession(engine, CrashWriterValues.Namespace, "verifier");
            foreach (var put in toCheck)
            {
                Assert.True(all.TryGetValue(put.Key, out var r) && r.Version == put.Version && JsonElement.DeepEquals(r.Value, Json(put.Value)),
                    $"cycle {cycle}: acknowledged idempotent put '{put.Key}' (cycle {put.Cycle}) is missing or changed");
                var replay = await session.PutAsync(put.Key, Json(put.Value), idempotencyKey: put.IdempotencyKey, cancellationToken: ct);
                Assert.True(replay.Replayed && replay.Version == put.Version && replay.Revision == put.Revision,
                    $"cycle {cycle}: re-sending '{put.IdempotencyKey}' gave {replay}, expected a replay of v{put.Version} rev {put.Revision}");
                await Assert.ThrowsAsync<IdempotencyKeyReusedException>(async () =>
                    await session.PutAsync(put.Key, Json("""{"other":true}"""), idempotencyKey: put.IdempotencyKey, cancellationToken: ct));
            }
        }

        private void VerifyBank(Dictionary<string, ConcordRecord> all, int cycle)
        {
            var accounts = Enumerable.Range(0, CrashWriterValues.Accounts).Select(i => all.GetValueOrDefault($"bank/{i}")).ToList();
            var receipts = all.Values.Where(r => r.Key.StartsWith("rcpt/", StringComparison.Ordinal)).ToList();
            foreach (var (key, (_, value)) in Receipts)
            {
                Assert.True(all.TryGetValue(key, out var r) && JsonElement.DeepEquals(r.Value, Json(value)), $"cycle {cycle}: acknowledged transfer receipt '{key}' is missing");
            }
            foreach (var (key, version) in _accountVersions)
                Assert.True(all.TryGetValue(key, out var r) && r.Version >= version, $"cycle {cycle}: account '{key}' lost acknowledged version {version}");

            // The accounts are created in one transaction: all or none.
            Assert.True(accounts.All(a => a is null) || accounts.All(a => a is not null), $"cycle {cycle}: only some accounts exist");
            if (accounts[0] is null)
            {
                Assert.Empty(receipts);
                return;
            }

            // Each transfer moved money and wrote its receipt in one revision: balances and versions follow the receipts exactly.
            var balance = new long[accounts.Count];
            var touches = new long[accounts.Count];
            Array.Fill(balance, CrashWriterValues.InitialBalance);
            foreach (var receipt in receipts)
            {
                int from = receipt.Value.GetProperty("from").GetInt32(), to = receipt.Value.GetProperty("to").GetInt32();
                var amount = receipt.Value.GetProperty("amt").GetInt64();
                balance[from] -= amount;
                balance[to] += amount;
                touches[from]++;
                touches[to]++;
            }
            for (var i = 0; i < accounts.Count; i++)
            {
                Assert.True(accounts[i]!.Value.GetProperty("bal").GetInt64() == balance[i] && accounts[i]!.Version == 1 + touches[i],
                    $"cycle {cycle}: account {accounts[i]} disagrees with its {touches[i]} receipts (expected balance {balance[i]})");
            }
            Assert.Equal(CrashWriterValues.InitialBalance * accounts.Count, accounts.Sum(a => a!.Value.GetProperty("bal").GetInt64()));
        }

        private static async Task<Dictionary<string, ConcordRecord>> ListAllAsync(ConcordEngine engine, CancellationToken ct)
        {
            var all = new Dictionary<string, ConcordRecord>(StringComparer.Ordinal);
            var at = await engine.GetRevisionAsync(ct);
            string? after = null;
            do
            {
                var page = await engine.ListAsync(CrashWriterValues.Namespace, new ListRequest { After = after, Limit = 10_000, AtRevision = at }, ct);
                foreach (var r in page.Records) all.Add(r.Key, r);
                after = page.NextAfter;
            }
            while (after is not null);
            return all;
        }
    }

    /// <summary>The crash writer's key and value scheme (tests/Concord.CrashWriter/Program.cs, CrashWorkload).</summary>
    private static class CrashWriterValues
    {
        public const string Namespace = "crash";
        public const int Accounts = 5;
        public const long InitialBalance = 1000;

        public static string Unique(string id) => $$"""{"id":"{{id}}","kind":"new"}""";

        public static string Idempotent(string id) => $$"""{"id":"{{id}}","kind":"idem"}""";
    }
}
