using Concord.Lab.Checkers;
using Concord.Lab.Checkers.Linearizability;
using Concord.Lab.Tests.Support;

namespace Concord.Lab.Tests.Checkers.Linearizability;

public sealed class CasRegisterModelTests
{
    private static LinearizabilityResult Check(HistoryBuilder builder) =>
        LinearizabilityChecker.Check(builder.Build(), new LinearizabilityOptions { Model = LinearizabilityModel.CasRegister }, TestContext.Current.CancellationToken);

    [Fact]
    public void Check_ChainOfSuccessfulCas_IsValid()
    {
        var result = Check(new HistoryBuilder().Write(1, "x", 3).Do(2, "cas", "x", new[] { 3, 4 }).Do(1, "cas", "x", new[] { 4, 5 }).Read(2, "x", 5));

        Assert.Equal(Verdict.Valid, result.Verdict);
    }

    [Fact]
    public void Check_TwoCasFromSameValueBothSucceed_IsInvalid()
    {
        // The lost update: fees and compliance both "successfully" change 3 into something else.
        var builder = new HistoryBuilder().Agent(2, "fees").Agent(3, "compliance")
            .Write(1, "acct/42", 3)
            .Invoke(2, "cas", "acct/42", new[] { 3, 4 })
            .Invoke(3, "cas", "acct/42", new[] { 3, 5 })
            .Ok(2)
            .Ok(3);

        var result = Check(builder);

        Assert.Equal(Verdict.Invalid, result.Verdict);
        var key = Assert.Single(result.Keys);
        Assert.Equal([1L, 4L, 5L], key.Window);
        Assert.Contains("changed acct/42 from 3 to", key.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_FailedCas_IsDropped()
    {
        var result = Check(new HistoryBuilder().Write(1, "x", 3).Do(2, "cas", "x", new[] { 3, 4 }).Invoke(1, "cas", "x", new[] { 3, 9 }).Fail(1).Read(2, "x", 4));

        Assert.Equal(Verdict.Valid, result.Verdict);
    }

    [Fact]
    public void Check_InfoCasMayOrMayNotApply()
    {
        var applied = Check(new HistoryBuilder().Write(1, "x", 3).Invoke(2, "cas", "x", new[] { 3, 4 }).Info(2).Read(1, "x", 4));
        var notApplied = Check(new HistoryBuilder().Write(1, "x", 3).Invoke(2, "cas", "x", new[] { 3, 4 }).Info(2).Read(1, "x", 3));
        var impossible = Check(new HistoryBuilder().Write(1, "x", 2).Invoke(2, "cas", "x", new[] { 3, 4 }).Info(2).Read(1, "x", 4));

        Assert.Equal(Verdict.Valid, applied.Verdict);
        Assert.Equal(Verdict.Valid, notApplied.Verdict);
        Assert.Equal(Verdict.Invalid, impossible.Verdict);
    }

    [Fact]
    public void Check_CasFromStaleValue_IsInvalid()
    {
        var result = Check(new HistoryBuilder().Write(1, "x", 3).Write(1, "x", 7).Do(2, "cas", "x", new[] { 3, 4 }));

        Assert.Equal(Verdict.Invalid, result.Verdict);
        Assert.Contains("the only value it could have found was 7", result.Explanation, StringComparison.Ordinal);
    }
}

public sealed class CounterModelTests
{
    private static LinearizabilityResult Check(HistoryBuilder builder) =>
        LinearizabilityChecker.Check(builder.Build(), new LinearizabilityOptions { Model = LinearizabilityModel.Counter }, TestContext.Current.CancellationToken);

    [Fact]
    public void Check_ConcurrentIncrements_IsValid()
    {
        var result = Check(new HistoryBuilder()
            .Invoke(1, "increment", "c", 1).Invoke(2, "increment", "c", 2).Invoke(3, "read", "c").Ok(3, 2).Ok(1).Ok(2)
            .Read(3, "c", 3)
            .Do(1, "add", "c", 5).Read(1, "c", 8));

        Assert.Equal(Verdict.Valid, result.Verdict);
    }

    [Fact]
    public void Check_ReadTooHigh_IsInvalid()
    {
        var result = Check(new HistoryBuilder().Do(1, "increment", "c", 1).Do(2, "increment", "c", 2).Read(3, "c", 7));

        Assert.Equal(Verdict.Invalid, result.Verdict);
        Assert.Contains("add up to only 3", result.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_ReadTooLow_IsInvalid()
    {
        var result = Check(new HistoryBuilder().Do(1, "increment", "c", 1).Do(2, "increment", "c", 2).Read(3, "c", 1));

        Assert.Equal(Verdict.Invalid, result.Verdict);
        Assert.Contains("increments totalling 3 had already completed", result.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_CounterGoingBackwards_IsInvalid()
    {
        var result = Check(new HistoryBuilder()
            .Do(1, "increment", "c", 1)
            .Invoke(1, "increment", "c", 1)
            .Read(2, "c", 2)
            .Read(3, "c", 1)
            .Ok(1));

        Assert.Equal(Verdict.Invalid, result.Verdict);
        Assert.Contains("had already read 2", result.Explanation, StringComparison.Ordinal);
        Assert.Contains("the counter only grows", result.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_InfoIncrementMayApply()
    {
        var result = Check(new HistoryBuilder().Invoke(1, "increment", "c", 5).Info(1).Read(2, "c", 0).Read(2, "c", 5));

        Assert.Equal(Verdict.Valid, result.Verdict);
    }
}

public sealed class SetModelTests
{
    private static LinearizabilityResult Check(HistoryBuilder builder) =>
        LinearizabilityChecker.Check(builder.Build(), new LinearizabilityOptions { Model = LinearizabilityModel.Set }, TestContext.Current.CancellationToken);

    [Fact]
    public void Check_AddsAndReads_IsValid()
    {
        var result = Check(new HistoryBuilder()
            .Read(1, "s", HistoryBuilder.J("[]"))
            .Do(1, "add", "s", 1)
            .Invoke(2, "add", "s", 2).Read(1, "s", new[] { 1 }).Ok(2)
            .Read(1, "s", new[] { 2, 1 }));

        Assert.Equal(Verdict.Valid, result.Verdict);
    }

    [Fact]
    public void Check_ReadMissingACompletedAdd_IsInvalid()
    {
        var result = Check(new HistoryBuilder().Agent(2, "auditor").Do(1, "add", "s", 1).Do(1, "add", "s", 2).Read(2, "s", new[] { 1 }));

        Assert.Equal(Verdict.Invalid, result.Verdict);
        Assert.Contains("process 2 (agent auditor) read [1] from s", result.Explanation, StringComparison.Ordinal);
        Assert.Contains("which lacks 2", result.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_ReadWithElementNeverAdded_IsInvalid()
    {
        var result = Check(new HistoryBuilder().Do(1, "add", "s", 1).Read(2, "s", new[] { 1, 9 }));

        Assert.Equal(Verdict.Invalid, result.Verdict);
        Assert.Contains("contains 9, but nothing added 9", result.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_ElementDisappearing_IsInvalid()
    {
        var result = Check(new HistoryBuilder().Invoke(1, "add", "s", 1).Read(2, "s", new[] { 1 }).Read(3, "s", HistoryBuilder.J("[]")).Ok(1));

        Assert.Equal(Verdict.Invalid, result.Verdict);
        Assert.Contains("elements are never removed", result.Explanation, StringComparison.Ordinal);
    }
}

public sealed class QueueModelTests
{
    private static LinearizabilityResult Check(HistoryBuilder builder) =>
        LinearizabilityChecker.Check(builder.Build(), new LinearizabilityOptions { Model = LinearizabilityModel.Queue }, TestContext.Current.CancellationToken);

    [Fact]
    public void Check_FifoOrder_IsValid()
    {
        var result = Check(new HistoryBuilder()
            .Invoke(1, "dequeue", "q").Ok(1, HistoryBuilder.J("null"))
            .Do(1, "enqueue", "q", "a")
            .Do(2, "enqueue", "q", "b")
            .Invoke(3, "dequeue", "q").Ok(3, "a")
            .Invoke(1, "dequeue", "q").Ok(1, "b"));

        Assert.Equal(Verdict.Valid, result.Verdict);
    }

    [Fact]
    public void Check_ConcurrentEnqueues_MayDequeueInEitherOrder()
    {
        var result = Check(new HistoryBuilder()
            .Invoke(1, "enqueue", "q", "a").Invoke(2, "enqueue", "q", "b").Ok(1).Ok(2)
            .Invoke(3, "dequeue", "q").Ok(3, "b")
            .Invoke(3, "dequeue", "q").Ok(3, "a"));

        Assert.Equal(Verdict.Valid, result.Verdict);
    }

    [Fact]
    public void Check_DuplicateDequeue_IsInvalid()
    {
        var builder = new HistoryBuilder().Agent(2, "worker-1").Agent(3, "worker-2")
            .Do(1, "enqueue", "jobs", "job-7")
            .Invoke(2, "dequeue", "jobs").Invoke(3, "dequeue", "jobs").Ok(2, "job-7").Ok(3, "job-7");

        var result = Check(builder);

        Assert.Equal(Verdict.Invalid, result.Verdict);
        Assert.Contains("\"job-7\" was dequeued 2 times", result.Explanation, StringComparison.Ordinal);
        Assert.Contains("a duplicate dequeue", result.Explanation, StringComparison.Ordinal);
        Assert.Contains("worker-1", result.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_FifoViolation_IsInvalid()
    {
        var result = Check(new HistoryBuilder().Do(1, "enqueue", "q", "a").Do(1, "enqueue", "q", "b").Invoke(2, "dequeue", "q").Ok(2, "b"));

        Assert.Equal(Verdict.Invalid, result.Verdict);
        Assert.Contains("FIFO order was broken", result.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_DequeueOfNeverEnqueuedElement_IsInvalid()
    {
        var result = Check(new HistoryBuilder().Invoke(2, "dequeue", "q").Ok(2, "ghost"));

        Assert.Equal(Verdict.Invalid, result.Verdict);
        Assert.Contains("was never enqueued", result.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_EmptyDequeueWhileElementWaits_IsInvalid()
    {
        var result = Check(new HistoryBuilder().Do(1, "enqueue", "q", "a").Invoke(2, "dequeue", "q").Ok(2, HistoryBuilder.J("null")));

        Assert.Equal(Verdict.Invalid, result.Verdict);
        Assert.Contains("found q empty", result.Explanation, StringComparison.Ordinal);
    }
}
