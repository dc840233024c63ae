using System.ComponentModel;
using System.Text.Json;
using System.Text.Json.Nodes;
using Concord.Coordination.Locks;
using Concord.Server.Http;
using Microsoft.AspNetCore.Http;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Concord.Server.Mcp;

/// <summary>
/// The MCP tools at <c>/mcp</c>: safe state and lock operations for LLM agents. Every write states the version the
/// agent read, so a stale write comes back as a conflict result carrying the current value, never as a silent
/// overwrite. Conflicts are ordinary results (the model acts on them); bad arguments and refusals are tool errors
/// (<c>isError</c>), and leave state untouched.
/// </summary>
[McpServerToolType]
internal sealed class ConcordTools(IConcordStore store, ILockService locks, Auth auth, IHttpContextAccessor accessor)
{
    public const string Instructions =
        "Concord is shared, versioned state that several agents edit at once. Discipline: (1) call read to get a key's value and version; " +
        "(2) decide; (3) call write with expectedVersion set to the version you read (0 to create a key that does not exist). " +
        "If another agent wrote in between, write returns conflict=versionMismatch with the current value and version: re-read (or use currentValue), " +
        "recompute, and retry with expectedVersion=currentVersion. Never guess a version. For counters and lists prefer increment and patch, " +
        "which never conflict on fields other agents change. Hold a lock only around work that must be exclusive; pass its fence to write, and unlock when done.";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        // The text goes to a model: keep '+', quotes and non-ASCII readable instead of \uXXXX escapes.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };

    [McpServerTool(Name = "read", ReadOnly = true, Idempotent = true)]
    [Description("Reads a key. Returns {found, key, value, version, revision, writer}. Remember `version`: write needs it as expectedVersion. " +
        "An absent key returns found=false and version=0 (write it with expectedVersion=0 to create it).")]
    public async Task<CallToolResult> ReadAsync(
        [Description("Namespace (tenant), e.g. \"default\".")] string ns,
        [Description("Key, '/'-separated, e.g. \"accounts/42\".")] string key,
        CancellationToken cancellationToken = default)
    {
        Authorize(ns, ApiRights.Read);
        return await Guard(async () =>
        {
            var record = await store.GetAsync(ns, key, null, cancellationToken).ConfigureAwait(false);
            return record is null
                ? Ok(new { found = false, key, version = 0, hint = "The key does not exist. To create it call write with expectedVersion=0." })
                : Ok(new { found = true, key, value = record.Value, version = record.Version, revision = record.Revision, writer = record.Writer });
        }).ConfigureAwait(false);
    }

    [McpServerTool(Name = "list", ReadOnly = true, Idempotent = true)]
    [Description("Lists keys under a prefix with their values and versions (at most `limit`, default 50). Returns {records:[{key,value,version}], nextAfter}.")]
    public async Task<CallToolResult> ListAsync(
        [Description("Namespace.")] string ns,
        [Description("Key prefix, e.g. \"accounts/\"; empty lists everything.")] string prefix = "",
        [Description("Continue after this key (the nextAfter of the previous page).")] string? after = null,
        [Description("Maximum records, 1..500.")] int limit = 50,
        CancellationToken cancellationToken = default)
    {
        Authorize(ns, ApiRights.Read);
        if (limit is < 1 or > 500) throw new McpException("limit must be between 1 and 500");
        return await Guard(async () =>
        {
            var page = await store.ListAsync(ns, new ListRequest { Prefix = prefix, After = after, Limit = limit }, cancellationToken).ConfigureAwait(false);
            return Ok(new { records = page.Records.Select(r => new { key = r.Key, value = r.Value, version = r.Version }), revision = page.Revision, nextAfter = page.NextAfter });
        }).ConfigureAwait(false);
    }

    [McpServerTool(Name = "write", Destructive = true)]
    [Description("Writes a key's whole value, only if the key is still at expectedVersion (the version your read returned; 0 = create a new key). " +
        "On success returns {ok:true, version}. If someone else changed it, returns {ok:false, conflict:\"versionMismatch\", currentVersion, currentValue, hint}: " +
        "recompute from currentValue and retry with expectedVersion=currentVersion. Never retry with a guessed version.")]
    public async Task<CallToolResult> WriteAsync(
        [Description("Namespace.")] string ns,
        [Description("Key.")] string key,
        [Description("The new JSON value itself (object, array, string, number, ...), not a string containing JSON.")] JsonElement value,
        [Description("REQUIRED. The version you read; 0 to create a key that must not exist yet.")] long? expectedVersion = null,
        [Description("Optional fence \"LOCK:TOKEN\" from the lock tool, when you write under a lock.")] string? fence = null,
        [Description("Optional id of this logical change; reuse it only when retrying the very same call after a timeout.")] string? operationId = null,
        CancellationToken cancellationToken = default)
    {
        var caller = Authorize(ns, WriteRight(key));
        if (expectedVersion is not { } expected)
            throw new McpException("expectedVersion is required: call read first and pass the version it returned (0 to create a new key).");
        if (expected < 0) throw new McpException($"expectedVersion must be 0 or a version returned by read (got {expected}).");
        if (value.ValueKind == JsonValueKind.Undefined) throw new McpException("value is required (any JSON value).");
        var expectation = WithFence(Expect.Version(expected), fence);
        return await Guard(async () =>
        {
            var result = await store.PutAsync(ns, key, value, Options(caller, expectation, operationId), cancellationToken).ConfigureAwait(false);
            return WriteOutcome(result);
        }).ConfigureAwait(false);
    }

    [McpServerTool(Name = "patch", Destructive = true)]
    [Description("Applies a JSON Patch (RFC 6902: add, remove, replace, move, copy, test) plus atomic ops increment {path,value:n}, append {path,value}, " +
        "addToSet, removeFromSet, max, min. Changes only the paths named, so agents editing different fields never conflict. " +
        "expectedVersion is optional here; a failed `test` returns {ok:false, conflict:\"testFailed\", currentValue}.")]
    public async Task<CallToolResult> PatchAsync(
        [Description("Namespace.")] string ns,
        [Description("Key (an absent key starts as {}).")] string key,
        [Description("Array of patch operations, e.g. [{\"op\":\"replace\",\"path\":\"/status\",\"value\":\"done\"}].")] JsonElement operations,
        [Description("Optional: only apply if the key is at this version.")] long? expectedVersion = null,
        [Description("Optional fence \"LOCK:TOKEN\".")] string? fence = null,
        [Description("Optional id of this logical change; reuse it only when retrying the very same call.")] string? operationId = null,
        CancellationToken cancellationToken = default)
    {
        var caller = Authorize(ns, WriteRight(key));
        if (operations.ValueKind != JsonValueKind.Array)
            throw new McpException("operations must be a JSON array of patch operations, e.g. [{\"op\":\"add\",\"path\":\"/tags/-\",\"value\":\"x\"}].");
        if (expectedVersion is < 0) throw new McpException("expectedVersion must not be negative.");
        JsonPatch patch;
        try
        {
            patch = JsonPatch.FromJson(JsonNode.Parse(operations.GetRawText()));
        }
        catch (ConcordException e)
        {
            throw new McpException($"operations is not a valid patch: {e.Message}");
        }
        var expectation = WithFence(expectedVersion is { } v ? Expect.Version(v) : Expect.Any, fence);
        return await Guard(async () => WriteOutcome(await store.PatchAsync(ns, key, patch, Options(caller, expectation, operationId), cancellationToken).ConfigureAwait(false))).ConfigureAwait(false);
    }

    [McpServerTool(Name = "increment", Destructive = true)]
    [Description("Atomically adds `by` to the number at `path` (a JSON Pointer, default \"/value\") of a key; missing numbers start at 0 and an absent key at {}. " +
        "Never conflicts. Returns {ok:true, value, version}. Pass operationId when you might retry, so a retry cannot count twice.")]
    public async Task<CallToolResult> IncrementAsync(
        [Description("Namespace.")] string ns,
        [Description("Key.")] string key,
        [Description("Amount to add (may be negative).")] double by = 1,
        [Description("JSON Pointer of the number inside the value.")] string path = "/value",
        [Description("Optional id of this logical change; a retry with the same id is applied once.")] string? operationId = null,
        CancellationToken cancellationToken = default)
    {
        var caller = Authorize(ns, WriteRight(key));
        if (!path.StartsWith('/')) throw new McpException($"path must be a JSON Pointer starting with '/' (got '{path}').");
        if (!double.IsFinite(by)) throw new McpException("by must be a finite number.");
        var patch = JsonPatch.Create().Increment(path, by).Build();
        return await Guard(async () => WriteOutcome(await store.PatchAsync(ns, key, patch, Options(caller, Expect.Any, operationId), cancellationToken).ConfigureAwait(false))).ConfigureAwait(false);
    }

    [McpServerTool(Name = "lock")]
    [Description("Acquires an exclusive lease on a named lock. Returns {acquired:true, token, leaseId, fence, expiresAt}: pass `fence` to write/patch " +
        "so a write made after your lease expired is refused, and call unlock with leaseId when done. If busy returns {acquired:false, holders}.")]
    public async Task<CallToolResult> LockAsync(
        [Description("Namespace.")] string ns,
        [Description("Lock name, e.g. \"accounts/42\".")] string name,
        [Description("Lease length in seconds (1..3600).")] double ttlSeconds = 30,
        [Description("How long to wait for the lock in seconds (0..60); 0 tries once.")] double waitSeconds = 0,
        CancellationToken cancellationToken = default)
    {
        var caller = Authorize(ns, ApiRights.Write);
        if (ttlSeconds is < 1 or > 3600 || double.IsNaN(ttlSeconds)) throw new McpException("ttlSeconds must be between 1 and 3600.");
        if (waitSeconds is < 0 or > 60 || double.IsNaN(waitSeconds)) throw new McpException("waitSeconds must be between 0 and 60.");
        return await Guard(async () =>
        {
            var request = new LockRequest { Owner = Agent(caller), Ttl = TimeSpan.FromSeconds(ttlSeconds), Wait = TimeSpan.FromSeconds(waitSeconds) };
            var result = await locks.AcquireAsync(ns, name, request, cancellationToken).ConfigureAwait(false);
            return result.Lease is { } lease
                ? Ok(new { acquired = true, name, token = lease.Token, leaseId = lease.LeaseId, fence = $"{lease.Name}:{lease.Token}", expiresAt = lease.ExpiresAt })
                : Ok(new { acquired = false, name, status = result.Status.ToString(), holders = result.Holders, hint = result.Message ?? "The lock is held by someone else; wait and try again, or work on something else." });
        }).ConfigureAwait(false);
    }

    [McpServerTool(Name = "unlock", Idempotent = true)]
    [Description("Releases a lease acquired with lock. Returns {released:true}, or released=false when the lease had already expired or been released.")]
    public async Task<CallToolResult> UnlockAsync(
        [Description("Namespace.")] string ns,
        [Description("Lock name.")] string name,
        [Description("The leaseId returned by lock.")] string leaseId,
        CancellationToken cancellationToken = default)
    {
        Authorize(ns, ApiRights.Write);
        if (string.IsNullOrWhiteSpace(leaseId)) throw new McpException("leaseId is required (the leaseId returned by lock).");
        return await Guard(async () => Ok(new { released = await locks.ReleaseAsync(ns, name, leaseId, cancellationToken).ConfigureAwait(false), name })).ConfigureAwait(false);
    }

    // ------------------------------------------------------------------ plumbing

    private Caller Authorize(string ns, ApiRights needed)
    {
        var caller = accessor.HttpContext?.Items[McpEndpoint.CallerItem] as Caller ?? new Caller(null);
        if (string.IsNullOrEmpty(ns)) throw new McpException("ns (namespace) is required.");
        if (auth.Enabled && !Auth.Permits(caller, ns, needed))
            throw new McpException($"Forbidden: this API key may not {Auth.Describe(needed)} in namespace '{ns}'.");
        return caller;
    }

    private static ApiRights WriteRight(string key) => key is not null && key.StartsWith("_sys/", StringComparison.Ordinal) ? ApiRights.Admin : ApiRights.Write;

    private string Agent(Caller caller)
    {
        var header = accessor.HttpContext is { } http ? HttpIo.HeaderText(http.Request, "Concord-Agent") : "";
        return header.Length > 0 ? header : caller.Key?.Name ?? "mcp";
    }

    private WriteOptions Options(Caller caller, Expectation expect, string? operationId) => new()
    {
        Expect = expect,
        Agent = Agent(caller),
        IdempotencyKey = string.IsNullOrEmpty(operationId) ? null : "mcp:" + operationId,
    };

    private static Expectation WithFence(Expectation expect, string? fence)
    {
        if (string.IsNullOrEmpty(fence)) return expect;
        var colon = fence.LastIndexOf(':');
        if (colon <= 0 || !long.TryParse(fence.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var token) || token <= 0)
            throw new McpException($"fence must be \"LOCK:TOKEN\" exactly as returned by the lock tool (got '{fence}').");
        return expect.WithFence(new Fence(fence[..colon], token));
    }

    private static CallToolResult WriteOutcome(WriteResult r)
    {
        if (r.IsApplied)
            return Ok(new { ok = true, key = r.Key, value = r.Record!.IsDeleted ? (JsonElement?)null : r.Record.Value, version = r.Version, revision = r.Revision, replayed = r.Replayed ? true : (bool?)null });
        var current = r.Record;
        var hint = r.Conflict switch
        {
            ConflictKind.VersionMismatch or ConflictKind.AlreadyExists or ConflictKind.NotFound =>
                $"Someone else changed '{r.Key}'. Recompute from currentValue and retry with expectedVersion={current?.Version ?? 0}.",
            ConflictKind.TestFailed => "A test operation did not hold on the current value. Read currentValue, decide again, and send a new patch.",
            ConflictKind.StaleFence => "Your lock lease was lost (expired or taken over). Acquire the lock again and redo the work with the new fence.",
            ConflictKind.BlindWriteRefused => $"State the version you read: retry with expectedVersion={current?.Version ?? 0}.",
            _ => "Re-read the key and decide again.",
        };
        return Ok(new
        {
            ok = false,
            key = r.Key,
            conflict = Problems.WireJsonName(r.Conflict),
            currentVersion = current?.Version ?? 0,
            currentValue = current is { IsDeleted: false } ? current.Value : (JsonElement?)null,
            currentWriter = current?.Writer,
            message = r.Message,
            hint,
        });
    }

    private static CallToolResult Ok(object payload) => Result(payload);

    /// <summary>A successful tool result: the JSON as text (for the model) and as structured content (for programs).</summary>
    internal static CallToolResult Result(object payload)
    {
        var element = JsonSerializer.SerializeToElement(payload, Json);
        return new CallToolResult
        {
            Content = [new TextContentBlock { Text = element.GetRawText() }],
            StructuredContent = element,
        };
    }

    /// <summary>Turns store faults (bad key, value too large, ...) into tool errors the model can read; state is unchanged by them.</summary>
    private static Task<CallToolResult> Guard(Func<Task<CallToolResult>> body) => GuardAsync(body);

    internal static async Task<CallToolResult> GuardAsync(Func<Task<CallToolResult>> body)
    {
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (ConcordException e)
        {
            throw new McpException(e.IsTransient ? $"{e.Code} (transient, retry shortly): {e.Message}" : $"{e.Code}: {e.Message}");
        }
        catch (ArgumentException e)
        {
            throw new McpException($"invalid-request: {e.Message}");
        }
    }
}
