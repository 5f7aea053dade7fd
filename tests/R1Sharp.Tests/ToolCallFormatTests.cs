using System.Text.Json.Nodes;
using R1Sharp.Generation;
using R1Sharp.Templates;
using R1Sharp.Tokenization;

namespace R1Sharp.Tests;

/// Tool calls parsed back from the formats the official chat templates write them in.
public class ToolCallFormatTests
{
    private static JsonObject Call(string name, string arguments) => new()
    {
        ["id"] = "call_1", ["type"] = "function", ["function"] = new JsonObject { ["name"] = name, ["arguments"] = arguments },
    };

    /// What the template writes for an assistant turn holding `calls`, as the model would generate it (its end-of-turn token cut).
    private static string Written(string reference, JsonArray calls, string endOfTurn)
    {
        var tokenizer = PretrainedTokenizer.Load(TestPaths.ReferenceTokenizer(reference));
        var template = ChatTemplate.For(tokenizer);
        JsonArray user = [new JsonObject { ["role"] = "user", ["content"] = "Weather in Paris and Rome?" }];
        var prompt = template.Render(user, true, tokenizer);
        var messages = user.DeepClone().AsArray();
        messages.Add(new JsonObject { ["role"] = "assistant", ["content"] = null, ["tool_calls"] = calls });
        if (ToolCallFormat.TemplateReadsArgumentsAsObjects(tokenizer.ChatTemplate)) ToolCallFormat.ParseArguments(messages);
        var full = template.Render(messages, false, tokenizer);
        Assert.StartsWith(prompt, full);
        var turn = full[prompt.Length..].TrimEnd();
        Assert.EndsWith(endOfTurn, turn);
        return turn[..^endOfTurn.Length];
    }

    [Theory]
    [InlineData("qwen2_5", "hermes", "<|im_end|>")]
    [InlineData("deepseek_v3", "deepseek_v3", "<｜end▁of▁sentence｜>")]
    public void CallsTheOfficialTemplatesWriteParseBack(string reference, string parser, string endOfTurn)
    {
        var text = Written(reference, [Call("get_weather", """{"city": "Paris"}"""), Call("get_weather", """{"city": "Rome", "days": [1, 2]}""")], endOfTurn);
        var format = ToolCallFormat.ForTemplate(PretrainedTokenizer.Load(TestPaths.ReferenceTokenizer(reference)).ChatTemplate)!;
        Assert.Equal(parser, format.Name);
        var (content, calls) = format.Parse(text);
        Assert.Equal("", content.Trim());
        Assert.Equal(["get_weather", "get_weather"], calls.Select(c => c.Name));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"city": "Rome", "days": [1, 2]}"""), JsonNode.Parse(calls[1].Arguments)), calls[1].Arguments);
        Assert.NotEqual(calls[0].Id, calls[1].Id);
    }

    [Fact]
    public void EachFormatParsesItsCallsAndLeavesAnythingElseAsText()
    {
        var hermes = ToolCallFormat.ByName("hermes");
        var (content, calls) = hermes.Parse("Let me look.\n<tool_call>\n{\"name\": \"f\", \"arguments\": \"{\\\"a\\\": 1}\"}\n</tool_call>");
        Assert.Equal(("Let me look.\n", "f", """{"a":1}"""), (content, calls[0].Name, calls[0].Arguments));   // arguments given as JSON text
        var v31 = ToolCallFormat.ByName("deepseek_v31");
        (content, calls) = v31.Parse("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": \"Paris\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>");
        Assert.Equal(("", "get_weather", """{"city":"Paris"}"""), (content, calls[0].Name, calls[0].Arguments));

        // Not JSON, not an object, unclosed, text after the calls, no name: all stay text, never an error.
        foreach (var text in new[]
        {
            "<tool_call>{not json}</tool_call>", "<tool_call>{\"name\": \"f\", \"arguments\": [1]}</tool_call>", "<tool_call>{\"name\": \"f\", \"arguments\": {}}",
            "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call> and more", "<tool_call>{\"arguments\": {}}</tool_call>", "<tool_call>" + new string('{', 5000) + "</tool_call>",
        })
            Assert.Equal((text, 0), (hermes.Parse(text).Content, hermes.Parse(text).Calls.Count));
        Assert.Contains("not supported", Assert.Throws<R1SharpException>(() => ToolCallFormat.ByName("mistral")).Message);
    }

    [Fact]
    public void StreamedTextIsHeldBackOnlyWhileItMayOpenACall()
    {
        var stream = new ToolCallStream(ToolCallFormat.ByName("hermes"));
        Assert.Equal("Sure", stream.Add("Sure"));
        Assert.Equal(". ", stream.Add(". <tool"));                      // "<tool" may open a call: held
        Assert.Equal("", stream.Add("_call>{\"name\": \"f\", \"arguments\": {}}"));
        Assert.Equal("", stream.Add("</tool_call>"));
        var (rest, calls) = stream.Finish();
        Assert.Equal(("", "f"), (rest, calls.Single().Name));

        var plain = new ToolCallStream(ToolCallFormat.ByName("hermes"));
        Assert.Equal("a ", plain.Add("a <"));
        Assert.Equal("<b", plain.Add("b"));                               // "<b" cannot open one: passed on
        var end = plain.Finish();
        Assert.Equal(("", 0), (end.Content, end.Calls.Count));
    }
}
