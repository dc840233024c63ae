using Concord.Lab.Checkers;
using Concord.Lab.Checkers.Linearizability;
using Concord.Lab.History;
using Concord.Lab.Tests.Support;

namespace Concord.Lab.Tests.Checkers.Linearizability;

public sealed class RegisterModelTests
{
    private static LinearizabilityResult Check(HistoryBuilder builder, LinearizabilityModel model = LinearizabilityModel.Register) =>
        LinearizabilityChecker.Check(builder.Build(), new LinearizabilityOptions { Model = model }, TestContext.Current.CancellationToken);

    [Fact]
    public void Check_SequentialWritesAndReads_IsValid()
    {
        var result = Check(new HistoryBuilder().Read(1, "x", null).Write(1, "x", 1).Read(2, "x", 1).Write(2, "x", 2).Read(1, "x", 2));

        Assert.Equal(Verdict.Valid, result.Verdict);
        Assert.StartsWith("Linearizable (register model)", result.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_ReadConcurrentWithWrite_MaySeeEitherValue()
    {
        var oldValue = Check(new HistoryBuilder().Write(1, "x", 1).Invoke(1, "write", "x", 2).Invoke(2, "read", "x").Ok(2, 1).Ok(1));
        var newValue = Check(new HistoryBuilder().Write(1, "x", 1).Invoke(1, "write", "x", 2).Invoke(2, "read", "x").Ok(2, 2).Ok(1));

        Assert.Equal(Verdict.Valid, oldValue.Verdict);
        Assert.Equal(Verdict.Valid, newValue.Verdict);
    }

    [Fact]
    public void Check_StaleRead_IsInvalidWithSmallestWindowAndPlainWords()
    {
        var builder = new HistoryBuilder().Agent(1, "status").Agent(2, "compliance").Agent(3, "fees")
            .Write(1, "acct/7", 9)                     // noise on another key
            .Write(1, "acct/42", 4)                    // ops 2,3
            .Write(2, "acct/42", 6)                    // ops 4,5
            .Read(1, "acct/7", 9)
            .Read(3, "acct/42", 4);                    // ops 8,9: stale

        var result = Check(builder);

        Assert.Equal(Verdict.Invalid, result.Verdict);
        var key = Assert.Single(result.Keys, k => k.Verdict == Verdict.Invalid);
        Assert.Equal("acct/42", key.Key);
        Assert.Equal([3L, 5L, 9L], key.Window);
        Assert.Equal(9L, key.StuckOperation);
        Assert.Contains("process 3 (agent fees) read 4 from acct/42", key.Explanation, StringComparison.Ordinal);
        Assert.Contains("the only value it could have found was 6", key.Explanation, StringComparison.Ordinal);
        Assert.Contains("had already been overwritten by the write of 6 by process 2 (agent compliance)", key.Explanation, StringComparison.Ordinal);
        Assert.Equal(Verdict.Valid, result.Keys.Single(k => k.Key == "acct/7").Verdict);
    }

    [Fact]
    public void Check_ReadOfValueNeverWritten_IsInvalid()
    {
        var result = Check(new HistoryBuilder().Write(1, "x", 1).Read(2, "x", 5));

        var key = Assert.Single(result.Keys);
        Assert.Equal(Verdict.Invalid, key.Verdict);
        Assert.Contains("No operation ever wrote 5", key.Explanation, StringComparison.Ordinal);
        Assert.Equal([3L], key.Window);
    }

    [Fact]
    public void Check_ReadOfFailedWrite_IsInvalidBecauseFailedOperationsDidNotHappen()
    {
        var result = Check(new HistoryBuilder().Invoke(1, "write", "x", 5).Fail(1).Read(2, "x", 5));

        Assert.Equal(Verdict.Invalid, result.Verdict);
        Assert.Contains("The only write of 5 (process 1, op 1) failed", result.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_ReadOfInfoWrite_IsValidBecauseItMayHaveHappened()
    {
        var result = Check(new HistoryBuilder().Invoke(1, "write", "x", 5).Info(1).Read(2, "x", 5).Read(2, "x", 5));

        Assert.Equal(Verdict.Valid, result.Verdict);
    }

    [Fact]
    public void Check_InfoWriteThatNeverTookEffect_IsValid()
    {
        var result = Check(new HistoryBuilder().Write(2, "x", 1).Invoke(1, "write", "x", 5).Info(1).Read(2, "x", 1));

        Assert.Equal(Verdict.Valid, result.Verdict);
    }

    [Fact]
    public void Check_InfoWriteTakingEffectLate_IsValid_ButNotBeforeItsInvocation()
    {
        var late = Check(new HistoryBuilder().Write(2, "x", 1).Invoke(1, "write", "x", 5).Read(2, "x", 1).Read(2, "x", 5).Info(1));
        var early = Check(new HistoryBuilder().Read(2, "x", 5).Invoke(1, "write", "x", 5).Info(1));

        Assert.Equal(Verdict.Valid, late.Verdict);
        Assert.Equal(Verdict.Invalid, early.Verdict);
        Assert.Contains("began only at", early.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_PendingOperationAtEndOfHistory_IsTreatedAsInfo()
    {
        var result = Check(new HistoryBuilder().Invoke(1, "write", "x", 5).Read(2, "x", 5));

        Assert.Equal(Verdict.Valid, result.Verdict);
    }

    [Fact]
    public void Check_NewOldInversionBetweenTwoReads_IsInvalid()
    {
        // A write of 2 is in flight; one reader sees 2, a later reader (starting after the first returned) sees 1 again.
        var builder = new HistoryBuilder()
            .Write(1, "x", 1)
            .Invoke(1, "write", "x", 2)
            .Read(2, "x", 2)
            .Read(3, "x", 1)
            .Ok(1);

        var result = Check(builder);

        Assert.Equal(Verdict.Invalid, result.Verdict);
        var key = Assert.Single(result.Keys);
        Assert.Equal(6L, key.StuckOperation);
        Assert.Equal([1L, 4L, 6L, 7L], key.Window);
        Assert.Contains("could precede it, but not in any order", key.Explanation, StringComparison.Ordinal);
        Assert.Contains("still running when the failure became certain", key.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_CasInRegisterModel_IsRejectedAsBadInput()
    {
        var history = new HistoryBuilder().Do(1, "cas", "x", new[] { 0, 1 }).Build();

        var error = Assert.Throws<HistoryFormatException>(() => LinearizabilityChecker.Check(history, new LinearizabilityOptions { Model = LinearizabilityModel.Register }, TestContext.Current.CancellationToken));
        Assert.Contains("use the cas-register model", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_TxnOperations_AreRejectedAsBadInput()
    {
        var history = new HistoryBuilder().Txn(1, """[["r","x",null]]""", """[["r","x",null]]""").Build();

        var error = Assert.Throws<HistoryFormatException>(() => LinearizabilityChecker.Check(history, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Contains("isolation checker", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_UnkeyedOperations_FormTheirOwnPartition()
    {
        var result = Check(new HistoryBuilder().Write(1, "x", 1).Invoke(1, "write", null, 1).Ok(1).Invoke(2, "read", null).Ok(2, 2));

        Assert.Equal(Verdict.Invalid, result.Verdict);
        Assert.Null(result.Keys[0].Key);
        Assert.Equal(Verdict.Invalid, result.Keys[0].Verdict);
        Assert.Equal(Verdict.Valid, result.Keys[1].Verdict);
    }

    [Fact]
    public void Check_AlreadyCancelled_IsUnknown()
    {
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();

        var result = LinearizabilityChecker.Check(new HistoryBuilder().Write(1, "x", 1).Build(), null, cancelled.Token);

        Assert.Equal(Verdict.Unknown, result.Verdict);
        Assert.Contains("cancelled", result.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_HardHistoryWithTimeout_IsUnknown()
    {
        var result = LinearizabilityChecker.Check(HardHistories.ManyConcurrentWritesThenImpossibleRead(28),
            new LinearizabilityOptions { Model = LinearizabilityModel.Register, Timeout = TimeSpan.FromMilliseconds(300) },
            TestContext.Current.CancellationToken);

        Assert.Equal(Verdict.Unknown, result.Verdict);
        Assert.Contains("timeout", result.Explanation, StringComparison.Ordinal);
    }
}

internal static class HardHistories
{
    /// <summary>
    /// <paramref name="writers"/> concurrent writes of distinct values whose outcome is unknown, then a read of a
    /// value nobody wrote: proving it impossible means trying every subset of the writes (2^n configurations).
    /// </summary>
    public static OperationHistory ManyConcurrentWritesThenImpossibleRead(int writers)
    {
        var builder = new HistoryBuilder();
        for (var p = 0; p < writers; p++)
        {
            builder.Invoke(p, Functions.Write, "x", p + 1);
        }

        for (var p = 0; p < writers; p++)
        {
            builder.Info(p);
        }

        return builder.Read(writers, "x", -1).Build();
    }
}
