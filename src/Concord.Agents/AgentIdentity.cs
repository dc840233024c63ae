namespace Concord.Agents;

/// <summary>
/// Who an agent is. The <see cref="Id"/> is recorded as the writer of every record, queue task and event the agent
/// produces, keys its causal contexts, and tags its spans (<c>gen_ai.agent.id</c>); <see cref="Name"/> is for people
/// (<c>gen_ai.agent.name</c>).
/// </summary>
/// <param name="Id">Stable id: 1–100 characters, no whitespace or control characters.</param>
/// <param name="Name">Display name. <value>Default: the id.</value></param>
/// <param name="Description">What the agent does, for dashboards and prompts. <value>Default: null.</value></param>
public sealed record AgentIdentity(string Id, string? Name = null, string? Description = null)
{
    /// <summary>The display name, or the id when none was given.</summary>
    public string DisplayName => string.IsNullOrWhiteSpace(Name) ? Id : Name;

    /// <summary>Throws <see cref="ArgumentException"/> when <see cref="Id"/> is not a valid agent id.</summary>
    public void Validate()
    {
        if (string.IsNullOrEmpty(Id) || Id.Length > 100) throw new ArgumentException("An agent id must have 1 to 100 characters", nameof(Id));
        foreach (var c in Id)
        {
            if (char.IsWhiteSpace(c) || char.IsControl(c)) throw new ArgumentException($"Agent id '{Id}' must not contain whitespace or control characters", nameof(Id));
        }
    }

    /// <inheritdoc />
    public override string ToString() => Name is null ? Id : $"{Name} ({Id})";
}
