using System.Collections.Concurrent;
using StackExchange.Redis;

namespace Concord.Redis;

/// <summary>
/// Native work that must commit atomically with a <see cref="RedisStore"/> transaction (a queue ack with its effects):
/// Lua that runs inside the store's commit script. <see cref="Lua"/> defines two local functions: <c>hook_guard()</c>,
/// which runs before anything is written and returns nil to go ahead or a string to refuse (nothing is written, the
/// store throws <see cref="CommitHookRefusedException"/> with that text); and <c>hook_apply()</c>, which runs after the
/// commit's own writes, in the same script, only when the commit applied. The hook reads its arguments from the Lua
/// table <c>HA</c> (<see cref="Args"/>, 1-based) and may use <c>KEYS[5..]</c> (<see cref="Keys"/>).
/// </summary>
/// <remarks>
/// The guard runs before the commit's revision check, so a refusal is final (it does not depend on the revision); a
/// commit that lost the revision race is re-evaluated and the guard runs again. Immutable; hooks with the same
/// <see cref="Lua"/> share one composed script (cached by Redis as one SHA).
/// </remarks>
internal sealed class RedisCommitHook
{
    private static readonly ConcurrentDictionary<(string Hook, string Commit), string> s_scripts = new();

    public required string Lua { get; init; }

    public IReadOnlyList<RedisKey> Keys { get; init; } = [];

    public required IReadOnlyList<RedisValue> Args { get; init; }

    /// <summary>
    /// The commit script wrapped with the hook. The hook's arguments travel at the end of ARGV followed by their count,
    /// so the commit script's own ARGV indexes are unchanged.
    /// </summary>
    public string Compose(string commitScript) => s_scripts.GetOrAdd((Lua, commitScript), static k => $$"""
        local HN = tonumber(ARGV[#ARGV])
        local HA = {}
        for i = 1, HN do HA[i] = ARGV[#ARGV - HN - 1 + i] end
        {{k.Hook}}
        local refused = hook_guard()
        if refused then return refused end
        local function concord_commit()
        {{k.Commit}}
        end
        local ok = concord_commit()
        if ok == 1 then hook_apply() end
        return ok
        """);
}

/// <summary>A <see cref="RedisCommitHook"/>'s guard refused the commit; nothing was written.</summary>
internal sealed class CommitHookRefusedException(string reason) : Exception(reason)
{
    /// <summary>The store revision the refused commit was evaluated at.</summary>
    public long Revision { get; init; }
}
