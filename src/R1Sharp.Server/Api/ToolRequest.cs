using System.Text.Json.Nodes;
using R1Sharp.Generation;

namespace R1Sharp.Server.Api;

/// A chat request's tools: what the chat template renders, the format the answer's calls are parsed
/// with, the text that forces a call (`tool_choice` "required" or a named function), and
/// `parallel_tool_calls` (false keeps the first call only).
public sealed record ToolRequest(JsonArray? Rendered, ToolCallFormat? Parser, string? Forced, bool Parallel)
{
    public static ToolRequest Read(RequestReader r, ToolCallFormat? format)
    {
        var tools = r.Array("tools");
        var parallel = r.Bool("parallel_tool_calls") ?? true;
        var choice = r.Body["tool_choice"];
        var mode = choice is JsonValue v && v.TryGetValue<string>(out var s) ? s : choice is null ? "auto" : null;
        if (tools is null || tools.Count == 0)
            return mode is "auto" or "none" ? new(null, null, null, parallel) : throw ApiError.Invalid("tool_choice", "'tool_choice' needs 'tools'");
        var names = tools.Select((t, i) => Name(t, i)).ToList();
        if (mode is "none") return new(null, null, null, parallel);
        if (mode is "auto") return new(tools, format, null, parallel);
        if (format is null)
            throw ApiError.Invalid("tool_choice", "this model's chat template writes no tool calls R1Sharp can parse; start the server with --tool-call-parser to force a call");
        if (mode is "required") return new(tools, format, format.Forced(null), parallel);
        if (mode is null && choice is JsonObject o && (string?)o["type"] == "function" && o["function"] is JsonObject f && f["name"] is JsonValue n && n.TryGetValue<string>(out var name))
            return names.Contains(name) ? new(tools, format, format.Forced(name), parallel) : throw ApiError.Invalid("tool_choice", $"'tool_choice' names '{name}', which is not among the tools");
        throw ApiError.Invalid("tool_choice", "'tool_choice' must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": …}}");
    }

    private static string Name(JsonNode? tool, int index) =>
        tool is JsonObject t && (string?)t["type"] == "function" && t["function"] is JsonObject f && f["name"] is JsonValue n && n.TryGetValue<string>(out var name) && name.Length > 0
            ? name
            : throw ApiError.Invalid($"tools[{index}]", $"'tools[{index}]' must be {{\"type\": \"function\", \"function\": {{\"name\": …, \"parameters\": …}}}}");
}
