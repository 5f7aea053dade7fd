using System.Text.Json.Nodes;
using R1Sharp.Tokenization;

namespace R1Sharp.Server.Tests;

/// A scripted Llama checkpoint (as ScriptedModel: each token decides the next) that calls tools in the
/// Hermes format. Its tokenizer is the byte tokenizer plus four tokens: `<tool_call>`, `</tool_call>`,
/// a whole call's JSON and a call's arguments. Asked with tools, it calls get_weather for Paris; forced
/// (the prompt ends in `"arguments": `), it writes the arguments and closes the call; after a tool
/// result (its template then ends the prompt with a newline) it answers "ok".
static class ToolModel
{
    public const string Call = """{"name": "get_weather", "arguments": {"city": "Paris"}}""";
    public const string Arguments = """{"city": "Paris"}}""";
    public static readonly int ToolCallOpen = ByteTokenizer.VocabSize, ToolCallClose = ByteTokenizer.VocabSize + 1, CallToken = ByteTokenizer.VocabSize + 2, ArgumentsToken = ByteTokenizer.VocabSize + 3;

    public const string ChatTemplate =
        "{% if tools %}<|user|>tools: {{ tools | tojson }}{% endif %}"
        + "{% for m in messages %}{% if m.role == 'assistant' and m.tool_calls %}<|assistant|>{% for c in m.tool_calls %}<tool_call>{\"name\": \"{{ c.function.name }}\", \"arguments\": {{ c.function.arguments | tojson }}}</tool_call>{% endfor %}<|eos|>"
        + "{% elif m.role == 'tool' %}<|user|><tool_response>{{ m.content }}</tool_response>"
        + "{% elif m.role == 'assistant' %}<|assistant|>{{ m.content }}<|eos|>{% else %}<|user|>{{ m.content }}{% endif %}{% endfor %}"
        + "{% if add_generation_prompt %}<|assistant|>{% if messages[-1].role == 'tool' %}{{ '\\n' }}{% endif %}{% endif %}";

    private static int Byte(char c) => ByteTokenizer.ByteOffset + c;

    public static string Create()
    {
        var dir = Path.Combine(Path.GetTempPath(), "r1sharp-server-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var next = new Dictionary<int, int>
        {
            [ByteTokenizer.Assistant] = ToolCallOpen, [ToolCallOpen] = CallToken, [CallToken] = ToolCallClose, [ToolCallClose] = ByteTokenizer.Eos,
            [Byte(' ')] = ArgumentsToken, [ArgumentsToken] = ToolCallClose,
            [Byte('\n')] = Byte('o'), [Byte('o')] = Byte('k'), [Byte('k')] = ByteTokenizer.Eos,
        };
        ScriptedModel.WriteWeights(dir, ByteTokenizer.VocabSize + 4, next, 4096);
        ByteTokenizer.Instance.Save(dir);
        var tokenizerPath = Path.Combine(dir, "tokenizer.json");
        var tokenizer = JsonNode.Parse(File.ReadAllText(tokenizerPath))!.AsObject();
        var added = tokenizer["added_tokens"]!.AsArray();
        foreach (var (id, content) in new[] { (ToolCallOpen, "<tool_call>"), (ToolCallClose, "</tool_call>"), (CallToken, Call), (ArgumentsToken, Arguments) })
        {
            added.Add(new JsonObject { ["id"] = id, ["content"] = content, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["special"] = false });
            tokenizer["model"]!["vocab"]![content] = id;
        }
        File.WriteAllText(tokenizerPath, tokenizer.ToJsonString());
        var configPath = Path.Combine(dir, "tokenizer_config.json");
        var tokenizerConfig = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        tokenizerConfig["chat_template"] = ChatTemplate;
        File.WriteAllText(configPath, tokenizerConfig.ToJsonString());
        return dir;
    }
}
