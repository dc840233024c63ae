using System.Text.Json;

namespace Concord.Agents.Chat;

/// <summary>
/// Decides what a <see cref="SimulatedChatClient"/> answers: a pure function of the conversation so far (the prompt, the
/// tool results), like a model at temperature 0.
/// </summary>
public abstract class SimulatedScript
{
    /// <summary>The next answer.</summary>
    public abstract SimulatedStep Next(SimulatedTurn turn);

    /// <summary>A script from a function.</summary>
    public static SimulatedScript From(Func<SimulatedTurn, SimulatedStep> next)
    {
        ArgumentNullException.ThrowIfNull(next);
        return new FuncScript(next);
    }

    /// <summary>
    /// A fixed sequence: the n-th answer of a conversation is <paramref name="steps"/>[n] applied to the turn; past the end,
    /// the last step repeats.
    /// </summary>
    public static SimulatedScript Sequence(params Func<SimulatedTurn, SimulatedStep>[] steps)
    {
        ArgumentNullException.ThrowIfNull(steps);
        if (steps.Length == 0) throw new ArgumentException("A sequence needs at least one step", nameof(steps));
        return new FuncScript(turn => steps[Math.Min(turn.Step, steps.Length - 1)](turn));
    }

    /// <summary>
    /// The read-version-write discipline a well-prompted model follows with <see cref="Tools.ConcordTools"/>: read the key,
    /// write <paramref name="change"/>(value) with the version read; on a version conflict, apply the change again to the
    /// current value the conflict returned and write with its version; answer once the write is applied (or after
    /// <paramref name="maxConflicts"/> conflicts, or an error).
    /// </summary>
    /// <param name="key">The key to update, from the turn (e.g. parsed from the prompt).</param>
    /// <param name="change">The new value from the current one (null when the key does not exist).</param>
    /// <param name="done">The final answer once written; receives the write's result. <value>Default: "Updated {key} to version n."</value></param>
    /// <param name="toolPrefix">Prefix of the Concord tool names. <value>Default: <c>concord_</c>.</value></param>
    /// <param name="maxConflicts">Conflicts before giving up. <value>Default: 10.</value></param>
    public static SimulatedScript ReadModifyWrite(Func<SimulatedTurn, string> key, Func<SimulatedTurn, JsonElement?, JsonElement> change,
        Func<SimulatedTurn, JsonElement, string>? done = null, string toolPrefix = "concord_", int maxConflicts = 10)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(change);
        return new FuncScript(turn =>
        {
            var k = key(turn);
            if (turn.LastToolResult is not { } last) return SimulatedStep.Call(toolPrefix + "read", new { key = k });
            var ok = last.ValueKind == JsonValueKind.Object && last.TryGetProperty("ok", out var okProp) && okProp.ValueKind == JsonValueKind.True;
            if (ok && last.TryGetProperty("found", out var found))
            {
                JsonElement? value = found.ValueKind == JsonValueKind.True ? last.GetProperty("value") : null;
                return SimulatedStep.Call(toolPrefix + "write", new { key = k, value = change(turn, value), expectedVersion = last.GetProperty("version").GetInt64() });
            }
            if (ok) return SimulatedStep.Reply(done?.Invoke(turn, last) ?? $"Updated {k} to version {last.GetProperty("version").GetInt64()}.");
            if (last.TryGetProperty("conflict", out var conflict) && conflict.GetString() == "version_mismatch")
            {
                var conflicts = turn.ToolResults.Count(r => r.ValueKind == JsonValueKind.Object && r.TryGetProperty("conflict", out _));
                if (conflicts > maxConflicts) return SimulatedStep.Reply($"I could not update {k}: it kept changing ({conflicts} conflicts).");
                var current = last.GetProperty("currentValue");
                JsonElement? value = current.ValueKind == JsonValueKind.Null ? null : current;
                return SimulatedStep.Call(toolPrefix + "write", new { key = k, value = change(turn, value), expectedVersion = last.GetProperty("currentVersion").GetInt64() });
            }
            var message = last.ValueKind == JsonValueKind.Object && last.TryGetProperty("message", out var m) ? m.GetString() : last.GetRawText();
            return SimulatedStep.Reply($"I could not update {k}: {message}");
        });
    }

    private sealed class FuncScript(Func<SimulatedTurn, SimulatedStep> next) : SimulatedScript
    {
        public override SimulatedStep Next(SimulatedTurn turn) => next(turn);
    }
}
