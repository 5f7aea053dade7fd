using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;

namespace R1Sharp.Generation;

/// Microsoft.Extensions.AI's IChatClient over a loaded model: .NET applications talk to R1Sharp like
/// any other chat client. Reasoning arrives as TextReasoningContent, the answer as TextContent, tool
/// calls as FunctionCallContent (ChatOptions.Tools go through the chat template; FunctionResultContent
/// comes back as `tool` messages), so `UseFunctionInvocation()` runs tool loops; one generation runs at a time.
public sealed class R1ChatClient(TextGenerator generator, string modelId, bool ownsGenerator = false) : IChatClient
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly ToolCallFormat? _toolFormat = ToolCallFormat.ForTemplate(generator.Tokenizer.ChatTemplate);

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken).ConfigureAwait(false);

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var tools = options?.Tools?.OfType<AIFunctionDeclaration>().ToList() is { Count: > 0 } declared ? declared : null;
        var turns = Turns(messages);
        if (ToolCallFormat.TemplateReadsArgumentsAsObjects(generator.Tokenizer.ChatTemplate)) ToolCallFormat.ParseArguments(turns);
        var prompt = generator.RenderChat(turns, tools: tools is null ? null : ToolsJson(tools));
        var calls = tools is not null && _toolFormat is { } format ? new ToolCallStream(format) : null;
        var sampling = Sampling(options);
        var responseId = Guid.NewGuid().ToString("N");
        var parser = new ReasoningParser(prompt.OpensReasoning);
        var completionTokens = 0;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await foreach (var chunk in generator.StreamAsync(prompt, sampling, cancellationToken).ConfigureAwait(false))
            {
                if (chunk.TokenId is not null) completionTokens++;
                var (reasoning, content) = parser.Add(chunk.Text);
                if (calls is not null) content = calls.Add(content);
                if (chunk.FinishReason is { } finish)
                {
                    var (r, c) = parser.Flush();
                    (reasoning, content) = (reasoning + r, content + (calls?.Add(c) ?? c));
                    IReadOnlyList<ToolCall> made = [];
                    if (calls is not null)
                    {
                        var (rest, found) = calls.Finish();
                        (content, made) = (content + rest, found);
                    }
                    var last = Update(responseId, reasoning, content);
                    foreach (var call in made)
                        last.Contents.Add(new FunctionCallContent(call.Id, call.Name, JsonSerializer.Deserialize<Dictionary<string, object?>>(call.Arguments)));
                    last.FinishReason = made.Count > 0 ? ChatFinishReason.ToolCalls : finish == "length" ? ChatFinishReason.Length : ChatFinishReason.Stop;
                    last.Contents.Add(new UsageContent(new UsageDetails
                    {
                        InputTokenCount = prompt.Ids.Length,
                        OutputTokenCount = completionTokens,
                        TotalTokenCount = prompt.Ids.Length + completionTokens,
                    }));
                    yield return last;
                }
                else if (reasoning.Length > 0 || content.Length > 0)
                {
                    yield return Update(responseId, reasoning, content);
                }
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// Messages as chat templates take them: assistant function calls as OpenAI `tool_calls`, function results as `tool` messages.
    private static JsonArray Turns(IEnumerable<ChatMessage> messages)
    {
        var turns = new JsonArray();
        foreach (var m in messages)
        {
            var calls = m.Contents.OfType<FunctionCallContent>().ToList();
            var results = m.Contents.OfType<FunctionResultContent>().ToList();
            if (results.Count > 0)
            {
                foreach (var r in results)
                    turns.Add(new JsonObject { ["role"] = "tool", ["tool_call_id"] = r.CallId, ["content"] = r.Result is string text ? text : JsonSerializer.Serialize(r.Result) });
                continue;
            }
            var turn = new JsonObject { ["role"] = m.Role.Value, ["content"] = calls.Count > 0 && m.Text.Length == 0 ? null : m.Text };
            if (calls.Count > 0)
                turn["tool_calls"] = new JsonArray(calls.Select(c => (JsonNode)new JsonObject
                {
                    ["id"] = c.CallId, ["type"] = "function",
                    ["function"] = new JsonObject { ["name"] = c.Name, ["arguments"] = JsonSerializer.Serialize(c.Arguments ?? new Dictionary<string, object?>()) },
                }).ToArray());
            turns.Add(turn);
        }
        return turns;
    }

    private static JsonArray ToolsJson(IEnumerable<AIFunctionDeclaration> tools) => new(tools.Select(t => (JsonNode)new JsonObject
    {
        ["type"] = "function",
        ["function"] = new JsonObject { ["name"] = t.Name, ["description"] = t.Description, ["parameters"] = JsonNode.Parse(t.JsonSchema.GetRawText()) },
    }).ToArray());

    private ChatResponseUpdate Update(string responseId, string reasoning, string content)
    {
        var contents = new List<AIContent>();
        if (reasoning.Length > 0) contents.Add(new TextReasoningContent(reasoning));
        if (content.Length > 0) contents.Add(new TextContent(content));
        return new ChatResponseUpdate(ChatRole.Assistant, contents) { ResponseId = responseId, MessageId = responseId, ModelId = modelId, CreatedAt = DateTimeOffset.UtcNow };
    }

    /// ChatOptions over the model's generation defaults; min_p and repetition_penalty may come as additional properties.
    private SamplingOptions Sampling(ChatOptions? options)
    {
        var s = generator.DefaultOptions(options?.MaxOutputTokens ?? 512);
        if (options is null) return s;
        if (options.Temperature is float t) s = s with { Temperature = t };
        if (options.TopP is float p) s = s with { TopP = p };
        if (options.TopK is int k) s = s with { TopK = k };
        if (options.Seed is long seed) s = s with { Seed = seed };
        if (options.StopSequences is { Count: > 0 } stops) s = s with { StopStrings = [.. stops] };
        if (options.AdditionalProperties?.TryGetValue("min_p", out var minP) == true) s = s with { MinP = Convert.ToDouble(minP, System.Globalization.CultureInfo.InvariantCulture) };
        if (options.AdditionalProperties?.TryGetValue("repetition_penalty", out var penalty) == true)
            s = s with { RepetitionPenalty = Convert.ToDouble(penalty, System.Globalization.CultureInfo.InvariantCulture) };
        return s;
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is not null ? null
        : serviceType == typeof(ChatClientMetadata) ? new ChatClientMetadata("r1sharp", null, modelId)
        : serviceType.IsInstanceOfType(this) ? this
        : serviceType.IsInstanceOfType(generator) ? generator
        : null;

    public void Dispose()
    {
        _gate.Dispose();
        if (ownsGenerator) generator.Dispose();
    }
}
