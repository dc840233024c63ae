using Microsoft.AspNetCore.Http;

namespace Concord.Server.Http;

/// <summary>Who is calling, resolved from the API key (null key: authentication is off).</summary>
internal sealed record Caller(ApiKeyOptions? Key)
{
    /// <summary>The key's name, or null (no writer recorded) when authentication is off.</summary>
    public string? DefaultAgent => Key?.Name;
}

/// <summary>
/// API-key authentication and namespace/right authorization. Every route calls <see cref="Check"/> before it touches
/// the store, so a request outside its scope gets 401/403 and learns nothing — not even whether a key exists: the
/// 403 body names only the namespace and the right, which the caller already knows.
/// </summary>
internal sealed class Auth(ConcordServerOptions options)
{
    private readonly Dictionary<string, ApiKeyOptions> _keys = options.ApiKeys
        .Where(k => !string.IsNullOrEmpty(k.Key))
        .ToDictionary(k => k.Key, StringComparer.Ordinal);

    public bool Enabled => _keys.Count > 0;

    /// <summary>Null when allowed; otherwise the 401/403 response.</summary>
    public IResult? Check(HttpContext http, string ns, ApiRights needed, out Caller caller)
    {
        if (Authenticate(http, out caller) is { } unauthorized) return unauthorized;
        return Permits(caller, ns, needed) ? null : Forbidden(ns, needed);
    }

    /// <summary>Null when the request carries a valid key (or auth is off); otherwise the 401 response.</summary>
    public IResult? Authenticate(HttpContext http, out Caller caller)
    {
        caller = new Caller(null);
        if (!Enabled) return null;
        var presented = Presented(http.Request);
        if (presented is null || !_keys.TryGetValue(presented, out var key))
        {
            http.Response.Headers.WWWAuthenticate = "Bearer";
            return Problems.Create(401, "unauthorized", "Unauthorized", "A valid API key is required (Authorization: Bearer KEY or X-Api-Key: KEY)");
        }
        caller = new Caller(key);
        return null;
    }

    /// <summary>True when <paramref name="caller"/> may exercise <paramref name="needed"/> in <paramref name="ns"/>.</summary>
    public static bool Permits(Caller caller, string ns, ApiRights needed) =>
        caller.Key is not { } key || (key.Allows(ns) && Has(key.Rights, needed));

    public static IResult Forbidden(string ns, ApiRights needed) =>
        Problems.Create(403, "forbidden", "Forbidden", $"This API key may not {Describe(needed)} in namespace '{ns}'");

    public static string Describe(ApiRights needed) => needed switch
    {
        ApiRights.Read => "read",
        ApiRights.Write => "write",
        _ => "administer (write reserved _sys/ keys)",
    };

    private static bool Has(ApiRights granted, ApiRights needed) =>
        granted.HasFlag(ApiRights.Admin) || (needed != ApiRights.Admin && granted.HasFlag(needed)) || (needed == ApiRights.Read && granted.HasFlag(ApiRights.Write));

    private static string? Presented(HttpRequest request)
    {
        var auth = request.Headers.Authorization.ToString();
        if (auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return auth["Bearer ".Length..].Trim();
        var header = request.Headers["X-Api-Key"].ToString();
        return header.Length > 0 ? header : null;
    }
}
