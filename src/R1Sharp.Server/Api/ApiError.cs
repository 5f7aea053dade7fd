using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace R1Sharp.Server.Api;

/// A request the server refuses, answered in OpenAI's error shape:
/// `{"error": {"message", "type", "param", "code"}}`.
public sealed class ApiError(int status, string message, string? param = null, string? code = null, string? type = null) : Exception(message)
{
    public int Status { get; } = status;
    public string? Param { get; } = param;
    public string? Code { get; } = code;
    public string Type { get; } = type ?? (status switch
    {
        401 => "authentication_error",
        429 => "rate_limit_error",
        >= 500 => "server_error",
        _ => "invalid_request_error",
    });

    public static ApiError Invalid(string param, string message) => new(400, message, param, "invalid_value");

    public JsonObject Body() => new()
    {
        ["error"] = new JsonObject { ["message"] = Message, ["type"] = Type, ["param"] = Param, ["code"] = Code },
    };

    public Task WriteAsync(HttpResponse response)
    {
        response.StatusCode = Status;
        response.ContentType = "application/json";
        return response.WriteAsync(Body().ToJsonString(Json.Options));
    }
}
