using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using R1Sharp.Generation;

namespace R1Sharp.Server.Api;

/// Writes a completion as OpenAI does: chunks of server-sent events ending in `data: [DONE]`, or one
/// JSON object at the end. Chat choices carry the reasoning in `reasoning_content` (DeepSeek's API)
/// and `reasoning` (vLLM) next to `content`.
/// With `logprobs`, each choice's token log-probabilities go with its chunks or its final object.
public sealed class ResponseWriter(HttpContext context, bool chat, GenerationRequest request, int promptTokens, string model, int choices, ChoiceLogprobs[]? logprobs = null)
{
    private readonly string _id = (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N");
    private readonly long _created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    private readonly StringBuilder[] _reasoning = Enumerable.Range(0, choices).Select(_ => new StringBuilder()).ToArray();
    private readonly StringBuilder[] _content = Enumerable.Range(0, choices).Select(_ => new StringBuilder()).ToArray();
    private readonly string?[] _finish = new string?[choices];
    private readonly bool[] _started = new bool[choices];
    private readonly IReadOnlyList<ToolCall>?[] _calls = new IReadOnlyList<ToolCall>?[choices];
    private bool _headersSent;

    private string Object => chat ? (request.Stream ? "chat.completion.chunk" : "chat.completion") : "text_completion";

    public async Task Delta(int index, string reasoning, string content)
    {
        _reasoning[index].Append(reasoning);
        _content[index].Append(content);
        if (!request.Stream) return;
        if (chat && !_started[index])
        {
            _started[index] = true;
            await Send(Chunk(index, new JsonObject { ["role"] = "assistant", ["content"] = "" }, null, withLogprobs: false));
        }
        if (reasoning.Length > 0) await Send(Chunk(index, new JsonObject { ["reasoning_content"] = reasoning, ["reasoning"] = reasoning }, null));
        if (content.Length > 0) await Send(Chunk(index, chat ? new JsonObject { ["content"] = content } : null, null, content));
    }

    /// The choice's tool calls, after its text; streamed as one delta per call (id, name and all its arguments).
    public async Task ToolCalls(int index, IReadOnlyList<ToolCall> calls)
    {
        _calls[index] = calls;
        if (!request.Stream) return;
        for (int i = 0; i < calls.Count; i++)
        {
            var call = Call(calls[i]);
            call["index"] = i;
            await Send(Chunk(index, new JsonObject { ["tool_calls"] = new JsonArray(call) }, null));
        }
    }

    private static JsonObject Call(ToolCall c) => new()
    {
        ["id"] = c.Id, ["type"] = "function", ["function"] = new JsonObject { ["name"] = c.Name, ["arguments"] = c.Arguments },
    };

    public async Task Finish(int index, string reason, int completionTokens)
    {
        _finish[index] = reason;
        if (request.Stream) await Send(Chunk(index, chat ? new JsonObject() : null, reason, ""));
    }

    public async Task Complete(int completionTokens)
    {
        var usage = new JsonObject { ["prompt_tokens"] = promptTokens, ["completion_tokens"] = completionTokens, ["total_tokens"] = promptTokens + completionTokens };
        if (request.Stream)
        {
            await Send(Envelope(new JsonArray(), usage));
            await SendRaw("data: [DONE]\n\n");
            return;
        }
        var list = new JsonArray();
        for (int i = 0; i < choices; i++)
        {
            var reasoning = _reasoning[i].Length > 0 ? _reasoning[i].ToString() : null;
            list.Add(chat
                ? new JsonObject
                {
                    ["index"] = i,
                    ["message"] = Message(i, reasoning),
                    ["logprobs"] = logprobs?[i].All(), ["finish_reason"] = _finish[i],
                }
                : new JsonObject { ["index"] = i, ["text"] = _content[i].ToString(), ["logprobs"] = logprobs?[i].All(), ["finish_reason"] = _finish[i] });
        }
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(Envelope(list, usage).ToJsonString(Json.Options), context.RequestAborted);
    }

    /// A chunk carries the log-probabilities of the tokens received since the last one (the tokens a
    /// stop string or an unfinished character held back go with a later chunk).
    private JsonObject Chunk(int index, JsonObject? delta, string? finish, string? text = null, bool withLogprobs = true)
    {
        var pending = withLogprobs ? logprobs?[index].TakePending() : null;
        var choice = chat
            ? new JsonObject { ["index"] = index, ["delta"] = delta, ["logprobs"] = pending, ["finish_reason"] = finish }
            : new JsonObject { ["index"] = index, ["text"] = text ?? "", ["logprobs"] = pending, ["finish_reason"] = finish };
        return Envelope(new JsonArray(choice), null);
    }

    private JsonObject Message(int i, string? reasoning)
    {
        var calls = _calls[i] is { Count: > 0 } c ? c : null;
        var content = _content[i].ToString();
        var message = new JsonObject
        {
            ["role"] = "assistant", ["content"] = calls is not null && content.Trim().Length == 0 ? null : content,
            ["reasoning_content"] = reasoning, ["reasoning"] = reasoning,
        };
        if (calls is not null) message["tool_calls"] = new JsonArray(calls.Select(x => (JsonNode)Call(x)).ToArray());
        return message;
    }

    private JsonObject Envelope(JsonArray list, JsonObject? usage)
    {
        var body = new JsonObject { ["id"] = _id, ["object"] = Object, ["created"] = _created, ["model"] = model, ["choices"] = list };
        if (usage is not null) body["usage"] = usage;
        return body;
    }

    private Task Send(JsonObject chunk) => SendRaw("data: " + chunk.ToJsonString(Json.Options) + "\n\n");

    private async Task SendRaw(string text)
    {
        if (!_headersSent)
        {
            _headersSent = true;
            context.Response.ContentType = "text/event-stream";
            context.Response.Headers.CacheControl = "no-cache";
            context.Response.Headers["X-Accel-Buffering"] = "no";
        }
        await context.Response.WriteAsync(text, context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
    }

    public bool Started => _headersSent;
}
