using System.Text.Json;

namespace Concord.Lab.History;

/// <summary>
/// The first line of a history file: <c>{"meta":{"seed":…,"strategy":…,"workload":…,"model":…, …}}</c>.
/// Known fields are typed; any other field is kept, in order, in <see cref="Fields"/>.
/// </summary>
/// <remarks>Instances are immutable and safe to share between threads.</remarks>
public sealed class HistoryMeta
{
    /// <summary>An empty meta line.</summary>
    public static HistoryMeta Empty { get; } = new();

    /// <summary>The seed string that reproduces the run, when there is one.</summary>
    public string? Seed { get; init; }

    /// <summary>The scheduling strategy (for example <c>random</c>, <c>pct</c>), when the run was scheduled.</summary>
    public string? Strategy { get; init; }

    /// <summary>The workload or scenario name.</summary>
    public string? Workload { get; init; }

    /// <summary>The checker model the history is meant for: <c>register</c>, <c>cas-register</c>, <c>counter</c>, <c>set</c>, <c>queue</c> or <c>txn</c>.</summary>
    public string? Model { get; init; }

    /// <summary>Free-form fields, in file order.</summary>
    /// <value>Empty by default.</value>
    public IReadOnlyList<KeyValuePair<string, JsonElement>> Fields { get; init; } = [];

    /// <summary>True when no field is set.</summary>
    public bool IsEmpty => Seed is null && Strategy is null && Workload is null && Model is null && Fields.Count == 0;
}
