using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace R1Sharp.Server.Api;

/// Reads an OpenAI request body: malformed JSON and wrong-typed or out-of-range fields become 400s
/// naming the field; fields the server does not know are ignored, as OpenAI does.
public sealed class RequestReader(JsonObject body)
{
    public JsonObject Body => body;

    /// The body must be declared JSON: a browser sends a cross-site `text/plain` POST without asking first.
    public static async Task<RequestReader> ReadAsync(HttpRequest request)
    {
        if (!request.HasJsonContentType())
            throw new ApiError(415, $"the request body must be JSON (Content-Type: application/json), got '{request.ContentType}'", null, "unsupported_media_type");
        JsonNode? node;
        try
        {
            node = await JsonNode.ParseAsync(request.Body, cancellationToken: request.HttpContext.RequestAborted);
        }
        catch (JsonException e)
        {
            throw new ApiError(400, $"the request body is not valid JSON: {e.Message}", null, "invalid_json");
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw new ApiError(413, $"the request body is larger than {request.HttpContext.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize} bytes", null, "request_too_large");
        }
        var body = node as JsonObject ?? throw new ApiError(400, "the request body must be a JSON object", null, "invalid_json");
        if (FirstUnreadableString(body) is { } path)
            throw new ApiError(400, $"'{path}' is not valid Unicode text (an unpaired surrogate escape such as \\ud800)", path, "invalid_json");
        return new RequestReader(body);
    }

    /// JSON may escape half a surrogate pair, which no UTF-8 text can hold: the path of the first such string.
    private static string? FirstUnreadableString(JsonNode? node, string path = "")
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (key, value) in o)
                    if (FirstUnreadableString(value, path.Length == 0 ? key : $"{path}.{key}") is { } found) return found;
                return null;
            case JsonArray a:
                for (int i = 0; i < a.Count; i++)
                    if (FirstUnreadableString(a[i], $"{path}[{i}]") is { } found) return found;
                return null;
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                try { v.GetValue<string>(); return null; }
                catch (InvalidOperationException) { return path; }
            default:
                return null;
        }
    }

    private JsonNode? Value(string name) => body.TryGetPropertyValue(name, out var v) ? v : null;

    public bool Has(string name) => Value(name) is not null;

    public string? String(string name, bool required = false)
    {
        var v = Value(name);
        if (v is null) return required ? throw new ApiError(400, $"'{name}' is required", name, "missing_required_parameter") : null;
        return v is JsonValue j && j.TryGetValue<string>(out var s) ? s : throw Type(name, "a string");
    }

    public double? Number(string name, double min, double max, bool minExclusive = false)
    {
        var v = Value(name);
        if (v is null) return null;
        if (v is not JsonValue j || j.GetValueKind() != JsonValueKind.Number) throw Type(name, "a number");
        var d = j.GetValue<double>();
        if (d < min || d > max || (minExclusive && d == min))
            throw ApiError.Invalid(name, $"'{name}' must be {(minExclusive ? ">" : ">=")} {min} and <= {max}, got {d}");
        return d;
    }

    public long? Integer(string name, long min, long max)
    {
        var v = Value(name);
        if (v is null) return null;
        if (v is not JsonValue j || j.GetValueKind() != JsonValueKind.Number || !j.TryGetValue<long>(out var l)) throw Type(name, "an integer");
        if (l < min || l > max) throw ApiError.Invalid(name, $"'{name}' must be between {min} and {max}, got {l}");
        return l;
    }

    public bool? Bool(string name)
    {
        var v = Value(name);
        if (v is null) return null;
        return v is JsonValue j && j.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? j.GetValue<bool>() : throw Type(name, "a boolean");
    }

    public JsonObject? Object(string name)
    {
        var v = Value(name);
        return v is null ? null : v as JsonObject ?? throw Type(name, "an object");
    }

    public JsonArray? Array(string name)
    {
        var v = Value(name);
        return v is null ? null : v as JsonArray ?? throw Type(name, "an array");
    }

    /// `stop`: a string or an array of up to 4 non-empty strings.
    public string[] Stop()
    {
        var v = Value("stop");
        if (v is null) return [];
        var items = v is JsonArray a ? a.ToList() : [v];
        if (items.Count > 4) throw ApiError.Invalid("stop", "'stop' takes at most 4 sequences");
        return items.Select(i => i is JsonValue j && j.TryGetValue<string>(out var s) && s.Length > 0 ? s
            : throw ApiError.Invalid("stop", "'stop' must be a non-empty string or an array of non-empty strings")).ToArray();
    }

    private static ApiError Type(string name, string expected) => new(400, $"'{name}' must be {expected}", name, "invalid_type");
}
