using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace R1Sharp.Generation;

/// One function call the model asked for: OpenAI's `tool_calls[]` entry (`arguments` is JSON text).
public sealed record ToolCall(string Id, string Name, string Arguments)
{
    public static string NewId() => "call_" + Guid.NewGuid().ToString("N")[..24];
}

/// How a model family writes tool calls after its answer text, so they can be parsed back into
/// OpenAI's `tool_calls`: Hermes/Qwen (`<tool_call>{"name", "arguments"}</tool_call>`), DeepSeek-V3/R1
/// (`<｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME` + a ```json block) and DeepSeek-V3.1
/// (`<｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGS`). Calls that do not parse stay text.
public abstract class ToolCallFormat
{
    /// vLLM's `--tool-call-parser` names.
    public abstract string Name { get; }
    /// The text that opens the calls; what comes before it is the answer.
    public abstract string Start { get; }
    /// What the prompt is continued with so that the model calls `function` (any function when null).
    public abstract string Forced(string? function);
    /// (name, arguments) of each call in `text` (which begins with Start), or null when it does not parse.
    protected abstract List<(string Name, JsonNode? Arguments)>? Calls(string text);

    protected static readonly TimeSpan Timeout = TimeSpan.FromSeconds(1);
    protected const RegexOptions Options = RegexOptions.Singleline | RegexOptions.CultureInvariant;

    /// The answer text and the calls after it. Arguments must be a JSON object (or JSON text of one).
    public (string Content, IReadOnlyList<ToolCall> Calls) Parse(string text)
    {
        var at = text.IndexOf(Start, StringComparison.Ordinal);
        if (at < 0) return (text, []);
        List<(string Name, JsonNode? Arguments)>? calls;
        try { calls = Calls(text[at..]); }
        catch (RegexMatchTimeoutException) { calls = null; }
        if (calls is null || calls.Count == 0) return (text, []);
        var parsed = new List<ToolCall>();
        foreach (var (name, arguments) in calls)
        {
            var json = arguments is JsonValue v && v.TryGetValue<string>(out var s) ? TryParse(s) : arguments;
            if (json is not JsonObject || string.IsNullOrWhiteSpace(name)) return (text, []);
            parsed.Add(new ToolCall(ToolCall.NewId(), name.Trim(), json.ToJsonString()));
        }
        return (text[..at], parsed);
    }

    protected static JsonNode? TryParse(string json)
    {
        try { return JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { MaxDepth = 64 }); }
        catch (JsonException) { return null; }
    }

    /// Whether the template writes `arguments | tojson` (Qwen's): it wants them as an object, while OpenAI sends JSON text.
    public static bool TemplateReadsArgumentsAsObjects(string? template) => template is not null && Regex.IsMatch(template, @"arguments\s*\|\s*tojson");

    /// Assistant tool calls' `arguments` JSON text becomes the object it holds (as vLLM does for such templates).
    public static void ParseArguments(JsonArray messages)
    {
        foreach (var call in messages.OfType<JsonObject>().Where(m => (string?)m["role"] == "assistant").SelectMany(m => m["tool_calls"] as JsonArray ?? []))
            if (call?["function"] is JsonObject f && f["arguments"] is JsonValue a && a.TryGetValue<string>(out var text) && TryParse(text) is JsonObject parsed)
                f["arguments"] = parsed;
    }

    public static readonly IReadOnlyList<ToolCallFormat> All = [new HermesToolCalls(), new DeepSeekV3ToolCalls(), new DeepSeekV31ToolCalls()];

    public static ToolCallFormat ByName(string name) => All.FirstOrDefault(f => f.Name == name)
        ?? throw new R1SharpException($"tool-call parser '{name}' is not supported ({string.Join(", ", All.Select(f => f.Name))})");

    /// The format a chat template writes assistant tool calls in, or null when it writes none.
    public static ToolCallFormat? ForTemplate(string? template) =>
        template is null ? null
        : template.Contains("<tool_call>", StringComparison.Ordinal) ? All[0]
        : template.Contains("<｜tool▁calls▁begin｜>", StringComparison.Ordinal) ? (template.Contains("```json", StringComparison.Ordinal) ? All[1] : All[2])
        : null;
}

public sealed class HermesToolCalls : ToolCallFormat
{
    private static readonly Regex Block = new(@"<tool_call>\s*(?<json>.*?)\s*</tool_call>", Options, Timeout);

    public override string Name => "hermes";
    public override string Start => "<tool_call>";
    public override string Forced(string? function) => function is null ? "<tool_call>" : $"<tool_call>\n{{\"name\": {JsonValue.Create(function).ToJsonString()}, \"arguments\": ";

    protected override List<(string, JsonNode?)>? Calls(string text)
    {
        var calls = new List<(string, JsonNode?)>();
        var end = 0;
        foreach (Match m in Block.Matches(text))
        {
            if (!string.IsNullOrWhiteSpace(text[end..m.Index])) return null;   // only whitespace between calls
            if (TryParse(m.Groups["json"].Value) is not JsonObject call || call["name"] is not JsonValue n || !n.TryGetValue<string>(out var name)) return null;
            calls.Add((name, call["arguments"] ?? call["parameters"] ?? new JsonObject()));
            end = m.Index + m.Length;
        }
        return string.IsNullOrWhiteSpace(text[end..]) ? calls : null;
    }
}

public sealed class DeepSeekV3ToolCalls : ToolCallFormat
{
    private static readonly Regex Call = new(@"<｜tool▁call▁begin｜>(?<type>[^<]*?)<｜tool▁sep｜>(?<name>[^\n<]+)\n```(?:json)?\n(?<args>.*?)\n```\s*<｜tool▁call▁end｜>", Options, Timeout);

    public override string Name => "deepseek_v3";
    public override string Start => "<｜tool▁calls▁begin｜>";
    public override string Forced(string? function) => "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>" + (function is null ? "" : function + "\n```json\n");

    protected override List<(string, JsonNode?)>? Calls(string text) => DeepSeekCalls(text, Call);

    internal static List<(string, JsonNode?)>? DeepSeekCalls(string text, Regex call)
    {
        var calls = new List<(string, JsonNode?)>();
        var rest = text["<｜tool▁calls▁begin｜>".Length..];
        var end = 0;
        foreach (Match m in call.Matches(rest))
        {
            if (!string.IsNullOrWhiteSpace(rest[end..m.Index])) return null;
            calls.Add((m.Groups["name"].Value, JsonValue.Create(m.Groups["args"].Value)));
            end = m.Index + m.Length;
        }
        var tail = rest[end..].Trim();
        return tail is "" or "<｜tool▁calls▁end｜>" || tail.StartsWith("<｜tool▁calls▁end｜>", StringComparison.Ordinal) && string.IsNullOrWhiteSpace(tail["<｜tool▁calls▁end｜>".Length..]) ? calls : null;
    }
}

public sealed class DeepSeekV31ToolCalls : ToolCallFormat
{
    private static readonly Regex Call = new(@"<｜tool▁call▁begin｜>(?<name>[^<]+?)<｜tool▁sep｜>(?<args>.*?)<｜tool▁call▁end｜>", Options, Timeout);

    public override string Name => "deepseek_v31";
    public override string Start => "<｜tool▁calls▁begin｜>";
    public override string Forced(string? function) => "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>" + (function is null ? "" : function + "<｜tool▁sep｜>");

    protected override List<(string, JsonNode?)>? Calls(string text) => DeepSeekV3ToolCalls.DeepSeekCalls(text, Call);
}
