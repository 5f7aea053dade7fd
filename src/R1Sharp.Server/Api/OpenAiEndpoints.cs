using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Http;
using R1Sharp.Generation;
using R1Sharp.Server.Scheduling;
using R1Sharp.Templates;

namespace R1Sharp.Server.Api;

/// POST /v1/chat/completions and /v1/completions in OpenAI's shapes, streamed as server-sent events
/// or answered at once; GET /v1/models.
public sealed class OpenAiEndpoints(TextGenerator generator, BatchScheduler scheduler, ServerOptions options)
{
    private readonly SamplingOptions _defaults = generator.DefaultOptions(options.DefaultMaxTokens);
    private readonly ToolCallFormat? _toolFormat = options.ToolCallParser is { } parser ? ToolCallFormat.ByName(parser) : ToolCallFormat.ForTemplate(generator.Tokenizer.ChatTemplate);
    private readonly bool _argumentsAsObjects = ToolCallFormat.TemplateReadsArgumentsAsObjects(generator.Tokenizer.ChatTemplate);

    public JsonObject Models() => new() { ["object"] = "list", ["data"] = new JsonArray(Model()) };

    /// GET /v1/models/{id}: the served model, or 404 in OpenAI's shape.
    public JsonObject Model(string id) => id == options.ServedModelName
        ? Model()
        : throw new ApiError(404, $"the model '{id}' does not exist; this server serves '{options.ServedModelName}'", "model", "model_not_found");

    private JsonObject Model() => new()
    {
        ["id"] = options.ServedModelName, ["object"] = "model", ["created"] = StartedAt, ["owned_by"] = "r1sharp",
        ["max_model_len"] = scheduler.MaxContext,
    };

    private static readonly long StartedAt = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    public async Task ChatCompletions(HttpContext context)
    {
        var reader = await RequestReader.ReadAsync(context.Request);
        var request = GenerationRequest.Read(reader, options, _defaults, chat: true);
        var messages = Messages(reader);
        var kwargs = new Dictionary<string, object?>();
        if (reader.Object("chat_template_kwargs") is { } extra)
            foreach (var (key, value) in extra)
                kwargs[key] = ChatTemplate.ReservedNames.Contains(key)
                    ? throw ApiError.Invalid("chat_template_kwargs", $"chat_template_kwargs may not set '{key}': the server sets it from the request")
                    : JinjaValues.FromJson(value);
        if (reader.Bool("enable_thinking") is bool thinking) kwargs["enable_thinking"] = thinking;
        var tools = ToolRequest.Read(reader, _toolFormat);
        if (_argumentsAsObjects) ToolCallFormat.ParseArguments(messages);
        Prompt prompt;
        try
        {
            prompt = generator.RenderChat(messages, addGenerationPrompt: true, tools.Rendered, kwargs, maxTokens: scheduler.MaxContext - 1);
        }
        catch (PromptTooLongException e)
        {
            throw ContextExceeded(e, "messages");
        }
        catch (R1SharpException e)
        {
            throw new ApiError(400, e.Message, "messages", "invalid_messages");
        }
        if (kwargs.TryGetValue("enable_thinking", out var on) && on is false && prompt.OpensReasoning)
        {
            // Templates without a switch open <think>; closing it at once makes the model answer directly.
            var text = prompt.Text + "</think>\n\n";
            prompt = new Prompt(text, generator.Tokenizer.Encode(text), false);
        }
        if (tools.Forced is { } forced)
        {
            // A call is required: the prompt goes on with its opening (after closing any reasoning the template opened).
            var text = prompt.Text + (prompt.OpensReasoning ? "</think>\n\n" : "") + forced;
            prompt = new Prompt(text, generator.Tokenizer.Encode(text), false);
        }
        await Respond(context, request, prompt, chat: true, tools);
    }

    public async Task Completions(HttpContext context)
    {
        var reader = await RequestReader.ReadAsync(context.Request);
        var request = GenerationRequest.Read(reader, options, _defaults, chat: false);
        var node = reader.Body["prompt"] ?? throw new ApiError(400, "'prompt' is required", "prompt", "missing_required_parameter");
        Prompt Plain(string text)
        {
            try { return generator.Plain(text, maxTokens: scheduler.MaxContext - 1); }
            catch (PromptTooLongException e) { throw ContextExceeded(e, "prompt"); }
        }
        Prompt prompt = node switch
        {
            JsonValue v when v.TryGetValue<string>(out var s) => Plain(s),
            JsonArray { Count: 1 } a when a[0] is JsonValue v && v.TryGetValue<string>(out var s) => Plain(s),
            JsonArray a when a.Count > 0 && a.All(x => x is JsonValue v && v.TryGetValue<int>(out _)) =>
                new Prompt("", a.Select(x => (int)x!).ToArray(), false),
            JsonArray { Count: > 1 } a when a.All(x => x is JsonValue) => throw ApiError.Invalid("prompt", "one prompt per request is supported"),
            _ => throw new ApiError(400, "'prompt' must be a string or an array of token ids", "prompt", "invalid_type"),
        };
        if (prompt.Text.Length == 0 && prompt.Ids.Any(id => id < 0 || id >= generator.Model.Config.VocabSize))
            throw ApiError.Invalid("prompt", $"token ids must be in 0..{generator.Model.Config.VocabSize - 1}");
        await Respond(context, request, prompt, chat: false);
    }

    private ApiError ContextExceeded(PromptTooLongException e, string param) =>
        new(400, $"this model's maximum context length is {scheduler.MaxContext} tokens, but the prompt has {(e.AtLeast ? "at least " : "")}{e.Tokens} tokens",
            param, "context_length_exceeded");

    private static JsonArray Messages(RequestReader reader)
    {
        var messages = reader.Array("messages") ?? throw new ApiError(400, "'messages' is required", "messages", "missing_required_parameter");
        if (messages.Count == 0) throw ApiError.Invalid("messages", "'messages' must not be empty");
        var result = new JsonArray();
        for (int i = 0; i < messages.Count; i++)
        {
            var param = $"messages[{i}]";
            if (messages[i] is not JsonObject m) throw new ApiError(400, $"'{param}' must be an object", param, "invalid_type");
            var role = m["role"] is JsonValue r && r.TryGetValue<string>(out var rs) ? rs : throw new ApiError(400, $"'{param}.role' must be a string", param + ".role", "invalid_type");
            if (role is not ("system" or "developer" or "user" or "assistant" or "tool"))
                throw ApiError.Invalid(param + ".role", $"'{param}.role' must be system, developer, user, assistant or tool, got '{role}'");
            var copy = m.DeepClone().AsObject();
            copy["role"] = role == "developer" ? "system" : role;
            copy["content"] = m["content"] switch
            {
                null => null,
                JsonValue v when v.TryGetValue<string>(out var text) => text,
                JsonArray parts => string.Concat(parts.Select(p => p is JsonObject o && (string?)o["type"] == "text" && o["text"] is JsonValue t && t.TryGetValue<string>(out var s) ? s
                    : throw ApiError.Invalid(param + ".content", $"'{param}.content' parts must be {{\"type\": \"text\", \"text\": …}}"))),
                _ => throw new ApiError(400, $"'{param}.content' must be a string, an array of text parts, or null", param + ".content", "invalid_type"),
            };
            result.Add(copy);
        }
        return result;
    }

    private async Task Respond(HttpContext context, GenerationRequest request, Prompt prompt, bool chat, ToolRequest? tools = null)
    {
        if (prompt.Ids.Length == 0) throw ApiError.Invalid(chat ? "messages" : "prompt", "the prompt is empty");
        if (prompt.Ids.Length >= scheduler.MaxContext)
            throw new ApiError(400, $"this model's maximum context length is {scheduler.MaxContext} tokens, but the prompt has {prompt.Ids.Length} tokens",
                chat ? "messages" : "prompt", "context_length_exceeded");
        var maxTokens = Math.Min(request.MaxTokens, scheduler.MaxContext - prompt.Ids.Length);
        var aborted = context.RequestAborted;
        var sequences = new List<Sequence>();
        try
        {
            for (int i = 0; i < request.N; i++)
            {
                var sampling = request.Sampling with { Seed = request.Sampling.Seed + i };
                sequences.Add(scheduler.Submit(prompt.Ids, sampling, maxTokens, request.Priority, aborted, request.IgnoreEos));
            }
        }
        catch (AdmissionException e)
        {
            foreach (var s in sequences) s.Cancel();
            throw new ApiError(e.Status, e.Message, null, e.Code);
        }
        var decoders = sequences.Select(_ => new ChoiceDecoder(generator.Tokenizer, request.Sampling.StopStrings, chat ? new ReasoningParser(prompt.OpensReasoning) : null)).ToList();
        var logprobs = request.Sampling.Logprobs is null ? null : sequences.Select(_ => new ChoiceLogprobs(generator.Tokenizer, chat, request.TokensAsIds)).ToArray();
        var calls = tools?.Parser is { } format ? sequences.Select(_ => new ToolCallStream(format, tools.Forced ?? "")).ToArray() : null;
        var response = new ResponseWriter(context, chat, request, prompt.Ids.Length, options.ServedModelName, sequences.Count, logprobs);
        try
        {
            await foreach (var (index, e) in Merge(sequences, aborted))
            {
                var decoder = decoders[index];
                if (e.Token is int token)
                {
                    if (decoder.StopStringSeen) continue;
                    if (e.Logprobs is { } lp) logprobs?[index].Add(token, lp);
                    var (r, c) = decoder.Add(token);
                    if (calls is not null) c = calls[index].Add(c);
                    await response.Delta(index, r, c);
                    if (decoder.StopStringSeen) sequences[index].Cancel();
                    continue;
                }
                if (e.Error is not null && !decoder.StopStringSeen && e.FinishReason is not "abort")
                    throw new ApiError(e.FinishReason == "timeout" ? 503 : 500, e.Error, null, e.FinishReason == "timeout" ? "queue_timeout" : "generation_failed");
                var (fr, fc) = decoder.Flush();
                IReadOnlyList<ToolCall> made = [];
                if (calls is not null)
                {
                    var rest = calls[index].Add(fc);
                    (fc, made) = calls[index].Finish();
                    fc = rest + fc;
                    if (!tools!.Parallel) made = made.Take(1).ToList();
                }
                await response.Delta(index, fr, fc);
                var reason = decoder.StopStringSeen ? "stop" : e.FinishReason == "abort" ? "abort" : e.FinishReason!;
                if (made.Count > 0)
                {
                    await response.ToolCalls(index, made);
                    if (reason == "stop") reason = "tool_calls";
                }
                await response.Finish(index, reason, decoder.Tokens);
            }
            await response.Complete(decoders.Sum(d => d.Tokens));
        }
        finally
        {
            foreach (var s in sequences) s.Cancel();
        }
    }

    /// Events of all choices, interleaved as they arrive.
    private static async IAsyncEnumerable<(int Index, SequenceEvent Event)> Merge(List<Sequence> sequences, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken aborted)
    {
        if (sequences.Count == 1)
        {
            await foreach (var e in sequences[0].Events.ReadAllAsync(aborted)) yield return (0, e);
            yield break;
        }
        var merged = Channel.CreateUnbounded<(int, SequenceEvent)>();
        var pumps = sequences.Select((s, i) => Task.Run(async () =>
        {
            await foreach (var e in s.Events.ReadAllAsync(aborted)) await merged.Writer.WriteAsync((i, e), aborted);
        }, aborted)).ToArray();
        _ = Task.WhenAll(pumps).ContinueWith(t => merged.Writer.TryComplete(t.Exception), TaskScheduler.Default);
        await foreach (var item in merged.Reader.ReadAllAsync(aborted)) yield return item;
    }
}
