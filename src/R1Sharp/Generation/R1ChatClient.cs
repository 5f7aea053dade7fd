using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;

namespace R1Sharp.Generation;

/// Microsoft.Extensions.AI's IChatClient over a loaded model: .NET applications talk to R1Sharp like
/// any other chat client. Reasoning arrives as TextReasoningContent, the answer as TextContent; one
/// generation runs at a time.
public sealed class R1ChatClient(TextGenerator generator, string modelId, bool ownsGenerator = false) : IChatClient
{
    private readonly SemaphoreSlim _gate = new(1, 1);

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken).ConfigureAwait(false);

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var turns = new JsonArray(messages.Select(m => (JsonNode)new JsonObject { ["role"] = m.Role.Value, ["content"] = m.Text }).ToArray());
        var prompt = generator.RenderChat(turns);
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
                if (chunk.FinishReason is { } finish)
                {
                    var (r, c) = parser.Flush();
                    (reasoning, content) = (reasoning + r, content + c);
                    var last = Update(responseId, reasoning, content);
                    last.FinishReason = finish == "length" ? ChatFinishReason.Length : ChatFinishReason.Stop;
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
