using CsCheck;

namespace Concord.Tests.Conformance;

/// <summary>
/// Model-based tests: random sequences of puts, deletes, increments, CAS loops, reads (latest and at a revision),
/// scans and compare/then/else transactions — with and without idempotency keys, in normal and strict mode — are
/// applied to the store and to <see cref="ContractModel"/>; every result and the final state must agree. CsCheck
/// shrinks a failing sequence, so a failure prints a minimal one (and the seed to replay it).
/// </summary>
public abstract class StoreModelTests : StoreTestBase
{
    private static readonly string[] Keys = ["a/1", "a/2", "b/1", "c"];
    private static readonly string[] Prefixes = ["", "a/", "b/", "c", "z/"];
    private int _namespaces;

    /// <summary>Sequences per test: 400 scaled by <see cref="StoreTestBase.StressScale"/> (slower backends run fewer). Replay a failure with the CsCheck_Seed it prints.</summary>
    protected virtual int Iterations => Scaled(400, 20);

    private static readonly Gen<string> GenKey = Gen.OneOf(Keys);

    private static readonly Gen<string?> GenIdem = Gen.Frequency<string?>((6, null), (1, "op-1"), (1, "op-2"));

    private static readonly Gen<ModelExpect> GenExpect = Gen.Frequency(
        (3, Gen.Const(new ModelExpect(ExpectationKind.Any))),
        (1, Gen.Const(new ModelExpect(ExpectationKind.Absent))),
        (1, Gen.Const(new ModelExpect(ExpectationKind.Exists))),
        (3, Gen.Long[0, 4].Select(v => new ModelExpect(ExpectationKind.Version, v))));

    private static readonly Gen<ModelWrite> GenWrite = Gen.Frequency(
        (4, Gen.Select(GenKey, Gen.Long[0, 9], GenExpect, (k, v, e) => new ModelWrite(TxnOpKind.Put, k, v, e))),
        (2, Gen.Select(GenKey, GenExpect, (k, e) => new ModelWrite(TxnOpKind.Delete, k, 0, e))),
        (3, Gen.Select(GenKey, Gen.Long[-3, 5], GenExpect, (k, v, e) => new ModelWrite(TxnOpKind.Patch, k, v, e))));

    private static readonly Gen<ModelWrite> GenTxnOp = Gen.Frequency((4, GenWrite), (1, GenKey.Select(k => new ModelWrite(TxnOpKind.Get, k, 0, default))));

    private static readonly Gen<ModelCompare> GenCompare = Gen.Frequency(
        (3, Gen.Select(GenKey, Gen.Long[0, 4], (k, v) => new ModelCompare(k, "version", v))),
        (1, GenKey.Select(k => new ModelCompare(k, "exists", 0))),
        (1, GenKey.Select(k => new ModelCompare(k, "absent", 0))),
        (1, Gen.Select(GenKey, Gen.Long[0, 3], (k, back) => new ModelCompare(k, "modrev", back))));

    private static readonly Gen<ModelOp> GenOp = Gen.Frequency(
        (8, Gen.Select(GenWrite, GenIdem, (w, i) => (ModelOp)new WriteOp(w, i))),
        (2, GenKey.Select(k => (ModelOp)new CasIncrementOp(k))),
        (2, GenKey.Select(k => (ModelOp)new GetOp(k))),
        (1, Gen.Select(GenKey, Gen.Int[0, 6], (k, b) => (ModelOp)new GetAtOp(k, b))),
        (1, Gen.OneOf(Prefixes).Select(p => (ModelOp)new ListOp(p))),
        (3, Gen.Select(GenCompare.Array[0, 2], GenTxnOp.Array[0, 3], GenTxnOp.Array[0, 2], GenIdem,
            (c, t, e, i) => (ModelOp)new TxnModelOp([.. c], [.. t], [.. e], i))));

    [Fact]
    public Task RandomSequences_MatchTheSequentialModel() => RunAsync(strict: false);

    [Fact]
    public Task RandomSequences_StrictMode_MatchTheSequentialModel() => RunAsync(strict: true);

    private async Task RunAsync(bool strict)
    {
        // One store per test; every sequence runs in a fresh namespace of it, one sequence at a time (the model predicts
        // global revisions, so nothing else may commit meanwhile).
        var store = await OpenStoreAsync(new StoreFixtureOptions { StrictMode = strict });
        await GenOp.Array[1, 40].SampleAsync(
            ops => RunSequenceAsync(store, strict, ops),
            iter: Iterations,
            threads: 1,
            print: ops => "\n  " + string.Join("\n  ", ops.Select(o => o.ToString())));
    }

    private async Task RunSequenceAsync(IConcordStore store, bool strict, ModelOp[] ops)
    {
        var ns = $"m{Interlocked.Increment(ref _namespaces)}";
        var s = Session(store, "model", ns);
        var model = new ContractModel(strict, await store.GetRevisionAsync(Ct));
        for (var step = 0; step < ops.Length; step++)
        {
            var where = $"step {step} ({ops[step]})";
            switch (ops[step])
            {
                case WriteOp(var write, var idem):
                {
                    var predicted = model.Apply([], [write], [], idem);
                    if (predicted is null)
                    {
                        await Assert.ThrowsAsync<IdempotencyKeyReusedException>(async () => await WriteAsync(s, write, idem));
                        break;
                    }
                    AssertWrite(where, predicted, await WriteAsync(s, write, idem));
                    break;
                }
                case CasIncrementOp(var key):
                {
                    var read = await s.GetAsync(key, Ct);
                    AssertRecord(where + " read", model.Live(key), read);
                    var write = new ModelWrite(TxnOpKind.Put, key, (read is null ? 0 : NOf(read)) + 1, new ModelExpect(ExpectationKind.Version, read?.Version ?? 0));
                    AssertWrite(where, model.Apply([], [write], [], null)!, await WriteAsync(s, write, null));
                    break;
                }
                case GetOp(var key):
                    AssertRecord(where, model.Live(key), await s.GetAsync(key, Ct));
                    break;
                case GetAtOp(var key, var back):
                {
                    if (model.Revision == 0) break;
                    var at = Math.Max(1, model.Revision - back);
                    AssertRecord(where + $" at {at}", model.LiveAt(key, at), await s.GetAsync(key, at, Ct));
                    break;
                }
                case ListOp(var prefix):
                {
                    var page = await s.ListAsync(prefix, cancellationToken: Ct);
                    Assert.Equal(model.Revision, page.Revision);
                    Assert.Equal(
                        model.List(prefix).Select(e => $"{e.Key} v{e.Entry.Version} n{e.Entry.N} r{e.Entry.Revision}"),
                        page.Records.Select(r => $"{r.Key} v{r.Version} n{NOf(r)} r{r.Revision}"));
                    break;
                }
                case TxnModelOp txn:
                {
                    var request = new TxnRequest
                    {
                        Compares = model.Concrete(txn.Compares),
                        Then = [.. txn.Then.Select(w => w.ToTxnOp())],
                        Else = [.. txn.Else.Select(w => w.ToTxnOp())],
                    };
                    var predicted = model.Apply(txn.Compares, txn.Then, txn.Else, txn.Idem);
                    if (predicted is null)
                    {
                        await Assert.ThrowsAsync<IdempotencyKeyReusedException>(async () => await s.TransactAsync(request, txn.Idem, Ct));
                        break;
                    }
                    AssertTxn(where, predicted, await s.TransactAsync(request, txn.Idem, Ct));
                    break;
                }
            }
            Assert.True(model.Revision == await store.GetRevisionAsync(Ct), $"{where}: store revision {await store.GetRevisionAsync(Ct)}, model {model.Revision}");
        }

        // Final state: every key, tombstones included (a recreate continues the version).
        Assert.Equal(
            model.List("").Select(e => $"{e.Key} v{e.Entry.Version} n{e.Entry.N}"),
            (await s.ListAsync(cancellationToken: Ct)).Records.Select(r => $"{r.Key} v{r.Version} n{NOf(r)}"));
        foreach (var key in Keys)
        {
            var next = await s.PatchAsync(key, JsonPatch.Create().Increment("/n", 0), cancellationToken: Ct);
            var expected = (model.State.TryGetValue(key, out var e) ? e.Version : 0) + 1;
            Assert.True(expected == next.Version, $"final: next version of {key} is {next.Version}, model says {expected}");
        }
    }

    private static async Task<WriteResult> WriteAsync(ConcordSession s, ModelWrite write, string? idem) => write.Kind switch
    {
        TxnOpKind.Put => await s.PutAsync(write.Key, N(write.Value), write.Expect.ToExpectation(), idem, cancellationToken: Ct),
        TxnOpKind.Delete => await s.DeleteAsync(write.Key, write.Expect.ToExpectation(), idem, Ct),
        _ => await s.PatchAsync(write.Key, JsonPatch.Create().Increment("/n", write.Value), write.Expect.ToExpectation(), idem, Ct),
    };

    private static string Show(ModelEntry? e) => e is null ? "null" : e.IsLive ? $"v{e.Version} n{e.N} r{e.Revision}" : $"v{e.Version} deleted r{e.Revision}";

    private static string Show(ConcordRecord? r) => r is null ? "null" : r.IsDeleted ? $"v{r.Version} deleted r{r.Revision}" : $"v{r.Version} n{NOf(r)} r{r.Revision}";

    private static void AssertRecord(string where, ModelEntry? expected, ConcordRecord? actual) =>
        Assert.True(Show(expected) == Show(actual), $"{where}: expected {Show(expected)}, store returned {Show(actual)}");

    private static void AssertWrite(string where, ModelOutcome expected, WriteResult actual)
    {
        var want = expected.Conflict == ConflictKind.None
            ? $"applied {Show(expected.Results[0].Record)} rev {expected.Revision} replayed={expected.Replayed}"
            : $"{expected.Conflict} current {Show(expected.ConflictRecord)} rev {expected.Revision}";
        var got = actual.IsApplied
            ? $"applied {Show(actual.Record)} rev {actual.Revision} replayed={actual.Replayed}"
            : $"{actual.Conflict} current {Show(actual.Record)} rev {actual.Revision}";
        Assert.True(want == got, $"{where}: expected {want}, store returned {got}");
        if (actual.Record is { IsDeleted: false } r) Assert.Equal("model", r.Writer);
    }

    private static void AssertTxn(string where, ModelOutcome expected, TxnResult actual)
    {
        string Want() => expected.Conflict == ConflictKind.None
            ? $"branch {(expected.Succeeded ? "then" : "else")} rev {expected.Revision} replayed={expected.Replayed} [{string.Join("; ", expected.Results.Select(r => $"{r.Kind} {r.Key} {Show(r.Record)}"))}]"
            : $"branch {(expected.Succeeded ? "then" : "else")} failed op {expected.FailedOpIndex} {expected.Conflict} on {expected.ConflictKey} current {Show(expected.ConflictRecord)} rev {expected.Revision}";
        string Got() => actual.IsApplied
            ? $"branch {(actual.Succeeded ? "then" : "else")} rev {actual.Revision} replayed={actual.Replayed} [{string.Join("; ", actual.Results.Select(r => $"{r.Kind} {r.Key} {Show(r.Record)}"))}]"
            : $"branch {(actual.Succeeded ? "then" : "else")} failed op {actual.FailedOpIndex} {actual.Conflict!.Conflict} on {actual.Conflict.Key} current {Show(actual.Conflict.Record)} rev {actual.Revision}";
        var want = Want();
        var got = Got();
        Assert.True(want == got, $"{where}: expected {want}, store returned {got}");
    }
}
