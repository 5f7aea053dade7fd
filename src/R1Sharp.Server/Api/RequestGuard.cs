using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace R1Sharp.Server.Api;

/// Endpoint metadata: the endpoint needs the API key. The check follows the route that matched,
/// so no spelling, encoding or later route of the path escapes it.
public sealed class ApiKeyRequired
{
    public static readonly ApiKeyRequired Instance = new();
}

/// Checks each request before its endpoint runs: the Host header (a page on another site that
/// rebinds its DNS name to this machine keeps its own name), the Origin of browser requests
/// (cross-site requests are refused unless allowed), and the API key of endpoints that need one,
/// compared in constant time.
public static class RequestGuard
{
    public static IApplicationBuilder UseRequestGuard(this IApplicationBuilder app, ServerOptions options)
    {
        var hosts = options.EffectiveAllowedHosts;
        var origins = options.AllowedOrigins.Select(o => o.TrimEnd('/')).ToArray();
        var key = options.ApiKey is { } k ? SHA256.HashData(Encoding.UTF8.GetBytes(k)) : null;
        return app.Use(async (context, next) =>
        {
            var refusal = HostRefusal(context.Request, hosts) ?? OriginRefusal(context.Request, origins)
                ?? (key is not null && context.GetEndpoint()?.Metadata.GetMetadata<ApiKeyRequired>() is not null ? KeyRefusal(context.Request, key) : null);
            if (refusal is not null) await refusal.WriteAsync(context.Response);
            else await next(context);
        });
    }

    private static ApiError? HostRefusal(HttpRequest request, IReadOnlyList<string> hosts)
    {
        var host = request.Host.Host;
        if (hosts.Contains("*") || hosts.Any(h => string.Equals(h, host, StringComparison.OrdinalIgnoreCase))) return null;
        return new ApiError(400, $"the Host '{request.Host}' is not served here; start the server with --allowed-hosts to accept it", null, "host_not_allowed");
    }

    /// Browsers send Origin on cross-site requests; the server's own origin and the allowed ones pass.
    private static ApiError? OriginRefusal(HttpRequest request, string[] origins)
    {
        var origin = request.Headers.Origin.ToString();
        if (origin.Length == 0) return null;
        if (origins.Contains("*") || origins.Contains(origin.TrimEnd('/'), StringComparer.OrdinalIgnoreCase)) return null;
        if (Uri.TryCreate(origin, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            && string.Equals(uri.Authority, request.Host.Value, StringComparison.OrdinalIgnoreCase)) return null;
        return new ApiError(403, $"cross-origin request from '{origin}' refused; start the server with --allowed-origins {origin} to allow it",
            null, "origin_not_allowed", "permission_error");
    }

    private static ApiError? KeyRefusal(HttpRequest request, byte[] expected)
    {
        var header = request.Headers.Authorization.ToString();
        if (header.Length == 0) return new ApiError(401, "missing API key: send 'Authorization: Bearer <key>'", null, "invalid_api_key");
        var given = header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header[7..].Trim() : "";
        var digest = SHA256.HashData(Encoding.UTF8.GetBytes(given));
        return CryptographicOperations.FixedTimeEquals(digest, expected) ? null : new ApiError(401, "incorrect API key", null, "invalid_api_key");
    }
}
