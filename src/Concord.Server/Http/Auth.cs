using Microsoft.AspNetCore.Http;

namespace Concord.Server.Http;

/// <summary>Who is calling, resolved from the API key.</summary>
internal sealed record Caller(ApiKeyOptions? Key)
{
    public string DefaultAgent => Key?.Name ?? "anonymous";
}

/// <summary>
/// API-key authentication and namespace/right authorization. A request outside its scope gets 403 before the store is
/// touched, so it learns nothing — not even whether a key exists.
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
        caller = new Caller(null);
        if (!Enabled) return null;
        var presented = Presented(http.Request);
        if (presented is null || !_keys.TryGetValue(presented, out var key))
        {
            http.Response.Headers.WWWAuthenticate = "Bearer";
            return Problems.Create(401, "unauthorized", "Unauthorized", "A valid API key is required (Authorization: Bearer KEY or X-Api-Key)");
        }
        caller = new Caller(key);
        if (!key.Allows(ns) || !Has(key.Rights, needed))
            return Problems.Create(403, "forbidden", "Forbidden", $"This API key may not {Describe(needed)} in namespace '{ns}'");
        return null;
    }

    private static bool Has(ApiRights granted, ApiRights needed) =>
        granted.HasFlag(ApiRights.Admin) || (needed != ApiRights.Admin && granted.HasFlag(needed)) || (needed == ApiRights.Read && granted.HasFlag(ApiRights.Write));

    private static string Describe(ApiRights needed) => needed switch
    {
        ApiRights.Read => "read",
        ApiRights.Write => "write",
        _ => "administer",
    };

    private static string? Presented(HttpRequest request)
    {
        var auth = request.Headers.Authorization.ToString();
        if (auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return auth["Bearer ".Length..].Trim();
        var header = request.Headers["X-Api-Key"].ToString();
        return header.Length > 0 ? header : null;
    }
}
