using Concord.Lab.Checkers;
using Concord.Lab.Checkers.Isolation;
using Concord.Lab.History;
using Concord.Lab.Tests.Support;

namespace Concord.Lab.Tests.Checkers.Isolation;

public sealed class IsolationCheckerTests
{
    private static IsolationReport Check(HistoryBuilder builder, IsolationOptions? options = null) =>
        IsolationChecker.Check(builder.Build(), options, TestContext.Current.CancellationToken);

    private static Anomaly Only(IsolationReport report, AnomalyType type)
    {
        Assert.Equal(Verdict.Invalid, report.Verdict);
        return Assert.Single(report.Anomalies, a => a.Type == type);
    }

    [Fact]
    public void Check_SerialListAppend_IsValid()
    {
        var report = Check(new HistoryBuilder()
            .Txn(1, """[["append","x",1],["r","x",null]]""", """[["append","x",1],["r","x",[1]]]""")
            .Txn(2, """[["r","x",null],["append","x",2],["append","y",1]]""", """[["r","x",[1]],["append","x",2],["append","y",1]]""")
            .Txn(1, """[["r","x",null],["r","y",null]]""", """[["r","x",[1,2]],["r","y",[1]]]"""));

        Assert.Equal(Verdict.Valid, report.Verdict);
        Assert.Equal("list-append", report.Workload);
        Assert.Empty(report.Anomalies);
        Assert.StartsWith("No anomaly: the history is serializable", report.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_SerialRegistersWithVersions_IsValid()
    {
        var report = Check(new HistoryBuilder()
            .Txn(1, """[["w","x",1]]""", """[["w","x",1,1]]""")
            .Txn(2, """[["r","x",null],["w","x",2]]""", """[["r","x",1,1],["w","x",2,2]]""")
            .Txn(1, """[["r","x",null],["r","y",null]]""", """[["r","x",2,2],["r","y",null,0]]"""));

        Assert.Equal(Verdict.Valid, report.Verdict);
        Assert.Equal("rw-register", report.Workload);
    }

    [Fact]
    public void Check_G0_WriteCycle()
    {
        // T1 appends x then y; T2 appends x then y; the orders of x and y disagree.
        var report = Check(new HistoryBuilder()
            .Txn(1, """[["append","x",1],["append","y",1]]""", """[["append","x",1],["append","y",1]]""")
            .Txn(2, """[["append","x",2],["append","y",2]]""", """[["append","x",2],["append","y",2]]""")
            .Txn(3, """[["r","x",null],["r","y",null]]""", """[["r","x",[1,2]],["r","y",[2,1]]]"""));

        var g0 = Only(report, AnomalyType.G0);
        Assert.Equal("G0", g0.Name);
        Assert.Equal([1L, 3L], g0.Transactions);
        Assert.All(g0.Cycle, e => Assert.Equal(DependencyKind.WW, e.Kind));
        Assert.Contains("T1 (process 1) appended 1 to x, and T3 (process 2) appended 2 right after it", g0.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_G1a_AbortedRead()
    {
        var report = Check(new HistoryBuilder().Agent(1, "fees").Agent(2, "compliance")
            .Txn(1, """[["append","x",1]]""", null, OperationType.Fail)
            .Txn(2, """[["r","x",null]]""", """[["r","x",[1]]]"""));

        var g1a = Only(report, AnomalyType.G1a);
        Assert.Contains("T3 (compliance) read x as [1], which includes 1, appended by T1 (fees), a transaction that failed", g1a.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_InfoTransactionWriteSeen_IsNotAnAbortedRead()
    {
        var report = Check(new HistoryBuilder()
            .Txn(1, """[["w","x",1]]""", null, OperationType.Info)
            .Txn(2, """[["r","x",null]]""", """[["r","x",1,1]]"""));

        Assert.Equal(Verdict.Valid, report.Verdict);
    }

    [Fact]
    public void Check_G1b_IntermediateRead()
    {
        var report = Check(new HistoryBuilder()
            .Txn(1, """[["w","x",1],["w","x",2]]""", """[["w","x",1],["w","x",2,1]]""")
            .Txn(2, """[["r","x",null]]""", """[["r","x",1]]"""));

        var g1b = Only(report, AnomalyType.G1b);
        Assert.Contains("an intermediate value of T1 (process 1), which went on to write 2", g1b.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_G1b_IntermediateListRead()
    {
        var report = Check(new HistoryBuilder()
            .Txn(1, """[["append","x",1],["append","x",2]]""", """[["append","x",1],["append","x",2]]""")
            .Txn(2, """[["r","x",null]]""", """[["r","x",[1]]]"""));

        Only(report, AnomalyType.G1b);
    }

    [Fact]
    public void Check_G1c_CircularInformationFlow()
    {
        // Each transaction reads the other's write.
        var report = Check(new HistoryBuilder().Agent(1, "fees").Agent(2, "compliance")
            .Invoke(1, "txn", null, HistoryBuilder.J("""[["w","x",1],["r","y",null]]"""))
            .Invoke(2, "txn", null, HistoryBuilder.J("""[["w","y",1],["r","x",null]]"""))
            .Ok(1, HistoryBuilder.J("""[["w","x",1,1],["r","y",1,1]]"""))
            .Ok(2, HistoryBuilder.J("""[["w","y",1,1],["r","x",1,1]]""")));

        var g1c = Only(report, AnomalyType.G1c);
        Assert.All(g1c.Cycle, e => Assert.Equal(DependencyKind.WR, e.Kind));
        Assert.Contains("T3 (compliance) read version 1 of x, written by T2 (fees) (wr)", g1c.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_GSingle_ReadSkew()
    {
        // T2 reads x before T1's write but y after it.
        var report = Check(new HistoryBuilder()
            .Txn(0, """[["w","x",1],["w","y",1]]""", """[["w","x",1,1],["w","y",1,1]]""")
            .Invoke(1, "txn", null, HistoryBuilder.J("""[["w","x",2],["w","y",2]]"""))
            .Invoke(2, "txn", null, HistoryBuilder.J("""[["r","x",null],["r","y",null]]"""))
            .Ok(1, HistoryBuilder.J("""[["w","x",2,2],["w","y",2,2]]"""))
            .Ok(2, HistoryBuilder.J("""[["r","x",1,1],["r","y",2,2]]""")));

        var single = Only(report, AnomalyType.GSingle);
        Assert.Equal("G-single", single.Name);
        Assert.Equal(1, single.Cycle.Count(e => e.Kind == DependencyKind.RW));
        Assert.Contains("read version 1 of x, which T4 (process 1) then replaced with version 2 (rw)", single.Explanation, StringComparison.Ordinal);
        Assert.DoesNotContain(report.Anomalies, a => a.Type == AnomalyType.G2Item);
    }

    [Fact]
    public void Check_G2Item_WriteSkew()
    {
        // Both read x and y at version 0 and each writes a different one: two anti-dependencies.
        var report = Check(new HistoryBuilder().Agent(1, "on-call-a").Agent(2, "on-call-b")
            .Invoke(1, "txn", null, HistoryBuilder.J("""[["r","x",null],["r","y",null],["w","x",1]]"""))
            .Invoke(2, "txn", null, HistoryBuilder.J("""[["r","x",null],["r","y",null],["w","y",1]]"""))
            .Ok(1, HistoryBuilder.J("""[["r","x",null,0],["r","y",null,0],["w","x",1,1]]"""))
            .Ok(2, HistoryBuilder.J("""[["r","x",null,0],["r","y",null,0],["w","y",1,1]]""")));

        var g2 = Only(report, AnomalyType.G2Item);
        Assert.Equal(2, g2.Cycle.Count(e => e.Kind == DependencyKind.RW));
        Assert.Contains("read x while it was absent (version 0)", g2.Explanation, StringComparison.Ordinal);
        Assert.DoesNotContain(report.Anomalies, a => a.Type == AnomalyType.LostUpdate);
    }

    [Fact]
    public void Check_LostUpdate_IsReportedExplicitlyWithVersions()
    {
        var report = Check(new HistoryBuilder().Agent(1, "compliance").Agent(2, "fees")
            .Txn(0, """[["w","acct/42",30]]""", """[["w","acct/42",30,3]]""")
            .Invoke(1, "txn", null, HistoryBuilder.J("""[["r","acct/42",null],["w","acct/42",40]]"""))
            .Invoke(2, "txn", null, HistoryBuilder.J("""[["r","acct/42",null],["w","acct/42",50]]"""))
            .Ok(1, HistoryBuilder.J("""[["r","acct/42",30,3],["w","acct/42",40,4]]"""))
            .Ok(2, HistoryBuilder.J("""[["r","acct/42",30,3],["w","acct/42",50,5]]""")));

        var lost = Only(report, AnomalyType.LostUpdate);
        Assert.Equal([4L, 5L], lost.Transactions);
        Assert.StartsWith("fees overwrote version 3 of acct/42 with version 5, but compliance had already replaced version 3 with version 4", lost.Explanation, StringComparison.Ordinal);
        Assert.Contains("compliance's update is lost", lost.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_LostUpdate_OnLists()
    {
        var report = Check(new HistoryBuilder()
            .Invoke(1, "txn", null, HistoryBuilder.J("""[["r","x",null],["append","x",1]]"""))
            .Invoke(2, "txn", null, HistoryBuilder.J("""[["r","x",null],["append","x",2]]"""))
            .Ok(1, HistoryBuilder.J("""[["r","x",[]],["append","x",1]]"""))
            .Ok(2, HistoryBuilder.J("""[["r","x",[]],["append","x",2]]"""))
            .Txn(3, """[["r","x",null]]""", """[["r","x",[1,2]]]"""));

        var lost = Only(report, AnomalyType.LostUpdate);
        Assert.Contains("all read x when it was empty", lost.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_Internal_RegisterReadDisagreesWithOwnWrite()
    {
        var report = Check(new HistoryBuilder().Agent(1, "fees")
            .Txn(1, """[["w","x",1],["r","x",null]]""", """[["w","x",1,1],["r","x",null,0]]"""));

        var anomaly = Only(report, AnomalyType.Internal);
        Assert.Equal("T1 (fees) wrote 1 to x and then read null from it in the same transaction.", anomaly.Explanation);
    }

    [Fact]
    public void Check_Internal_ListReadDisagreesWithOwnEarlierRead()
    {
        var report = Check(new HistoryBuilder()
            .Txn(2, """[["append","x",1]]""", """[["append","x",1]]""")
            .Txn(1, """[["r","x",null],["append","x",2],["r","x",null]]""", """[["r","x",[1]],["append","x",2],["r","x",[1]]]"""));

        var anomaly = Only(report, AnomalyType.Internal);
        Assert.Contains("its own earlier read and appends imply [1,2]", anomaly.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_DuplicateElements()
    {
        var report = Check(new HistoryBuilder()
            .Txn(1, """[["append","x",1]]""", """[["append","x",1]]""")
            .Txn(2, """[["r","x",null]]""", """[["r","x",[1,1]]]"""));

        Assert.Contains("contains 1 more than once", Only(report, AnomalyType.DuplicateElements).Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_DuplicateVersion_TwoCommitsClaimTheSameVersion()
    {
        var report = Check(new HistoryBuilder()
            .Txn(1, """[["w","x",1]]""", """[["w","x",1,1]]""")
            .Txn(2, """[["w","x",2]]""", """[["w","x",2,1]]"""));

        Assert.Contains("both committed version 1 of x", Only(report, AnomalyType.DuplicateElements).Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_GarbageRead_ListAndRegister()
    {
        var list = Check(new HistoryBuilder().Txn(1, """[["r","x",null]]""", """[["r","x",[9]]]"""));
        var register = Check(new HistoryBuilder().Txn(1, """[["w","y",1]]""", """[["w","y",1,1]]""").Txn(2, """[["r","y",null]]""", """[["r","y",7,1]]"""));

        Assert.Contains("no transaction ever appended 9 to x", Only(list, AnomalyType.GarbageRead).Explanation, StringComparison.Ordinal);
        Assert.Contains("read version 1 of y as 7, but version 1 was written as 1", Only(register, AnomalyType.GarbageRead).Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_IncompatibleOrder()
    {
        var report = Check(new HistoryBuilder()
            .Txn(1, """[["append","x",1]]""", """[["append","x",1]]""")
            .Txn(1, """[["append","x",2]]""", """[["append","x",2]]""")
            .Txn(2, """[["r","x",null]]""", """[["r","x",[1,2]]]""")
            .Txn(3, """[["r","x",null]]""", """[["r","x",[2]]]"""));

        Assert.Contains("neither is a prefix of the other", Only(report, AnomalyType.IncompatibleOrder).Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_StaleReadAcrossTime_IsOnlyAnAnomalyWithRealTime()
    {
        // T1 commits x=1; later (in real time) T2 reads x as absent. Serializable (T2 before T1), not strictly.
        var builder = new HistoryBuilder()
            .Txn(1, """[["w","x",1]]""", """[["w","x",1,1]]""")
            .Txn(2, """[["r","x",null]]""", """[["r","x",null,0]]""");

        var serializable = Check(builder);
        var strict = Check(builder, new IsolationOptions { RealTime = true });

        Assert.Equal(Verdict.Valid, serializable.Verdict);
        var anomaly = Only(strict, AnomalyType.GSingle);
        Assert.Equal("G-single-realtime", anomaly.Name);
        Assert.Contains(anomaly.Cycle, e => e.Kind == DependencyKind.RealTime);
        Assert.StartsWith("NOT strict serializable", strict.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_ProcessOrder_FindsSessionViolation()
    {
        var builder = new HistoryBuilder()
            .Txn(1, """[["w","x",1]]""", """[["w","x",1,1]]""")
            .Txn(1, """[["r","x",null]]""", """[["r","x",null,0]]""");

        var anomaly = Only(Check(builder, new IsolationOptions { ProcessOrder = true }), AnomalyType.GSingle);

        Assert.Equal("G-single-process", anomaly.Name);
    }

    [Fact]
    public void Check_RegisterReadsWithoutVersions_AddANote()
    {
        var report = Check(new HistoryBuilder()
            .Txn(1, """[["w","x",1]]""", """[["w","x",1]]""")
            .Txn(2, """[["r","x",null]]""", """[["r","x",1]]"""));

        Assert.Equal(Verdict.Valid, report.Verdict);
        Assert.Contains(report.Notes, n => n.Contains("carried no version", StringComparison.Ordinal));
    }

    [Fact]
    public void Check_BadInput_IsRejected()
    {
        var nonTxn = new HistoryBuilder().Write(1, "x", 1).Build();
        var duplicateAppend = new HistoryBuilder()
            .Txn(1, """[["append","x",1]]""", """[["append","x",1]]""")
            .Txn(2, """[["append","x",1]]""", """[["append","x",1]]""").Build();
        var mixedKey = new HistoryBuilder().Txn(1, """[["append","x",1],["w","x",2]]""", """[["append","x",1],["w","x",2]]""").Build();

        var token = TestContext.Current.CancellationToken;
        Assert.Contains("only accepts txn operations", Assert.Throws<HistoryFormatException>(() => IsolationChecker.Check(nonTxn, null, token)).Message, StringComparison.Ordinal);
        Assert.Contains("appended to x twice", Assert.Throws<HistoryFormatException>(() => IsolationChecker.Check(duplicateAppend, null, token)).Message, StringComparison.Ordinal);
        Assert.Contains("both appended to and written", Assert.Throws<HistoryFormatException>(() => IsolationChecker.Check(mixedKey, null, token)).Message, StringComparison.Ordinal);
    }
}
