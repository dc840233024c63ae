namespace Concord.Lab.Checkers.Linearizability;

/// <summary>The sequential specification a single-key history is checked against.</summary>
public enum LinearizabilityModel
{
    /// <summary>A register with <c>read</c> and blind <c>write</c>; initially <c>null</c>.</summary>
    Register,

    /// <summary>A register with <c>read</c>, <c>write</c> and <c>cas</c> (value <c>[expected, new]</c>); initially <c>null</c>.</summary>
    CasRegister,

    /// <summary>A counter with <c>increment</c> (or Jepsen's <c>add</c>) of an integer and <c>read</c>; initially 0.</summary>
    Counter,

    /// <summary>A grow-only set with <c>add</c> of an element and <c>read</c> of all elements; initially empty.</summary>
    Set,

    /// <summary>A FIFO queue with <c>enqueue</c> and <c>dequeue</c> (completing with the element, or <c>null</c> when empty); initially empty.</summary>
    Queue,
}

/// <summary>Names of <see cref="LinearizabilityModel"/> values as used on the command line and in meta lines.</summary>
public static class LinearizabilityModels
{
    /// <summary>The name of <paramref name="model"/>: <c>register</c>, <c>cas-register</c>, <c>counter</c>, <c>set</c> or <c>queue</c>.</summary>
    public static string ToWireName(this LinearizabilityModel model) => model switch
    {
        LinearizabilityModel.Register => "register",
        LinearizabilityModel.CasRegister => "cas-register",
        LinearizabilityModel.Counter => "counter",
        LinearizabilityModel.Set => "set",
        LinearizabilityModel.Queue => "queue",
        _ => throw new ArgumentOutOfRangeException(nameof(model), model, "Unknown model."),
    };

    /// <summary>Parses a model name (case-insensitive; <c>cas</c> is accepted for <c>cas-register</c>).</summary>
    public static bool TryParse(string? name, out LinearizabilityModel model)
    {
        switch (name?.Trim().ToLowerInvariant())
        {
            case "register": model = LinearizabilityModel.Register; return true;
            case "cas-register" or "cas": model = LinearizabilityModel.CasRegister; return true;
            case "counter": model = LinearizabilityModel.Counter; return true;
            case "set": model = LinearizabilityModel.Set; return true;
            case "queue" or "fifo-queue": model = LinearizabilityModel.Queue; return true;
            default: model = default; return false;
        }
    }
}
