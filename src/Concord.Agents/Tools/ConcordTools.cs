using System.Text.Json;
using System.Text.Json.Nodes;
using Concord.Coordination.Locks;
using Concord.Coordination.Queues;
using Concord.Coordination.Streams;
using Microsoft.Extensions.AI;

namespace Concord.Agents.Tools;

/// <summary>Which groups of tools <see cref="ConcordTools.Create"/> returns.</summary>
[Flags]
public enum ConcordToolKinds
{
    /// <summary>read, list, write, patch, increment.</summary>
    State = 1,

    /// <summary>lock, unlock.</summary>
    Locks = 2,

    /// <summary>enqueue, lease, ack.</summary>
    Queues = 4,

    /// <summary>append_event, read_events.</summary>
    Streams = 8,

    /// <summary>Every tool.</summary>
    All = State | Locks | Queues | Streams,
}

/// <summary>Settings of <see cref="ConcordTools.Create"/>.</summary>
public sealed record ConcordToolsOptions
{
    /// <summary>Queue service. <value>Default: a <see cref="StoreQueueService"/> over the session's store and clock.</value></summary>
    public IQueueService? Queues { get; init; }

    /// <summary>Stream service. <value>Default: a <see cref="StoreStreamService"/> over the session's store and clock.</value></summary>
    public IStreamService? Streams { get; init; }

    /// <summary>Lock service. <value>Default: a <see cref="StoreLockService"/> over the session's store and clock.</value></summary>
    public ILockService? Locks { get; init; }

    /// <summary>Which tools to create. <value>Default: <see cref="ConcordToolKinds.All"/>.</value></summary>
    public ConcordToolKinds Kinds { get; init; } = ConcordToolKinds.All;

    /// <summary>Prefix of every tool name. <value>Default: <c>concord_</c>.</value></summary>
    public string NamePrefix { get; init; } = "concord_";

    /// <summary>
    /// When set, the state tools refuse keys outside this prefix (e.g. <c>research/</c>), so a model cannot touch the rest
    /// of the namespace. Reserved <c>_sys/</c> keys are always refused. <value>Default: null (the whole namespace).</value>
    /// </summary>
    public string? KeyPrefix { get; init; }

    /// <summary>Lease length of <c>lock</c> when the model gives none. <value>Default: 30 s.</value></summary>
    public TimeSpan DefaultLockTtl { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Visibility timeout of <c>lease</c> when the model gives none. <value>Default: 60 s.</value></summary>
    public TimeSpan DefaultVisibility { get; init; } = TimeSpan.FromSeconds(60);
}

/// <summary>
/// <see cref="AIFunction"/> tools over Concord for any <see cref="IChatClient"/> (through <see cref="FunctionInvokingChatClient"/>)
/// or Microsoft Agent Framework agent, with the read-version-write discipline of Concord's MCP tools: <c>read</c> returns a
/// version, <c>write</c> requires the version it was based on, and a stale write comes back as a conflict carrying the
/// current value and a hint, never as a silent overwrite.
/// </summary>
/// <remarks>
/// <para>
/// Every tool returns one JSON object with <c>ok</c>. Conflicts (<c>"conflict"</c>) and bad input (<c>"error"</c>:
/// <c>invalid_arguments</c>, <c>invalid-key</c>, …) are results the model can act on, with a <c>hint</c>; they are never thrown, so
/// the model sees them whatever <see cref="FunctionInvokingChatClient.IncludeDetailedErrors"/> says. Arguments are checked
/// strictly (a missing or malformed <c>expectedVersion</c> is refused with the reason) and nothing is written unless they are
/// all valid.
/// </para>
/// <para>The tools of one call to <see cref="Create"/> share state (locks held, tasks leased); thread-safe.</para>
/// </remarks>
public static class ConcordTools
{
    /// <summary>Instructions for a model using the tools (added to the system prompt by <see cref="ConcordChatClientExtensions.WithConcordTools"/>).</summary>
    public const string Instructions =
        "You share state with other agents through Concord tools. Always read a key before changing it and pass the version " +
        "you read as expectedVersion when you write (0 creates a new key). If a write returns a conflict, someone changed the " +
        "record after you read it: apply your change again to the currentValue it returns and write with its currentVersion. " +
        "Prefer patch (append, increment, add a field) when you change only part of a record. Never invent versions.";

    /// <summary>Creates the tools for <paramref name="session"/> (its namespace and agent id).</summary>
    public static IReadOnlyList<AIFunction> Create(ConcordSession session, ConcordToolsOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(session);
        options ??= new ConcordToolsOptions();
        var state = new ToolState(session, options);
        var p = options.NamePrefix;
        var tools = new List<AIFunction>();
        if (options.Kinds.HasFlag(ConcordToolKinds.State))
        {
            tools.Add(state.Tool(p + "read", "Reads a key. Returns its JSON value and version; pass that version as expectedVersion when you write it.",
                Schema(("key", "string", "The key, e.g. \"accounts/acct-42\".", true)), state.ReadAsync));
            tools.Add(state.Tool(p + "list", "Lists the keys under a prefix with their versions and values.",
                Schema(("prefix", "string", "Key prefix, e.g. \"tickets/\".", true), ("limit", "integer", "Most records to return (1-100, default 20).", false)), state.ListAsync));
            tools.Add(state.Tool(p + "write", "Writes a whole JSON value to a key, only if the key is still at expectedVersion (the version you read; 0 to create). " +
                "On conflict nothing is written and you get the current value and version to redo your change on.",
                Schema(("key", "string", "The key.", true), ("value", "any", "The new JSON value.", true),
                    ("expectedVersion", "integer", "The version you read (0 = the key must not exist yet).", true),
                    ("lock", "string", "Name of a lock you hold (from lock): the write is refused if your lease was lost.", false)), state.WriteAsync));
            tools.Add(state.Tool(p + "patch", "Changes part of a record atomically with JSON Patch operations, applied to the current value: " +
                "add, remove, replace, test, and increment, append, addToSet, removeFromSet, max, min. Agents patching different parts never conflict.",
                Schema(("key", "string", "The key.", true),
                    ("operations", "array", "JSON Patch operations, e.g. [{\"op\":\"append\",\"path\":\"/findings\",\"value\":\"…\"}].", true),
                    ("expectedVersion", "integer", "Optional: apply only if the key is still at this version.", false)), state.PatchAsync));
            tools.Add(state.Tool(p + "increment", "Atomically adds a number to a numeric field (creating it at 0).",
                Schema(("key", "string", "The key.", true), ("path", "string", "JSON pointer of the number (default \"/value\").", false),
                    ("by", "number", "Amount to add (default 1; negative subtracts).", false)), state.IncrementAsync));
        }
        if (options.Kinds.HasFlag(ConcordToolKinds.Locks))
        {
            tools.Add(state.Tool(p + "lock", "Acquires an exclusive lock (a lease that expires). Returns a fencing token; writes made with lock=<name> are refused once the lease is lost.",
                Schema(("name", "string", "Lock name, e.g. \"tickets/T-101\".", true), ("ttlSeconds", "integer", "Lease length in seconds (1-3600, default 30).", false)), state.LockAsync));
            tools.Add(state.Tool(p + "unlock", "Releases a lock you hold.", Schema(("name", "string", "Lock name.", true)), state.UnlockAsync));
        }
        if (options.Kinds.HasFlag(ConcordToolKinds.Queues))
        {
            tools.Add(state.Tool(p + "enqueue", "Hands a task to whoever consumes a queue.",
                Schema(("queue", "string", "Queue name (letters, digits, - _ . :).", true), ("payload", "any", "The task as JSON.", true),
                    ("dedupId", "string", "Optional: a second enqueue with the same id creates nothing.", false),
                    ("group", "string", "Optional: tasks of one group run one at a time, in order.", false)), state.EnqueueAsync));
            tools.Add(state.Tool(p + "lease", "Takes the next task of a queue for yourself (nobody else gets it while your lease lasts). Ack it when done.",
                Schema(("queue", "string", "Queue name.", true), ("visibilitySeconds", "integer", "How long the task is yours (1-3600, default 60).", false)), state.LeaseAsync));
            tools.Add(state.Tool(p + "ack", "Marks a task you leased as done.",
                Schema(("queue", "string", "Queue name.", true), ("taskId", "string", "The taskId lease returned.", true)), state.AckAsync));
        }
        if (options.Kinds.HasFlag(ConcordToolKinds.Streams))
        {
            tools.Add(state.Tool(p + "append_event", "Appends an event to a stream (an append-only log others can follow).",
                Schema(("stream", "string", "Stream name, e.g. \"research/findings\".", true), ("type", "string", "Event type.", true), ("data", "any", "Event data as JSON.", true),
                    ("expectedVersion", "integer", "Optional: append only if the stream has exactly this many events.", false)), state.AppendEventAsync));
            tools.Add(state.Tool(p + "read_events", "Reads events of a stream in order.",
                Schema(("stream", "string", "Stream name.", true), ("fromVersion", "integer", "First event version to read (default 1).", false),
                    ("count", "integer", "Most events to return (1-100, default 20).", false)), state.ReadEventsAsync));
        }
        return tools;
    }

    private static JsonElement Schema(params (string Name, string Type, string Description, bool Required)[] properties)
    {
        var props = new JsonObject();
        var required = new JsonArray();
        foreach (var (name, type, description, isRequired) in properties)
        {
            var prop = new JsonObject { ["description"] = description };
            if (type != "any") prop["type"] = type;
            if (type == "array") prop["items"] = new JsonObject { ["type"] = "object" };
            props[name] = prop;
            if (isRequired) required.Add(name);
        }
        var schema = new JsonObject { ["type"] = "object", ["properties"] = props, ["required"] = required };
        return JsonSerializer.SerializeToElement(schema);
    }

    /// <summary>The tools' shared state and their bodies.</summary>
    private sealed class ToolState
    {
        private readonly ConcordSession _session;
        private readonly ConcordToolsOptions _options;
        private readonly IQueueService _queues;
        private readonly IStreamService _streams;
        private readonly ILockService _locks;
        private readonly Lock _gate = new();
        private readonly Dictionary<string, Lease> _held = new(StringComparer.Ordinal);
        private readonly Dictionary<(string Queue, string TaskId), QueueLease> _leased = [];

        public ToolState(ConcordSession session, ConcordToolsOptions options)
        {
            _session = session;
            _options = options;
            var time = session.Options.TimeProvider;
            _queues = options.Queues ?? new StoreQueueService(session.Store, new QueueServiceOptions { TimeProvider = time });
            _streams = options.Streams ?? new StoreStreamService(session.Store, new StreamServiceOptions { TimeProvider = time });
            _locks = options.Locks ?? new StoreLockService(session.Store, time);
        }

        private string Ns => _session.Namespace;

        private string Write => _options.NamePrefix + "write";

        public AIFunction Tool(string name, string description, JsonElement schema, Func<ToolArgs, CancellationToken, ValueTask<JsonElement>> body) =>
            new ConcordTool(name, description, schema, body, _session.AgentId);

        private string? Key(ToolArgs args)
        {
            var key = args.String("key", true, "the key to use, e.g. \"accounts/acct-42\"");
            if (key is null) return null;
            if (key.StartsWith("_sys/", StringComparison.Ordinal)) args.Problem($"key '{key}' is reserved (keys under _sys/ belong to Concord's queues, streams and locks)");
            else if (_options.KeyPrefix is { } prefix && !key.StartsWith(prefix, StringComparison.Ordinal)) args.Problem($"key '{key}' is outside what this agent may touch: keys must start with \"{prefix}\"");
            return key;
        }

        public async ValueTask<JsonElement> ReadAsync(ToolArgs args, CancellationToken cancellationToken)
        {
            var key = Key(args);
            if (!args.IsValid) return ToolResult.InvalidArguments(args, "Call it again with a key, e.g. {\"key\":\"accounts/acct-42\"}.");
            var record = await _session.GetAsync(key!, cancellationToken).ConfigureAwait(false);
            if (record is null)
            {
                return ToolResult.Ok(new JsonObject
                {
                    ["key"] = key,
                    ["found"] = false,
                    ["version"] = 0,
                    ["hint"] = $"The key does not exist. To create it, call {Write} with expectedVersion 0.",
                });
            }
            return ToolResult.Ok(new JsonObject
            {
                ["key"] = key,
                ["found"] = true,
                ["version"] = record.Version,
                ["value"] = JsonNode.Parse(record.Value.GetRawText()),
                ["writer"] = record.Writer,
                ["revision"] = record.Revision,
            });
        }

        public async ValueTask<JsonElement> ListAsync(ToolArgs args, CancellationToken cancellationToken)
        {
            var prefix = args.String("prefix", false, "a key prefix such as \"tickets/\"") ?? "";
            var limit = args.Integer("limit", false, "how many records to return", 1, 100) ?? 20;
            if (prefix.StartsWith("_sys/", StringComparison.Ordinal)) args.Problem("prefix '_sys/' is reserved");
            else if (_options.KeyPrefix is { } allowed && !prefix.StartsWith(allowed, StringComparison.Ordinal)) args.Problem($"prefix must start with \"{allowed}\"");
            if (!args.IsValid) return ToolResult.InvalidArguments(args, "Call it again with a prefix, e.g. {\"prefix\":\"tickets/\"}.");
            var page = await _session.ListAsync(prefix, null, (int)limit, cancellationToken).ConfigureAwait(false);
            var records = new JsonArray();
            foreach (var r in page.Records)
            {
                if (r.Key.StartsWith("_sys/", StringComparison.Ordinal)) continue;
                records.Add(new JsonObject { ["key"] = r.Key, ["version"] = r.Version, ["value"] = JsonNode.Parse(r.Value.GetRawText()), ["writer"] = r.Writer });
            }
            return ToolResult.Ok(new JsonObject { ["prefix"] = prefix, ["records"] = records, ["more"] = page.NextAfter is not null, ["revision"] = page.Revision });
        }

        public async ValueTask<JsonElement> WriteAsync(ToolArgs args, CancellationToken cancellationToken)
        {
            var key = Key(args);
            var value = args.Json("value", true, "the new JSON value of the key");
            var expected = args.Integer("expectedVersion", true,
                $"the version {_options.NamePrefix}read returned for this key (0 to create a new key); writes without it could silently erase other agents' changes");
            var lockName = args.String("lock", false, "the name of a lock you hold");
            Lease? lease = null;
            if (lockName is not null)
            {
                lock (_gate) _held.TryGetValue(lockName, out lease);
                if (lease is null) args.Problem($"you do not hold lock '{lockName}' (acquire it with {_options.NamePrefix}lock first)");
            }
            if (!args.IsValid)
                return ToolResult.InvalidArguments(args, $"Nothing was written. Read the key with {_options.NamePrefix}read, then call {Write} with key, value and expectedVersion set to the version you read.");
            var expect = Expect.Version(expected!.Value);
            if (lease is not null) expect = expect.WithFence(lease.Fence);
            var result = await _session.PutAsync(key!, value!.Value, expect, cancellationToken: cancellationToken).ConfigureAwait(false);
            return result.IsApplied ? ToolResult.Written(result) : ToolResult.Conflict(result, expected, Write, lockName);
        }

        public async ValueTask<JsonElement> PatchAsync(ToolArgs args, CancellationToken cancellationToken)
        {
            var key = Key(args);
            var operations = args.Array("operations", true, "a list of JSON Patch operations");
            var expected = args.Integer("expectedVersion", false, "the version you read, to apply the patch only if nobody changed the key since");
            if (operations is { } ops && ops.GetArrayLength() == 0) args.Problem("'operations' must contain at least one operation");
            if (!args.IsValid)
                return ToolResult.InvalidArguments(args, "Nothing was changed. Example: {\"key\":\"research/memory\",\"operations\":[{\"op\":\"append\",\"path\":\"/findings\",\"value\":\"…\"}]}.");
            var patch = JsonPatch.FromJson(JsonNode.Parse(operations!.Value.GetRawText()));
            var expect = expected is { } v ? Expect.Version(v) : default;
            var result = await _session.PatchAsync(key!, patch, expect, cancellationToken: cancellationToken).ConfigureAwait(false);
            return result.IsApplied ? ToolResult.Written(result) : ToolResult.Conflict(result, expected, _options.NamePrefix + "patch", null);
        }

        public async ValueTask<JsonElement> IncrementAsync(ToolArgs args, CancellationToken cancellationToken)
        {
            var key = Key(args);
            var path = args.String("path", false, "a JSON pointer such as \"/value\"") ?? "/value";
            var by = args.Number("by", false, "the amount to add") ?? 1;
            if (!path.StartsWith('/')) args.Problem($"'path' must be a JSON pointer starting with '/', e.g. \"/value\"; got \"{path}\"");
            if (!args.IsValid) return ToolResult.InvalidArguments(args, "Nothing was changed. Example: {\"key\":\"counters/views\",\"path\":\"/value\",\"by\":1}.");
            var result = await _session.IncrementAsync(key!, by, path, cancellationToken: cancellationToken).ConfigureAwait(false);
            return result.IsApplied ? ToolResult.Written(result) : ToolResult.Conflict(result, null, _options.NamePrefix + "increment", null);
        }

        public async ValueTask<JsonElement> LockAsync(ToolArgs args, CancellationToken cancellationToken)
        {
            var name = args.String("name", true, "the lock's name");
            var ttl = args.Integer("ttlSeconds", false, "the lease length in seconds", 1, 3600);
            if (!args.IsValid) return ToolResult.InvalidArguments(args, "Example: {\"name\":\"tickets/T-101\",\"ttlSeconds\":30}.");
            var result = await _locks.AcquireAsync(Ns, name!, new LockRequest
            {
                Owner = _session.AgentId,
                Ttl = ttl is { } s ? TimeSpan.FromSeconds(s) : _options.DefaultLockTtl,
            }, cancellationToken).ConfigureAwait(false);
            if (result.Lease is { } lease)
            {
                lock (_gate) _held[name!] = lease;
                return ToolResult.Ok(new JsonObject { ["lock"] = name, ["acquired"] = true, ["token"] = lease.Token, ["expiresAt"] = lease.ExpiresAt.ToString("O") });
            }
            return ToolResult.NotOk("lock_held", new JsonObject
            {
                ["lock"] = name,
                ["acquired"] = false,
                ["holders"] = new JsonArray([.. result.Holders.Select(h => (JsonNode?)h)]),
                ["message"] = result.Message,
                ["hint"] = "Someone else holds this lock. Do not touch what it protects; try again later or work on something else.",
            });
        }

        public async ValueTask<JsonElement> UnlockAsync(ToolArgs args, CancellationToken cancellationToken)
        {
            var name = args.String("name", true, "the lock's name");
            if (!args.IsValid) return ToolResult.InvalidArguments(args, "Example: {\"name\":\"tickets/T-101\"}.");
            Lease? lease;
            lock (_gate)
            {
                if (_held.Remove(name!, out lease) is false) lease = null;
            }
            if (lease is null) return ToolResult.Error("not_held", $"You do not hold lock '{name}'.", "Only locks acquired with this agent's lock tool can be released.");
            var released = await lease.ReleaseAsync(cancellationToken).ConfigureAwait(false);
            return ToolResult.Ok(new JsonObject
            {
                ["lock"] = name,
                ["released"] = released,
                ["hint"] = released ? null : "The lease had already expired: someone else may have taken the lock meanwhile.",
            });
        }

        public async ValueTask<JsonElement> EnqueueAsync(ToolArgs args, CancellationToken cancellationToken)
        {
            var queue = args.String("queue", true, "the queue's name");
            var payload = args.Json("payload", true, "the task as JSON");
            var dedup = args.String("dedupId", false, "a deduplication id");
            var group = args.String("group", false, "a group key");
            if (!args.IsValid) return ToolResult.InvalidArguments(args, "Example: {\"queue\":\"triage\",\"payload\":{\"ticket\":\"T-101\"}}.");
            var result = await _queues.EnqueueAsync(Ns, queue!, payload!.Value, new EnqueueOptions { DedupId = dedup, Group = group, Agent = _session.AgentId }, cancellationToken).ConfigureAwait(false);
            return ToolResult.Ok(new JsonObject
            {
                ["queue"] = queue,
                ["taskId"] = result.TaskId,
                ["enqueued"] = result.IsEnqueued,
                ["hint"] = result.IsEnqueued ? null : "A task with this dedupId was already enqueued; nothing new was created.",
            });
        }

        public async ValueTask<JsonElement> LeaseAsync(ToolArgs args, CancellationToken cancellationToken)
        {
            var queue = args.String("queue", true, "the queue's name");
            var visibility = args.Integer("visibilitySeconds", false, "how long the task stays yours", 1, 3600);
            if (!args.IsValid) return ToolResult.InvalidArguments(args, "Example: {\"queue\":\"triage\"}.");
            var result = await _queues.LeaseAsync(Ns, queue!, _session.AgentId, visibility is { } v ? TimeSpan.FromSeconds(v) : _options.DefaultVisibility,
                TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
            if (result.Lease is not { } lease) return ToolResult.Ok(new JsonObject { ["queue"] = queue, ["leased"] = false, ["hint"] = "The queue has no task ready now." });
            lock (_gate) _leased[(queue!, lease.TaskId)] = lease;
            return ToolResult.Ok(new JsonObject
            {
                ["queue"] = queue,
                ["leased"] = true,
                ["taskId"] = lease.TaskId,
                ["payload"] = JsonNode.Parse(lease.Payload.GetRawText()),
                ["attempt"] = lease.Attempt,
                ["deadline"] = lease.Deadline.ToString("O"),
            });
        }

        public async ValueTask<JsonElement> AckAsync(ToolArgs args, CancellationToken cancellationToken)
        {
            var queue = args.String("queue", true, "the queue's name");
            var taskId = args.String("taskId", true, "the taskId lease returned");
            if (!args.IsValid) return ToolResult.InvalidArguments(args, "Example: {\"queue\":\"triage\",\"taskId\":\"…\"}.");
            QueueLease? lease;
            lock (_gate) _leased.Remove((queue!, taskId!), out lease);
            if (lease is null) return ToolResult.Error("not_leased", $"You have not leased task '{taskId}' of queue '{queue}'.", "Only tasks returned by this agent's lease tool can be acked.");
            var result = await _queues.AckAsync(lease, null, cancellationToken).ConfigureAwait(false);
            if (result.IsAcked) return ToolResult.Ok(new JsonObject { ["queue"] = queue, ["taskId"] = taskId, ["acked"] = true });
            return ToolResult.NotOk("lease_lost", new JsonObject
            {
                ["queue"] = queue,
                ["taskId"] = taskId,
                ["acked"] = false,
                ["message"] = result.Message,
                ["hint"] = "Your lease ended before the ack (it expired): the task went back to the queue and someone else may be doing it. Do not repeat its side effects.",
            });
        }

        public async ValueTask<JsonElement> AppendEventAsync(ToolArgs args, CancellationToken cancellationToken)
        {
            var stream = args.String("stream", true, "the stream's name");
            var type = args.String("type", true, "the event type");
            var data = args.Json("data", true, "the event data as JSON");
            var expected = args.Integer("expectedVersion", false, "the number of events you expect the stream to have");
            if (!args.IsValid) return ToolResult.InvalidArguments(args, "Example: {\"stream\":\"research/findings\",\"type\":\"finding\",\"data\":{\"text\":\"…\"}}.");
            var result = await _streams.AppendAsync(Ns, stream!, [new EventData(type!, data!.Value)], expected is { } v ? ExpectedVersion.Exactly(v) : ExpectedVersion.Any,
                new AppendOptions { Agent = _session.AgentId }, cancellationToken).ConfigureAwait(false);
            if (result.IsAppended) return ToolResult.Ok(new JsonObject { ["stream"] = stream, ["version"] = result.Version, ["position"] = result.LastPosition.ToString() });
            return ToolResult.NotOk("wrong_expected_version", new JsonObject
            {
                ["stream"] = stream,
                ["expectedVersion"] = expected,
                ["currentVersion"] = result.Version,
                ["hint"] = $"Not appended: the stream has {result.Version} events, not {expected}. Read the new events with {_options.NamePrefix}read_events, then decide again.",
            });
        }

        public async ValueTask<JsonElement> ReadEventsAsync(ToolArgs args, CancellationToken cancellationToken)
        {
            var stream = args.String("stream", true, "the stream's name");
            var from = args.Integer("fromVersion", false, "the first version to read", 1) ?? 1;
            var count = args.Integer("count", false, "how many events to read", 1, 100) ?? 20;
            if (!args.IsValid) return ToolResult.InvalidArguments(args, "Example: {\"stream\":\"research/findings\",\"fromVersion\":1}.");
            var events = await _streams.ReadStreamAsync(Ns, stream!, from, (int)count, ReadDirection.Forward, cancellationToken).ConfigureAwait(false);
            var list = new JsonArray();
            foreach (var e in events)
            {
                list.Add(new JsonObject
                {
                    ["version"] = e.Version,
                    ["type"] = e.Type,
                    ["data"] = e.Data.ValueKind == JsonValueKind.Undefined ? null : JsonNode.Parse(e.Data.GetRawText()),
                    ["writer"] = e.Writer,
                });
            }
            var head = await _streams.GetStreamAsync(Ns, stream!, cancellationToken).ConfigureAwait(false);
            return ToolResult.Ok(new JsonObject { ["stream"] = stream, ["events"] = list, ["streamVersion"] = head?.Version ?? 0 });
        }
    }
}
