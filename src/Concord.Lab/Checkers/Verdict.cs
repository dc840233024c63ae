namespace Concord.Lab.Checkers;

/// <summary>The outcome of a check.</summary>
public enum Verdict
{
    /// <summary>The history satisfies the consistency model.</summary>
    Valid,

    /// <summary>The history violates the consistency model; the result explains how.</summary>
    Invalid,

    /// <summary>The checker could not decide (timeout or cancellation) and found no violation so far.</summary>
    Unknown,
}

/// <summary>Helpers for <see cref="Verdict"/>.</summary>
public static class Verdicts
{
    /// <summary>Combines verdicts of parts: any <see cref="Verdict.Invalid"/> wins, then any <see cref="Verdict.Unknown"/>, else <see cref="Verdict.Valid"/>.</summary>
    public static Verdict Combine(IEnumerable<Verdict> verdicts)
    {
        ArgumentNullException.ThrowIfNull(verdicts);
        var result = Verdict.Valid;
        foreach (var verdict in verdicts)
        {
            if (verdict == Verdict.Invalid)
            {
                return Verdict.Invalid;
            }

            if (verdict == Verdict.Unknown)
            {
                result = Verdict.Unknown;
            }
        }

        return result;
    }

    /// <summary>Lower-case name: <c>valid</c>, <c>invalid</c>, <c>unknown</c>.</summary>
    public static string ToWireName(this Verdict verdict) => verdict switch
    {
        Verdict.Valid => "valid",
        Verdict.Invalid => "invalid",
        _ => "unknown",
    };
}
