namespace Concord.Redis;

/// <summary>
/// The Lua of <see cref="RedisQueueService"/>. Every state change of a queue is one script, so it is atomic; the ack
/// with effects runs <see cref="QueueHook"/> inside <see cref="RedisStore"/>'s commit script.
/// </summary>
/// <remarks>
/// <para>Key layout under the queue's base <c>B = {prefix}:q:{ns}/{queue}|</c> (a queue name cannot contain '|'):
/// <c>t:{id}</c> task hash; <c>s:{priority}</c> one stream per priority level, read through consumer group <c>g</c>
/// (an entry's id field is the task id; the group's pending entries list holds the leased tasks); <c>prios</c> zset of
/// the levels that have a stream; <c>delayed</c> zset (visible-at µs → task); <c>deadlines</c> zset (lease deadline µs →
/// task); <c>dead</c> zset (dead-at µs → task); <c>g:{group}</c> list of a group's unfinished tasks, head first (only
/// the head is ever in a stream); <c>dd:{dedup id}</c> → "until µs|task id" with a PX TTL; <c>ack:{id}</c> → the
/// receipt of the last native ack (replay of a retried ack); <c>seq</c> receipt counter; <c>n</c> live task count;
/// <c>log</c> optional journal stream. Per namespace, <c>{prefix}:q:{ns}|queues</c> is a zset (all scores 0, so
/// ordered by name) of the queues whose <c>n</c> is positive, for listing.</para>
/// <para>Task hash fields: tid task id, p payload, st state (ready|waiting|leased|dead), a attempts, m max attempts, pr priority,
/// g group ('' none), dd dedup id, enq enqueued-at µs, vis visible-at µs, sid stream entry id while in a stream,
/// r receipt, c consumer, dl lease deadline µs, e last error, dead dead-at µs, tp traceparent.</para>
/// <para>Times are microseconds since the Unix epoch from the caller's <see cref="TimeProvider"/> (passed as strings:
/// exact in Lua's doubles up to 2^53). The Redis server clock is used only for stream entry ids (ordering) and the PX
/// TTLs that garbage-collect dedup and replay entries; every semantic time check uses the caller's clock.</para>
/// </remarks>
internal static class RedisQueueScripts
{
    /// <summary>
    /// Shared functions. Expects a table <c>A</c>: A[1] base, A[2] now µs, A[3] journal length (0 = off), A[4]
    /// notification channel, A[5] the store's revision key; operation arguments start at A[6].
    /// </summary>
    private const string Library = """
        local B, NOW, JOURNAL, CHAN, REV = A[1], A[2], tonumber(A[3]), A[4], A[5]
        local NOWN = tonumber(NOW)
        local notify = false
        local function tkey(id) return B .. 't:' .. id end
        local function skey(prio) return B .. 's:' .. prio end
        local function rev() return redis.call('GET', REV) or '0' end
        local function registry()
          local slash = string.match(B, '^.*()/')
          return string.sub(B, 1, slash - 1) .. '|queues', string.sub(B, slash + 1, -2)
        end
        local function count_up()
          redis.call('INCR', B .. 'n')
          local reg, name = registry()
          redis.call('ZADD', reg, 0, name)
        end
        local function count_down()
          if redis.call('DECR', B .. 'n') <= 0 then
            local reg, name = registry()
            redis.call('ZREM', reg, name)
          end
        end
        local function log(e, id, x)
          if JOURNAL > 0 then redis.call('XADD', B .. 'log', 'MAXLEN', '~', JOURNAL, '*', 'e', e, 'id', id, 'x', x or '') end
        end
        local function finish(r)
          if notify then redis.call('PUBLISH', CHAN, B) end
          return r
        end
        local function to_stream(id, prio)
          local s = skey(prio)
          if redis.call('EXISTS', s) == 0 then
            redis.call('XGROUP', 'CREATE', s, 'g', '0', 'MKSTREAM')
            redis.call('ZADD', B .. 'prios', prio, prio)
          end
          local sid = redis.call('XADD', s, '*', 'id', id)
          redis.call('HSET', tkey(id), 'st', 'ready', 'sid', sid)
          notify = true
        end
        local function make_ready(id)
          local t = redis.call('HMGET', tkey(id), 'pr', 'vis')
          if tonumber(t[2]) > NOWN then
            redis.call('HSET', tkey(id), 'st', 'ready', 'sid', '')
            redis.call('ZADD', B .. 'delayed', t[2], id)
          else
            to_stream(id, t[1])
          end
        end
        local function promote_due()
          local due = redis.call('ZRANGEBYSCORE', B .. 'delayed', '-inf', NOW, 'LIMIT', 0, 1000)
          for _, id in ipairs(due) do
            redis.call('ZREM', B .. 'delayed', id)
            to_stream(id, redis.call('HGET', tkey(id), 'pr'))
          end
        end
        local function unstream(id)
          local t = redis.call('HMGET', tkey(id), 'pr', 'sid')
          if t[2] and t[2] ~= '' then
            redis.call('XACK', skey(t[1]), 'g', t[2])
            redis.call('XDEL', skey(t[1]), t[2])
          end
          redis.call('ZREM', B .. 'deadlines', id)
        end
        local function advance(id, group)
          if group == nil or group == false or group == '' then return end
          local g = B .. 'g:' .. group
          if redis.call('LINDEX', g, 0) == id then
            redis.call('LPOP', g)
            local nxt = redis.call('LINDEX', g, 0)
            if nxt then make_ready(nxt) end
          else
            redis.call('LREM', g, 1, id)
          end
        end
        local function fail(id, reason, vis)
          unstream(id)
          local h = tkey(id)
          local t = redis.call('HMGET', h, 'a', 'm', 'g')
          redis.call('HDEL', h, 'r', 'dl')
          redis.call('HSET', h, 'e', reason, 'sid', '')
          if tonumber(t[1]) >= tonumber(t[2]) then
            redis.call('HSET', h, 'st', 'dead', 'dead', NOW)
            redis.call('ZADD', B .. 'dead', NOW, id)
            log('dead', id, reason)
            advance(id, t[3])
            return 1
          end
          redis.call('HSET', h, 'vis', vis)
          make_ready(id)
          log('retry', id, reason)
          return 0
        end
        local function reclaim_expired(limit)
          local due = redis.call('ZRANGEBYSCORE', B .. 'deadlines', '-inf', NOW, 'LIMIT', 0, limit)
          local dead = 0
          for _, id in ipairs(due) do
            local t = redis.call('HMGET', tkey(id), 'a', 'c', 'dl')
            dead = dead + fail(id, 'lease of attempt ' .. t[1] .. " by '" .. t[2] .. "' expired without an ack (deadline " .. t[3] .. ' µs)', NOW)
          end
          return #due, dead
        end
        local function check(id, receipt)
          local t = redis.call('HMGET', tkey(id), 'st', 'r', 'c', 'a')
          if t[1] == 'leased' and t[2] == receipt then return nil end
          if not t[1] then return 'gone' end
          if t[1] == 'leased' then return "leased by '" .. t[3] .. "' (attempt " .. t[4] .. ')' end
          return t[1]
        end
        local function ack(id, receipt, replay_px)
          local g = redis.call('HGET', tkey(id), 'g')
          unstream(id)
          advance(id, g)
          redis.call('DEL', tkey(id))
          count_down()
          if replay_px ~= '' then redis.call('SET', B .. 'ack:' .. id, receipt, 'PX', replay_px) end
          log('ack', id, receipt)
        end
        local function dedup_holder(dedup)
          if dedup == '' then return nil end
          local cur = redis.call('GET', B .. 'dd:' .. dedup)
          if not cur then return nil end
          local sep = string.find(cur, '|', 1, true)
          local untilus = tonumber(string.sub(cur, 1, sep - 1))
          if untilus < 0 or untilus > NOWN then return string.sub(cur, sep + 1) end
          return nil
        end
        -- Returns the id of the task the dedup id already names, or nil after enqueueing.
        local function enqueue(id, payload, maxa, prio, group, dedup, dedup_until, dedup_px, vis, tp)
          local first = dedup_holder(dedup)
          if first then return first end
          if dedup ~= '' then
            local k = B .. 'dd:' .. dedup
            if dedup_px == '' then redis.call('SET', k, dedup_until .. '|' .. id) else redis.call('SET', k, dedup_until .. '|' .. id, 'PX', dedup_px) end
          end
          redis.call('HSET', tkey(id), 'tid', id, 'p', payload, 'st', 'waiting', 'a', 0, 'm', maxa, 'pr', prio, 'g', group, 'dd', dedup,
            'enq', NOW, 'vis', vis, 'sid', '', 'tp', tp)
          count_up()
          log('enqueue', id, group)
          if group ~= '' and redis.call('RPUSH', B .. 'g:' .. group, id) > 1 then return nil end
          make_ready(id)
          return nil
        end
        """;

    private static string Script(string body) => "local A = ARGV\n" + Library + "\n" + body;

    /// <summary>A[6] id, A[7] payload, A[8] max attempts, A[9] priority, A[10] group, A[11] dedup id, A[12] dedup until µs (-1 forever), A[13] dedup px (''), A[14] visible-at µs, A[15] traceparent.</summary>
    public static readonly string Enqueue = Script("""
        promote_due()
        local first = enqueue(A[6], A[7], A[8], A[9], A[10], A[11], A[12], A[13], A[14], A[15])
        if first then return finish({0, first, rev()}) end
        return finish({1, A[6], rev()})
        """);

    /// <summary>A[6] consumer, A[7] deadline µs, A[8] nonce. Returns {1, task hash, revision} or {0, next delayed µs, next deadline µs}.</summary>
    public static readonly string Lease = Script("""
        promote_due()
        reclaim_expired(1000)
        local consumer, deadline = A[6], A[7]
        for _, prio in ipairs(redis.call('ZREVRANGE', B .. 'prios', 0, -1)) do
          local s = skey(prio)
          while true do
            local r = redis.call('XREADGROUP', 'GROUP', 'g', consumer, 'COUNT', 1, 'STREAMS', s, '>')
            if not r then break end
            local entry = r[1][2][1]
            local sid, id = entry[1], entry[2][2]
            local h = tkey(id)
            local t = redis.call('HMGET', h, 'st', 'sid', 'a')
            if t[1] == 'ready' and t[2] == sid then
              local a = tonumber(t[3]) + 1
              local receipt = string.format('%d.%d.', a, redis.call('INCR', B .. 'seq')) .. A[8]
              redis.call('HSET', h, 'st', 'leased', 'a', a, 'r', receipt, 'c', consumer, 'dl', deadline)
              redis.call('ZADD', B .. 'deadlines', deadline, id)
              log('lease', id, receipt)
              return finish({1, redis.call('HGETALL', h), rev()})
            end
            redis.call('XACK', s, 'g', sid)
            redis.call('XDEL', s, sid)
          end
        end
        local d = redis.call('ZRANGE', B .. 'delayed', 0, 0, 'WITHSCORES')
        local l = redis.call('ZRANGE', B .. 'deadlines', 0, 0, 'WITHSCORES')
        return finish({0, d[2] or '', l[2] or ''})
        """);

    /// <summary>A[6] id, A[7] receipt, A[8] replay px. Returns {1, revision}, {2, revision} for a replay, or {0, why}.</summary>
    public static readonly string Ack = Script("""
        local id, receipt = A[6], A[7]
        local stale = check(id, receipt)
        if stale then
          if stale == 'gone' and redis.call('GET', B .. 'ack:' .. id) == receipt then return {2, rev()} end
          return {0, stale}
        end
        ack(id, receipt, A[8])
        return finish({1, rev()})
        """);

    /// <summary>
    /// Queue work inside the store's commit script (see <see cref="RedisCommitHook"/>): an ack with effects, and the
    /// prepared operations (markers under <see cref="RedisQueueService.MarkerPrefix"/>) a commit carries. HA[2..5] as
    /// <see cref="Library"/> (HA[1], the base, is set per entry), HA[6] the commit's kv hash, HA[7] its key index, then
    /// entries: kind, count n, n values. Ack ('a'): base, marker key ('' for AckAsync's own), id, receipt, replay px.
    /// Enqueue ('e'): base, marker key, id, payload, max attempts, priority, group, dedup id, dedup until µs, dedup px,
    /// visible-at µs, traceparent. The guard checks every entry before anything is written and refuses with
    /// "code\nmarker key\nreason" (code stale, dup or exists); the apply step runs each entry and removes its marker row
    /// from the key space (it stays in the history and the change feed). The store's idempotency record answers a retried
    /// ack with effects; the replay marker answers a retry without them.
    /// </summary>
    public static readonly string QueueHook = "local A = HA\n" + Library + "\n" + """
        local entries = {}
        do
          local i = 8
          while i <= #A do
            local n = tonumber(A[i + 1])
            local e = { kind = A[i] }
            for j = 1, n do e[j] = A[i + 1 + j] end
            entries[#entries + 1] = e
            i = i + 2 + n
          end
        end
        local function hook_guard()
          for _, e in ipairs(entries) do
            B = e[1]
            if e.kind == 'a' then
              local stale = check(e[3], e[4])
              if stale then return 'stale\n' .. e[2] .. '\n' .. stale end
            else
              if redis.call('EXISTS', tkey(e[3])) == 1 then return 'exists\n' .. e[2] .. '\n' .. e[3] end
              local first = dedup_holder(e[8])
              if first then return 'dup\n' .. e[2] .. '\n' .. first end
            end
          end
          return nil
        end
        local function hook_apply()
          for _, e in ipairs(entries) do
            B = e[1]
            notify = false
            if e.kind == 'a' then ack(e[3], e[4], e[5])
            else enqueue(e[3], e[4], e[5], e[6], e[7], e[8], e[9], e[10], e[11], e[12]) end
            if e[2] ~= '' then
              redis.call('HDEL', A[6], e[2])
              redis.call('ZREM', A[7], e[2])
            end
            finish(nil)
          end
        end
        """;

    /// <summary>A[6] id, A[7] receipt, A[8] reason, A[9] visible-at µs. Returns {1, dead 0/1, revision} or {0, why}.</summary>
    public static readonly string Nack = Script("""
        local id = A[6]
        local stale = check(id, A[7])
        if stale then return {0, stale} end
        local dead = fail(id, A[8], A[9])
        return finish({1, dead, rev()})
        """);

    /// <summary>A[6] id, A[7] receipt, A[8] new deadline µs. Returns {1, revision} or {0, why}.</summary>
    public static readonly string Extend = Script("""
        local id = A[6]
        local stale = check(id, A[7])
        if stale then return {0, stale} end
        redis.call('HSET', tkey(id), 'dl', A[8])
        redis.call('ZADD', B .. 'deadlines', A[8], id)
        log('extend', id, A[8])
        return {1, rev()}
        """);

    /// <summary>A[6] limit. Returns {reclaimed, of which dead}.</summary>
    public static readonly string Reclaim = Script("""
        promote_due()
        local n, dead = reclaim_expired(tonumber(A[6]))
        return finish({n, dead})
        """);

    /// <summary>A[6] limit. The dead letters' hashes, oldest first.</summary>
    public static readonly string ListDead = Script("""
        local out = {}
        for _, id in ipairs(redis.call('ZRANGE', B .. 'dead', 0, tonumber(A[6]) - 1)) do
          local h = redis.call('HGETALL', tkey(id))
          if #h > 0 then out[#out + 1] = h end
        end
        return out
        """);

    /// <summary>A[6] id. Returns 1, or 0 when the task is not dead.</summary>
    public static readonly string Requeue = Script("""
        local id = A[6]
        local h = tkey(id)
        if redis.call('HGET', h, 'st') ~= 'dead' then return 0 end
        redis.call('ZREM', B .. 'dead', id)
        redis.call('HDEL', h, 'dead')
        redis.call('HSET', h, 'a', 0, 'vis', NOW, 'st', 'waiting')
        log('requeue', id, '')
        local group = redis.call('HGET', h, 'g')
        if group ~= '' and redis.call('RPUSH', B .. 'g:' .. group, id) > 1 then return finish(1) end
        make_ready(id)
        return finish(1)
        """);

    /// <summary>A[6] id. Returns 1, or 0 when the task is not dead.</summary>
    public static readonly string DeleteDead = Script("""
        local id = A[6]
        if redis.call('HGET', tkey(id), 'st') ~= 'dead' then return 0 end
        redis.call('ZREM', B .. 'dead', id)
        redis.call('DEL', tkey(id))
        count_down()
        log('delete', id, '')
        return 1
        """);

    /// <summary>Returns {ready, delayed, waiting, leased, dead}.</summary>
    public static readonly string Stats = Script("""
        local inStreams = 0
        for _, prio in ipairs(redis.call('ZRANGE', B .. 'prios', 0, -1)) do inStreams = inStreams + redis.call('XLEN', skey(prio)) end
        local leased = redis.call('ZCARD', B .. 'deadlines')
        local due = redis.call('ZCOUNT', B .. 'delayed', '-inf', NOW)
        local delayed = redis.call('ZCARD', B .. 'delayed') - due
        local dead = redis.call('ZCARD', B .. 'dead')
        local ready = inStreams - leased + due
        local total = tonumber(redis.call('GET', B .. 'n') or '0')
        return {ready, delayed, total - ready - delayed - leased - dead, leased, dead}
        """);
}
