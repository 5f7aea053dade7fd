using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Templates;
using R1Sharp.Tokenization;

namespace R1Sharp.Cli.Commands;

public static class ChatTemplateCommand
{
    public static Command Create()
    {
        var dir = new Argument<string>("DIR") { Description = "folder with tokenizer.json and tokenizer_config.json (chat_template)" };
        var messages = new Option<string>("--messages") { Description = "JSON file: an array of {\"role\",\"content\"} messages as in OpenAI's API", Required = true };
        var generationPrompt = new Option<bool>("--add-generation-prompt") { Description = "end with the prompt that starts the assistant's turn" };
        var command = new Command("chat-template", "Render messages with the model's chat template: prints {\"text\":…, \"ids\":[…]}.") { dir, messages, generationPrompt };
        command.SetAction(parse => CommandRunner.Guard(() =>
        {
            var turns = ReadMessages(parse.GetValue(messages)!);
            var tokenizer = PretrainedTokenizer.Load(parse.GetValue(dir)!);
            var text = ChatTemplate.For(tokenizer).Render(turns, parse.GetValue(generationPrompt), tokenizer);
            Console.Out.WriteLine(JsonSerializer.Serialize(new { text, ids = tokenizer.Encode(text) }, CommandRunner.ReadableJson));
            return 0;
        }));
        return command;
    }

    /// An array of messages, or an object with a "messages" array; each needs a string role.
    public static JsonArray ReadMessages(string path)
    {
        if (!File.Exists(path)) throw new R1SharpException($"--messages: file not found: {path}");
        JsonNode? node;
        try { node = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new R1SharpException($"{path}: not valid JSON ({e.Message})"); }
        var array = node as JsonArray ?? node?["messages"] as JsonArray
            ?? throw new R1SharpException($"{path}: expected a JSON array of messages (or {{\"messages\": [...]}})");
        for (int i = 0; i < array.Count; i++)
        {
            if (array[i] is not JsonObject m || m["role"] is not JsonValue role || !role.TryGetValue<string>(out _))
                throw new R1SharpException($"{path}: message {i} needs a string \"role\"");
            if (m["content"] is JsonNode c && c is not JsonValue && c is not JsonArray)
                throw new R1SharpException($"{path}: message {i} has a \"content\" that is neither a string nor null");
        }
        return array;
    }
}
