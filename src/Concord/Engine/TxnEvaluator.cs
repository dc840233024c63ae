using System.Text.Json;
using System.Text.Json.Nodes;
using Concord.Internal;
using Concord.Patching;

namespace Concord.Engine;

/// <summary>
/// The state a transaction is evaluated against: the embedded engine's MVCC map, or the rows a distributed backend
/// loaded (and locked) inside its own transaction.
/// </summary>
internal interface ITxnView
{
    /// <summary>Newest version of <paramref name="key"/>, tombstones and expired versions included; null if never written.</summary>
    ConcordRecord? Latest(string key);

    /// <summary>Highest revision of any change (tombstones included) under <paramref name="prefix"/>; 0 when none.</summary>
    long PrefixModRevision(string prefix);

    /// <summary>The stored idempotency record for <paramref name="key"/>, expired or not; null when none.</summary>
    IdempotencyEntry? FindIdempotency(string key);
}

/// <summary>What an evaluation needs besides the state.</summary>
/// <param name="LastRevision">Newest committed revision; the commit gets <c>LastRevision + 1</c>.</param>
/// <param name="Now">Physical time for TTLs and idempotency retention.</param>
/// <param name="CommitTime">Hybrid-logical commit timestamp for new records.</param>
/// <param name="Options">Strict mode, limits, retention, replica id.</param>
internal readonly record struct EvaluationContext(long LastRevision, DateTimeOffset Now, DateTimeOffset CommitTime, ConcordEngineOptions Options);

/// <summary>
/// The semantics of every mutation, shared by all backends: idempotency replay, compares, per-operation expectations
/// (version, absent, exists, fence), strict mode, puts, deletes, patches, CRDT merges and causal stamps. Pure: it reads
/// the view and returns the result plus the commit to apply; the caller makes it atomic and durable.
/// </summary>
internal static class TxnEvaluator
{
    /// <summary>Evaluates <paramref name="request"/>. <paramref name="commit"/> is null when nothing is to be written.</summary>
    /// <exception cref="IdempotencyKeyReusedException">The idempotency key was used for another request.</exception>
    /// <exception cref="InvalidPatchException">A patch does not apply.</exception>
    /// <exception cref="ValueTooLargeException">A resulting value exceeds the limit.</exception>
    public static TxnResult Evaluate(string ns, TxnRequest request, WriteOptions options, byte[]? fingerprint, ITxnView view, in EvaluationContext ctx, out CommitEntry? commit)
    {
        commit = null;
        var now = ctx.Now;
        var last = ctx.LastRevision;
        if (options.IdempotencyKey is { } idemKey && view.FindIdempotency(idemKey) is { } stored && stored.ExpiresAt > now)
        {
            if (!stored.Fingerprint.AsSpan().SequenceEqual(fingerprint)) throw new IdempotencyKeyReusedException(idemKey);
            return stored.Result.AsReplay();
        }

        var succeeded = true;
        foreach (var compare in request.Compares)
        {
            if (!Holds(view, compare, now))
            {
                succeeded = false;
                break;
            }
        }
        var branch = succeeded ? request.Then : request.Else;
        var revision = last + 1;
        var staged = new Dictionary<string, ConcordRecord>(StringComparer.Ordinal);
        var results = new List<TxnOpResult>(branch.Count);
        var changes = new List<ChangeEvent>();
        var strict = ctx.Options.IsStrict(ns);
        var commitTime = ctx.CommitTime;

        for (var i = 0; i < branch.Count; i++)
        {
            var op = branch[i];
            var latest = staged.TryGetValue(op.Key, out var s) ? s : view.Latest(op.Key);
            var live = Live(latest, now);
            if (op.Kind == TxnOpKind.Get)
            {
                results.Add(new TxnOpResult(TxnOpKind.Get, op.Key, live));
                continue;
            }
            var conflict = CheckExpectation(view, op, live, strict, request.Compares, staged, last);
            if (conflict is not null) return Conflict(i, conflict);

            ConcordRecord record;
            var nextVersion = (latest?.Version ?? 0) + 1;
            var createRevision = live?.CreateRevision ?? revision;
            var expires = op.Ttl is { } ttl ? now + ttl : (DateTimeOffset?)null;
            switch (op.Kind)
            {
                case TxnOpKind.Put:
                    record = new ConcordRecord(op.Key, op.Value.Clone(), nextVersion, revision, createRevision, options.Agent, commitTime, expires, false);
                    break;
                case TxnOpKind.Delete:
                    if (live is null) return Conflict(i, new WriteResult(op.Key, ConflictKind.NotFound, null, last, message: $"'{op.Key}' does not exist"));
                    record = new ConcordRecord(op.Key, default, nextVersion, revision, live.CreateRevision, options.Agent, commitTime, null, true);
                    break;
                case TxnOpKind.Merge:
                    var merged = Crdt.CrdtMerge.Merge(op.Key, live?.Value, op.Value);
                    CheckSize(op.Key, merged, ctx.Options.MaxValueBytes);
                    record = new ConcordRecord(op.Key, merged, nextVersion, revision, createRevision, options.Agent, commitTime, expires ?? live?.ExpiresAt, false);
                    break;
                default:
                    var document = live is null ? new JsonObject() : live.Value.ToNode();
                    var patched = PatchApplier.Apply(document, op.Patch!, out var failedTest);
                    if (failedTest >= 0)
                    {
                        var failed = op.Patch!.Operations[failedTest];
                        return Conflict(i, new WriteResult(op.Key, ConflictKind.TestFailed, live, last,
                            message: $"test at '{failed.Path}' (operation {failedTest}) did not hold on '{op.Key}'{VersionText(live)}"));
                    }
                    var value = JsonSerializer.SerializeToElement(patched);
                    CheckSize(op.Key, value, ctx.Options.MaxValueBytes);
                    // A patch keeps the key's TTL unless it sets a new one.
                    record = new ConcordRecord(op.Key, value, nextVersion, revision, createRevision, options.Agent, commitTime, expires ?? live?.ExpiresAt, false);
                    break;
            }
            record = CausalWrites.Stamp(op, latest, live, record, ctx.Options); // dots, contexts, siblings (docs/causality.md)
            changes.Add(new ChangeEvent(ns, record.IsDeleted ? ChangeKind.Delete : ChangeKind.Put, record));
            staged[op.Key] = record;
            results.Add(new TxnOpResult(op.Kind, op.Key, record));
        }

        var result = new TxnResult(succeeded, results, changes.Count > 0 ? revision : last, null);
        if (changes.Count == 0) return result;

        IdempotencyEntry? idempotency = null;
        if (options.IdempotencyKey is { } key)
            idempotency = new IdempotencyEntry(key, fingerprint!, now + ctx.Options.IdempotencyRetention, result);
        commit = new CommitEntry { Revision = revision, Namespace = ns, Time = commitTime, Changes = changes, Idempotency = idempotency };
        return result;

        TxnResult Conflict(int index, WriteResult conflict) => new(succeeded, [], last, conflict, failedOpIndex: index);
    }

    /// <summary>Validates keys, limits and operation shapes before any state is touched.</summary>
    public static void Validate(string ns, TxnRequest request, int maxValueBytes)
    {
        KeyRules.ValidateNamespace(ns);
        if (request.Then.Count + request.Else.Count + request.Compares.Count > 10_000)
            throw new InvalidRequestException("A transaction may have at most 10000 compares and operations");
        foreach (var c in request.Compares)
        {
            if (c.Target == CompareTarget.PrefixModRevision) KeyRules.ValidatePrefix(c.Key);
            else KeyRules.ValidateKey(c.Key);
            if (c.Target == CompareTarget.Value && c.Op is not (CompareOp.Equal or CompareOp.NotEqual))
                throw new InvalidRequestException("Value compares support only Equal and NotEqual");
        }
        ValidateOps(request.Then, maxValueBytes);
        ValidateOps(request.Else, maxValueBytes);
    }

    private static void ValidateOps(IReadOnlyList<TxnOp> ops, int maxValueBytes)
    {
        foreach (var op in ops)
        {
            KeyRules.ValidateKey(op.Key);
            if (op.Expect.Kind == ExpectationKind.Version && op.Expect.Version < 0) throw new InvalidRequestException($"Expected version must not be negative (key '{op.Key}')");
            if (op.Expect.Fence is { } fence)
            {
                KeyRules.ValidateKey(fence.Lock);
                if (fence.Token <= 0) throw new InvalidRequestException($"Fencing token must be positive (lock '{fence.Lock}')");
            }
            if (op.Ttl is { } ttl && ttl <= TimeSpan.Zero) throw new InvalidRequestException($"TTL must be positive (key '{op.Key}')");
            switch (op.Kind)
            {
                case TxnOpKind.Put:
                    if (op.Value.ValueKind == JsonValueKind.Undefined) throw new InvalidRequestException($"Put of '{op.Key}' has no value");
                    CheckSize(op.Key, op.Value, maxValueBytes);
                    break;
                case TxnOpKind.Patch when op.Patch is null:
                    throw new InvalidRequestException($"Patch of '{op.Key}' has no operations");
            }
        }
    }

    /// <summary>Every key whose newest version the evaluation may read (ops, compares, fence locks), for backends that preload.</summary>
    public static IEnumerable<string> KeysRead(TxnRequest request)
    {
        foreach (var c in request.Compares)
        {
            if (c.Target != CompareTarget.PrefixModRevision) yield return c.Key;
        }
        foreach (var op in request.Then.Concat(request.Else))
        {
            yield return op.Key;
            if (op.Expect.Fence is { } fence) yield return Coordination.Locks.StoreLockService.KeyFor(fence.Lock);
        }
    }

    /// <summary>Prefixes whose change revision the evaluation may read.</summary>
    public static IEnumerable<string> PrefixesRead(TxnRequest request) =>
        request.Compares.Where(c => c.Target == CompareTarget.PrefixModRevision).Select(c => c.Key);

    /// <summary>Throws <see cref="ValueTooLargeException"/> when <paramref name="value"/>'s JSON exceeds <paramref name="maxBytes"/>.</summary>
    public static void CheckSize(string key, JsonElement value, int maxBytes)
    {
        // The raw UTF-8 length is an upper bound of the minified size, read without copying the text (this runs on every put).
        var size = System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(value).Length;
        if (size > maxBytes) throw new ValueTooLargeException(key, size, maxBytes);
    }

    /// <summary>The record as readers see it: null when absent, deleted or expired.</summary>
    public static ConcordRecord? Live(ConcordRecord? record, DateTimeOffset now) =>
        record is null || record.IsDeleted || record.ExpiresAt <= now ? null : record;

    private static string VersionText(ConcordRecord? live) =>
        live is null ? " (absent)" : $" (at version {live.Version}{(live.Writer is null ? "" : $", written by {live.Writer}")})";

    private static WriteResult? CheckExpectation(ITxnView view, TxnOp op, ConcordRecord? live, bool strict, IReadOnlyList<TxnCompare> compares, Dictionary<string, ConcordRecord> staged, long last)
    {
        var expect = op.Expect;
        if (expect.Fence is { } fence && CheckFence(view, op.Key, fence, live, staged, last) is { } stale) return stale;
        var currentVersion = live?.Version ?? 0;
        switch (expect.Kind)
        {
            case ExpectationKind.Absent when live is not null:
                return new WriteResult(op.Key, ConflictKind.AlreadyExists, live, last, message: $"'{op.Key}' already exists{VersionText(live)}");
            case ExpectationKind.Exists when live is null:
                return new WriteResult(op.Key, ConflictKind.NotFound, null, last, message: $"'{op.Key}' does not exist");
            case ExpectationKind.Version when currentVersion != expect.Version:
                return new WriteResult(op.Key, ConflictKind.VersionMismatch, live, last,
                    message: $"expected '{op.Key}' at version {expect.Version}{(expect.Version == 0 ? " (absent)" : "")} but it is{VersionText(live)}");
        }
        if (strict && expect.IsBlind && live is not null && op.Kind is TxnOpKind.Put or TxnOpKind.Delete && !CausalWrites.KeepsSiblings(op, live) && !IsGuarded(op.Key, compares))
        {
            return new WriteResult(op.Key, ConflictKind.BlindWriteRefused, live, last,
                message: $"strict mode refuses a blind {(op.Kind == TxnOpKind.Put ? "overwrite" : "delete")} of '{op.Key}'{VersionText(live)}; state the version you read (If-Match), or use a patch");
        }
        return null;
    }

    /// <summary>
    /// Fencing: the lock record (<c>_sys/locks/{name}</c>, see <c>StoreLockService</c>) carries the newest token issued and
    /// the floor set by the newest exclusive grant. A token below the floor is stale; one above the counter was never issued.
    /// </summary>
    private static WriteResult? CheckFence(ITxnView view, string key, Fence fence, ConcordRecord? live, Dictionary<string, ConcordRecord> staged, long last)
    {
        var lockKey = Coordination.Locks.StoreLockService.KeyFor(fence.Lock);
        var lockRecord = staged.TryGetValue(lockKey, out var s) ? s : view.Latest(lockKey);
        long issued = 0, floor = 0;
        if (lockRecord is { IsDeleted: false } && lockRecord.Value.ValueKind == JsonValueKind.Object)
        {
            if (lockRecord.Value.TryGetProperty("issued", out var i) && i.TryGetInt64(out var iv)) issued = iv;
            if (lockRecord.Value.TryGetProperty("floor", out var f) && f.TryGetInt64(out var fv)) floor = fv;
        }
        if (fence.Token > issued)
            return new WriteResult(key, ConflictKind.StaleFence, live, last, message: $"fencing token {fence.Token} was never issued for lock '{fence.Lock}' (newest is {issued})");
        if (fence.Token < floor)
            return new WriteResult(key, ConflictKind.StaleFence, live, last,
                message: $"fencing token {fence.Token} for lock '{fence.Lock}' is stale: the lock was granted with token {floor} since");
        return null;
    }

    private static bool IsGuarded(string key, IReadOnlyList<TxnCompare> compares)
    {
        foreach (var c in compares)
        {
            if (c.Target == CompareTarget.PrefixModRevision ? key.StartsWith(c.Key, StringComparison.Ordinal) : c.Key == key) return true;
        }
        return false;
    }

    private static bool Holds(ITxnView view, TxnCompare compare, DateTimeOffset now)
    {
        if (compare.Target == CompareTarget.PrefixModRevision)
            return Compare(view.PrefixModRevision(compare.Key), compare.Op, compare.Number);
        var latest = view.Latest(compare.Key);
        var live = Live(latest, now);
        return compare.Target switch
        {
            CompareTarget.Version => Compare(live?.Version ?? 0, compare.Op, compare.Number),
            CompareTarget.ModRevision => Compare(latest?.Revision ?? 0, compare.Op, compare.Number),
            _ => (live is not null && JsonEquality.DeepEquals(live.Value, compare.Value)) == (compare.Op == CompareOp.Equal),
        };
    }

    private static bool Compare(long actual, CompareOp op, long expected) => op switch
    {
        CompareOp.Equal => actual == expected,
        CompareOp.NotEqual => actual != expected,
        CompareOp.Less => actual < expected,
        CompareOp.LessOrEqual => actual <= expected,
        _ => actual > expected,
    };
}
