namespace Concord.Lab.Checkers.Isolation;

/// <summary>Settings of <see cref="IsolationChecker"/>.</summary>
public sealed class IsolationOptions
{
    /// <summary>Add real-time edges (a transaction that completed before another began precedes it): checks strict serializability.</summary>
    /// <value>Defaults to <see langword="false"/> (serializability).</value>
    public bool RealTime { get; set; }

    /// <summary>Add process-order edges (each process's committed transactions in order): checks strong session serializability.</summary>
    /// <value>Defaults to <see langword="false"/>.</value>
    public bool ProcessOrder { get; set; }

    /// <summary>Time allowed for the cycle search; if it runs out, cycles not yet found are missed and the verdict is <see cref="Verdict.Unknown"/> unless an anomaly was already found.</summary>
    /// <value>Defaults to <see langword="null"/>: no limit.</value>
    public TimeSpan? Timeout { get; set; }

    /// <summary>Clock for <see cref="Timeout"/>.</summary>
    /// <value>Defaults to <see cref="TimeProvider.System"/>.</value>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Upper bound on graph nodes visited per strongly connected component while looking for a specific cycle shape.</summary>
    /// <value>Defaults to 2,000,000.</value>
    public int MaxSearchVisitsPerComponent { get; set; } = 2_000_000;

    internal void Validate()
    {
        if (Timeout is { } timeout && timeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(Timeout), timeout, "Timeout must be positive.");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(MaxSearchVisitsPerComponent, 1);
        ArgumentNullException.ThrowIfNull(TimeProvider);
    }
}

/// <summary>The outcome of an isolation check.</summary>
/// <remarks>Immutable and thread-safe.</remarks>
public sealed class IsolationReport
{
    internal IsolationReport(Verdict verdict, IReadOnlyList<Anomaly> anomalies, int transactionCount, string workload, IReadOnlyList<string> notes, string explanation)
    {
        Verdict = verdict;
        Anomalies = anomalies;
        TransactionCount = transactionCount;
        Workload = workload;
        Notes = notes;
        Explanation = explanation;
    }

    /// <summary><see cref="Verdict.Invalid"/> when any anomaly was found; <see cref="Verdict.Unknown"/> when the search was cut short without one.</summary>
    public Verdict Verdict { get; }

    /// <summary>The anomalies, non-cycle ones first, then cycles by component.</summary>
    public IReadOnlyList<Anomaly> Anomalies { get; }

    /// <summary>Transactions in the history (all outcomes).</summary>
    public int TransactionCount { get; }

    /// <summary><c>list-append</c>, <c>rw-register</c> or <c>mixed</c>.</summary>
    public string Workload { get; }

    /// <summary>Limits of what could be checked (for example register reads without versions).</summary>
    public IReadOnlyList<string> Notes { get; }

    /// <summary>A summary followed by every anomaly's explanation.</summary>
    public string Explanation { get; }
}
