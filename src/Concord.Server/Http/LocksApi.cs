using Concord.Coordination.Locks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Concord.Server.Http;

/// <summary><c>/v1/ns/{ns}/locks</c>: leases with fencing tokens.</summary>
internal static class LocksApi
{
    internal sealed record AcquireBody(string? Name, string? Owner, LockMode Mode = LockMode.Exclusive, long TtlMs = 30_000, long WaitMs = 0);
    internal sealed record LeaseBody(string? Name, string? LeaseId, long TtlMs = 30_000);
    internal sealed record LeaseDto(string Name, string Owner, LockMode Mode, long Token, string LeaseId, DateTimeOffset ExpiresAt);

    public static void MapLocksApi(this RouteGroupBuilder v1)
    {
        var locks = v1.MapGroup("/ns/{ns}/locks").WithTags("Locks");
        locks.MapGet("", ListAsync).WithName("ListLocks");
        locks.MapPost("/acquire", AcquireAsync).WithName("AcquireLock");
        locks.MapPost("/renew", RenewAsync).WithName("RenewLock");
        locks.MapPost("/release", ReleaseAsync).WithName("ReleaseLock");
    }

    private static async Task<IResult> ListAsync(HttpContext http, string ns, ILockService locks, Auth auth, CancellationToken ct)
    {
        if (auth.Check(http, ns, ApiRights.Read, out _) is { } denied) return denied;
        return Results.Json(await locks.ListAsync(ns, ct), Wire.WireJson.Options);
    }

    private static async Task<IResult> AcquireAsync(HttpContext http, string ns, ILockService locks, Auth auth, ConcordServerOptions options, CancellationToken ct)
    {
        if (auth.Check(http, ns, ApiRights.Write, out var caller) is { } denied) return denied;
        using var doc = await HttpIo.ReadJsonAsync(http.Request, options.MaxRequestBodyBytes, ct);
        var body = HttpIo.Deserialize<AcquireBody>(doc, "Lock request");
        if (string.IsNullOrEmpty(body.Name)) throw new HttpIo.BadInputException(400, "invalid-request", "'name' is required");
        var request = new LockRequest
        {
            Owner = body.Owner ?? HttpIo.Agent(http.Request, caller) ?? "anonymous",
            Mode = body.Mode,
            Ttl = TimeSpan.FromMilliseconds(body.TtlMs),
            Wait = TimeSpan.FromMilliseconds(body.WaitMs),
        };
        var result = await locks.AcquireAsync(ns, body.Name, request, ct);
        if (result.Lease is { } lease)
            return Results.Json(new LeaseDto(lease.Name, lease.Owner, lease.Mode, lease.Token, lease.LeaseId, lease.ExpiresAt), Wire.WireJson.Options);
        if (result.Status == LockStatus.TooManyWaiters)
            return Problems.Create(429, "too-many-waiters", "Too many waiters", result.Message ?? "", new Dictionary<string, object?> { ["holders"] = result.Holders });
        return Problems.Create(409, result.Status == LockStatus.Deadlock ? "deadlock" : "lock-busy",
            result.Status == LockStatus.Deadlock ? "Deadlock" : "Lock busy", result.Message ?? "", new Dictionary<string, object?> { ["holders"] = result.Holders });
    }

    private static async Task<IResult> RenewAsync(HttpContext http, string ns, ILockService locks, Auth auth, ConcordServerOptions options, CancellationToken ct)
    {
        if (auth.Check(http, ns, ApiRights.Write, out _) is { } denied) return denied;
        using var doc = await HttpIo.ReadJsonAsync(http.Request, options.MaxRequestBodyBytes, ct);
        var body = HttpIo.Deserialize<LeaseBody>(doc, "Renew request");
        if (string.IsNullOrEmpty(body.Name) || string.IsNullOrEmpty(body.LeaseId)) throw new HttpIo.BadInputException(400, "invalid-request", "'name' and 'leaseId' are required");
        var expires = await locks.RenewAsync(ns, body.Name, body.LeaseId, TimeSpan.FromMilliseconds(body.TtlMs), ct);
        return expires is { } e
            ? Results.Json(new { expiresAt = e }, Wire.WireJson.Options)
            : Problems.Create(409, "lease-lost", "Lease lost", $"The lease '{body.LeaseId}' on '{body.Name}' is no longer held");
    }

    private static async Task<IResult> ReleaseAsync(HttpContext http, string ns, ILockService locks, Auth auth, ConcordServerOptions options, CancellationToken ct)
    {
        if (auth.Check(http, ns, ApiRights.Write, out _) is { } denied) return denied;
        using var doc = await HttpIo.ReadJsonAsync(http.Request, options.MaxRequestBodyBytes, ct);
        var body = HttpIo.Deserialize<LeaseBody>(doc, "Release request");
        if (string.IsNullOrEmpty(body.Name) || string.IsNullOrEmpty(body.LeaseId)) throw new HttpIo.BadInputException(400, "invalid-request", "'name' and 'leaseId' are required");
        return Results.Json(new { released = await locks.ReleaseAsync(ns, body.Name, body.LeaseId, ct) }, Wire.WireJson.Options);
    }
}
