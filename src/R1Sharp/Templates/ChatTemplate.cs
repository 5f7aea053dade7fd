using System.Text.Json.Nodes;
using R1Sharp.Tokenization;

namespace R1Sharp.Templates;

/// One chat turn as OpenAI's API and chat templates see it.
public sealed record ChatTurn(string Role, string? Content);

/// A tokenizer_config.json `chat_template`, rendered as transformers' apply_chat_template does
/// (trim_blocks, lstrip_blocks, loop controls, tojson, raise_exception, strftime_now).
public sealed class ChatTemplate
{
    private readonly List<Node> _nodes;

    private ChatTemplate(List<Node> nodes) => _nodes = nodes;

    public static ChatTemplate Parse(string source)
    {
        try
        {
            return new ChatTemplate(JinjaParser.Parse(source));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw Failure(e);
        }
    }

    /// The model folder's template (tokenizer_config.json), or a clear error when it has none.
    public static ChatTemplate For(PretrainedTokenizer tokenizer) =>
        Parse(tokenizer.ChatTemplate ?? throw new R1SharpException("the tokenizer has no chat_template (tokenizer_config.json)"));

    /// Names the renderer defines (variables and builtins): extra variables may not replace them, or a
    /// request could swap the conversation it was validated with for another.
    public static readonly IReadOnlySet<string> ReservedNames = new HashSet<string>
    {
        "messages", "tools", "documents", "add_generation_prompt", "bos_token", "eos_token", "pad_token", "unk_token",
        "namespace", "range", "raise_exception", "strftime_now", "dict", "loop", "true", "false", "none", "True", "False", "None",
    };

    /// messages: a JSON array of {role, content, ...} objects as in OpenAI's API. `tools` as OpenAI
    /// gives them (or null); `extra` are further template variables (e.g. enable_thinking).
    public string Render(JsonArray messages, bool addGenerationPrompt, PretrainedTokenizer? tokenizer = null,
        JsonArray? tools = null, IReadOnlyDictionary<string, object?>? extra = null) =>
        RenderWithGeneratedSpans(messages, addGenerationPrompt, tokenizer, tools, extra).Text;

    /// The rendered text and where its `{% generation %}` blocks wrote (empty when the template has none).
    public (string Text, IReadOnlyList<(int Start, int End)> Generated) RenderWithGeneratedSpans(JsonArray messages, bool addGenerationPrompt,
        PretrainedTokenizer? tokenizer = null, JsonArray? tools = null, IReadOnlyDictionary<string, object?>? extra = null)
    {
        var variables = new Dictionary<string, object?>
        {
            ["messages"] = JinjaValues.FromJson(messages),
            ["tools"] = JinjaValues.FromJson(tools),
            ["documents"] = null,
            ["add_generation_prompt"] = addGenerationPrompt,
        };
        if (tokenizer is not null)
        {
            foreach (var (name, value) in new[] { ("bos_token", tokenizer.BosToken), ("eos_token", tokenizer.EosToken), ("pad_token", tokenizer.PadToken) })
                variables[name] = value;
        }
        if (extra is not null)
            foreach (var (k, v) in extra)
                variables[k] = ReservedNames.Contains(k) ? throw new R1SharpException($"chat template: the variable '{k}' is set by the renderer and cannot be passed in") : v;
        try
        {
            var interpreter = new JinjaInterpreter(variables);
            var text = interpreter.Render(_nodes);
            return (text, interpreter.GeneratedSpans);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw Failure(e);
        }
    }

    /// Whatever goes wrong inside a template is the template's error (a file the user chose), named as such.
    private static R1SharpException Failure(Exception e) =>
        new(e is JinjaException ? $"chat template: {e.Message}" : $"chat template: {e.GetType().Name}: {e.Message}", e);

    public string Render(IEnumerable<ChatTurn> messages, bool addGenerationPrompt, PretrainedTokenizer? tokenizer = null,
        IReadOnlyDictionary<string, object?>? extra = null) =>
        Render(new JsonArray(messages.Select(m => (JsonNode)new JsonObject { ["role"] = m.Role, ["content"] = m.Content }).ToArray()),
            addGenerationPrompt, tokenizer, null, extra);
}
