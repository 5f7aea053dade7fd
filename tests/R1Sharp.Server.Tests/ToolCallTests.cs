using System.ClientModel.Primitives;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using OpenAI.Chat;
using R1Sharp.Generation;
using ChatMessage = OpenAI.Chat.ChatMessage;
using ChatFinishReason = OpenAI.Chat.ChatFinishReason;

namespace R1Sharp.Server.Tests;

/// Tool calls through the OpenAI client and through R1ChatClient's function invocation, on a model
/// that writes Hermes-format calls.
public class ToolCallTests
{
    private static readonly Lazy<string> Model = new(ToolModel.Create);

    private static ChatTool Weather() => ChatTool.CreateFunctionTool("get_weather", "The weather in a city",
        BinaryData.FromString("""{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}"""));

    [Fact]
    public async Task ToolCallsComeBackInOpenAIsShapeStreamedOrNot()
    {
        await using var server = new TestServer(o => o.ModelDir = Model.Value);
        var chat = server.OpenAI().GetChatClient("scripted");
        var options = new ChatCompletionOptions { Tools = { Weather() } };
        ChatCompletion completion = await chat.CompleteChatAsync([new UserChatMessage("Weather in Paris?")], options);
        Assert.Equal(ChatFinishReason.ToolCalls, completion.FinishReason);
        var call = Assert.Single(completion.ToolCalls);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.Equal("Paris", (string?)JsonNode.Parse(call.FunctionArguments.ToString())!["city"]);
        Assert.StartsWith("call_", call.Id);
        Assert.Empty(completion.Content);   // content null: everything was the call

        // Streamed: the call arrives as tool_calls deltas with an index, the finish reason says so.
        var names = new List<string>();
        var arguments = new System.Text.StringBuilder();
        ChatFinishReason? finish = null;
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("Weather in Paris?")], options))
        {
            foreach (var part in update.ToolCallUpdates)
            {
                Assert.Equal(0, part.Index);
                if (part.FunctionName is { } name) names.Add(name);
                arguments.Append(part.FunctionArgumentsUpdate?.ToString());
            }
            Assert.All(update.ContentUpdate, p => Assert.DoesNotContain("tool_call", p.Text));   // the call's text never leaks as content
            finish ??= update.FinishReason;
        }
        Assert.Equal(["get_weather"], names);
        Assert.Equal("Paris", (string?)JsonNode.Parse(arguments.ToString())!["city"]);
        Assert.Equal(ChatFinishReason.ToolCalls, finish);

        // The result goes back as a tool message; the model answers.
        List<ChatMessage> conversation = [new UserChatMessage("Weather in Paris?"), new AssistantChatMessage(completion), new ToolChatMessage(call.Id, "sunny")];
        ChatCompletion answer = await chat.CompleteChatAsync(conversation, options);
        Assert.Equal(ChatFinishReason.Stop, answer.FinishReason);
        Assert.Equal("ok", answer.Content[0].Text);
    }

    [Fact]
    public async Task ToolChoiceForcesNamesOrSuppressesCalls()
    {
        await using var server = new TestServer(o => o.ModelDir = Model.Value);
        var chat = server.OpenAI().GetChatClient("scripted");
        // Named: the prompt goes on with the call's opening, the model writes the arguments.
        var named = new ChatCompletionOptions { Tools = { Weather() }, ToolChoice = ChatToolChoice.CreateFunctionChoice("get_weather") };
        ChatCompletion forced = await chat.CompleteChatAsync([new UserChatMessage("hi")], named);
        Assert.Equal(("get_weather", "Paris"), (forced.ToolCalls[0].FunctionName, (string?)JsonNode.Parse(forced.ToolCalls[0].FunctionArguments.ToString())!["city"]));
        var required = await chat.CompleteChatAsync([new UserChatMessage("hi")], new ChatCompletionOptions { Tools = { Weather() }, ToolChoice = ChatToolChoice.CreateRequiredChoice() });
        Assert.Equal("get_weather", Assert.Single(required.Value.ToolCalls).FunctionName);

        // none: no tools in the prompt and nothing parsed — what the model writes is text.
        ChatCompletion none = await chat.CompleteChatAsync([new UserChatMessage("hi")], new ChatCompletionOptions { Tools = { Weather() }, ToolChoice = ChatToolChoice.CreateNoneChoice() });
        Assert.Empty(none.ToolCalls);
        Assert.Contains("<tool_call>", none.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, none.FinishReason);

        // Bad choices are 400s naming the field.
        foreach (var (body, param) in new[]
        {
            ("""{"messages":[{"role":"user","content":"hi"}],"tool_choice":"required"}""", "tool_choice"),
            ("""{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"get_weather"}}],"tool_choice":{"type":"function","function":{"name":"launch"}}}""", "tool_choice"),
            ("""{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"get_weather"}}],"tool_choice":"sometimes"}""", "tool_choice"),
            ("""{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function"}]}""", "tools[0]"),
        })
        {
            var response = await server.Http.PostAsync("/v1/chat/completions", TestServer.Json(body));
            Assert.Equal(System.Net.HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal(param, (string?)JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!["param"]);
        }
    }

    [Fact]
    public async Task AFunctionInvocationLoopRunsOnR1ChatClient()
    {
        using var generator = TextGenerator.Load(Model.Value);
        var asked = new List<string>();
        var weather = AIFunctionFactory.Create((string city) => { asked.Add(city); return "sunny"; }, "get_weather", "The weather in a city");
        using var client = new ChatClientBuilder(new R1ChatClient(generator, "tool-model")).UseFunctionInvocation().Build();
        var response = await client.GetResponseAsync([new Microsoft.Extensions.AI.ChatMessage(ChatRole.User, "Weather in Paris?")], new ChatOptions { Tools = [weather], Temperature = 0 });
        Assert.Equal(["Paris"], asked);                      // the model's call ran, once
        Assert.Equal("ok", response.Text);                     // and its result led to the answer
        Assert.Contains(response.Messages, m => m.Contents.OfType<FunctionCallContent>().Any(c => c.Name == "get_weather"));
        Assert.Contains(response.Messages, m => m.Contents.OfType<FunctionResultContent>().Any(r => (string?)r.Result?.ToString() == "sunny"));
    }
}
