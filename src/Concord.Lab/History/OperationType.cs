namespace Concord.Lab.History;

/// <summary>The kind of a history event, with Jepsen's meaning.</summary>
public enum OperationType
{
    /// <summary>A process started an operation (<c>"invoke"</c>).</summary>
    Invoke,

    /// <summary>The operation completed and took effect (<c>"ok"</c>).</summary>
    Ok,

    /// <summary>The operation completed and is known not to have taken effect (<c>"fail"</c>).</summary>
    Fail,

    /// <summary>The outcome is unknown: the operation may or may not have taken effect (<c>"info"</c>), for example a reply was lost.</summary>
    Info,
}

/// <summary>Conversions between <see cref="OperationType"/> and its wire names.</summary>
public static class OperationTypes
{
    /// <summary>The wire name of <paramref name="type"/>: <c>invoke</c>, <c>ok</c>, <c>fail</c> or <c>info</c>.</summary>
    public static string ToWireName(this OperationType type) => type switch
    {
        OperationType.Invoke => "invoke",
        OperationType.Ok => "ok",
        OperationType.Fail => "fail",
        OperationType.Info => "info",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Unknown operation type."),
    };

    /// <summary>Parses a wire name; returns false for anything but <c>invoke</c>, <c>ok</c>, <c>fail</c>, <c>info</c>.</summary>
    public static bool TryParse(string? name, out OperationType type)
    {
        switch (name)
        {
            case "invoke": type = OperationType.Invoke; return true;
            case "ok": type = OperationType.Ok; return true;
            case "fail": type = OperationType.Fail; return true;
            case "info": type = OperationType.Info; return true;
            default: type = default; return false;
        }
    }
}
