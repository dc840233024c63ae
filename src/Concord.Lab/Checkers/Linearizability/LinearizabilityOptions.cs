namespace Concord.Lab.Checkers.Linearizability;

/// <summary>Settings of <see cref="LinearizabilityChecker"/>.</summary>
public sealed class LinearizabilityOptions
{
    /// <summary>The sequential model.</summary>
    /// <value>Defaults to <see cref="LinearizabilityModel.CasRegister"/>, which also accepts plain register histories.</value>
    public LinearizabilityModel Model { get; set; } = LinearizabilityModel.CasRegister;

    /// <summary>Total time allowed for the check, explanations included; keys not decided by then are <see cref="Verdict.Unknown"/>.</summary>
    /// <value>Defaults to <see langword="null"/>: no limit (cancellation still works).</value>
    public TimeSpan? Timeout { get; set; }

    /// <summary>Clock for <see cref="Timeout"/>.</summary>
    /// <value>Defaults to <see cref="TimeProvider.System"/>.</value>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>How many keys are checked at once.</summary>
    /// <value>Defaults to <see cref="Environment.ProcessorCount"/>.</value>
    public int MaxDegreeOfParallelism { get; set; } = Environment.ProcessorCount;

    /// <summary>Whether to shrink each failure to a smallest window and explain it. Shrinking re-runs the search on sub-histories.</summary>
    /// <value>Defaults to <see langword="true"/>.</value>
    public bool ExplainFailures { get; set; } = true;

    /// <summary>Upper bound on searches spent shrinking one key's failure.</summary>
    /// <value>Defaults to 400.</value>
    public int MaxShrinkSearches { get; set; } = 400;

    internal void Validate()
    {
        if (Timeout is { } timeout && timeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(Timeout), timeout, "Timeout must be positive.");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(MaxDegreeOfParallelism, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(MaxShrinkSearches);
        ArgumentNullException.ThrowIfNull(TimeProvider);
    }
}
