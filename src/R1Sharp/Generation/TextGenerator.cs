using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using R1Sharp.Checkpoints;
using R1Sharp.Models;
using R1Sharp.Templates;
using R1Sharp.Tokenization;

namespace R1Sharp.Generation;

/// A prompt ready for the model: the rendered text, its ids, and whether it ends inside `<think>`.
public sealed record Prompt(string Text, int[] Ids, bool OpensReasoning);

/// One step of streamed output: the text it completed (may be empty while a character or a possible
/// stop string is held back), the token chosen, and on the last chunk why generation ended.
public sealed record GeneratedChunk(string Text, int? TokenId, string? FinishReason = null);

/// A model folder ready to talk: weights, tokenizer, chat template and generation defaults.
public sealed class TextGenerator : IDisposable
{
    private readonly ChatTemplate? _template;

    private TextGenerator(CausalLM model, PretrainedTokenizer tokenizer, GenerationConfig defaults)
    {
        Model = model;
        Tokenizer = tokenizer;
        Defaults = defaults;
        _template = tokenizer.ChatTemplate is { } source ? ChatTemplate.Parse(source) : null;
    }

    public CausalLM Model { get; }
    public PretrainedTokenizer Tokenizer { get; }
    public GenerationConfig Defaults { get; }
    public int ContextLength => Model.Config.MaxPositionEmbeddings;

    /// Loads tokenizer files first (a folder without them fails fast), then the weights, with a PEFT
    /// LoRA adapter merged into them when one is given.
    public static TextGenerator Load(string dir, WeightFormat format = WeightFormat.F32, string? adapter = null)
    {
        var tokenizer = PretrainedTokenizer.Load(dir);
        var defaults = GenerationConfig.Load(dir);
        var model = LoadWithAdapter(dir, format, adapter);
        if (tokenizer.VocabSize > model.Config.VocabSize)
        {
            model.Dispose();
            throw new R1SharpException($"the tokenizer has {tokenizer.VocabSize} tokens but the model's vocab_size is {model.Config.VocabSize}");
        }
        return new TextGenerator(model, tokenizer, defaults);
    }

    public static CausalLM LoadWithAdapter(string dir, WeightFormat format, string? adapter)
    {
        if (adapter is null) return ModelIO.Load(dir, format);
        if (format != WeightFormat.F32) throw new R1SharpException("--adapter merges into float32 weights: use --weights f32");
        LoraAdapter.ReadConfig(adapter);   // a bad adapter fails before the weights load
        var model = ModelIO.Load(dir, format);
        try { LoraAdapter.Merge(model, adapter); }
        catch { model.Dispose(); throw; }
        return model;
    }

    /// Messages (OpenAI's shape) through the chat template; the template writes its own special tokens.
    /// With `maxTokens`, a prompt that cannot fit is refused (PromptTooLongException), if possible before tokenising.
    public Prompt RenderChat(JsonArray messages, bool addGenerationPrompt = true, JsonArray? tools = null, IReadOnlyDictionary<string, object?>? extra = null,
        int? maxTokens = null)
    {
        var template = _template ?? throw new R1SharpException("the tokenizer has no chat_template (tokenizer_config.json)");
        var text = template.Render(messages, addGenerationPrompt, Tokenizer, tools, extra);
        return Encode(text, addSpecialTokens: false, ReasoningParser.PromptOpensReasoning(text), maxTokens);
    }

    public Prompt RenderChat(IEnumerable<ChatTurn> turns, bool addGenerationPrompt = true) =>
        RenderChat(new JsonArray(turns.Select(t => (JsonNode)new JsonObject { ["role"] = t.Role, ["content"] = t.Content }).ToArray()), addGenerationPrompt);

    /// Raw text, with the special tokens the tokenizer adds (e.g. BOS).
    public Prompt Plain(string text, int? maxTokens = null) => Encode(text, addSpecialTokens: true, opensReasoning: false, maxTokens);

    private Prompt Encode(string text, bool addSpecialTokens, bool opensReasoning, int? maxTokens)
    {
        // Each token covers at most the tokenizer's longest token: a longer text is refused unread.
        if (maxTokens is int max && Tokenizer.MinimumTokenCount(text) is var bound && bound > max) throw new PromptTooLongException(bound, max, atLeast: true);
        var ids = Tokenizer.Encode(text, addSpecialTokens);
        if (maxTokens is int limit && ids.Length > limit) throw new PromptTooLongException(ids.Length, limit, atLeast: false);
        return new Prompt(text, ids, opensReasoning);
    }

    /// generation_config.json's defaults, stopping at every end-of-sequence id the folder names.
    public SamplingOptions DefaultOptions(int maxNewTokens = 512)
    {
        var eos = (Model.Config.EosTokenIds ?? []).Concat(Tokenizer.EosId is int id ? [id] : []);
        return Defaults.ToSamplingOptions(eos, maxNewTokens);
    }

    /// Streams the continuation of `prompt`. Ends at an eos id, a stop string, max new tokens, or the
    /// context length (the last chunk carries "stop" or "length").
    public async IAsyncEnumerable<GeneratedChunk> StreamAsync(Prompt prompt, SamplingOptions options,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        CheckPrompt(prompt);
        options.Validate();
        var room = ContextLength - prompt.Ids.Length;
        var limited = options.MaxNewTokens > room ? options with { MaxNewTokens = room } : options;
        var output = new OutputText(Tokenizer, limited.StopStrings);
        var produced = 0;
        using (var tokens = TokenGenerator.Generate(Model, prompt.Ids.Select(i => (long)i).ToArray(), limited).GetEnumerator())
        {
            while (await Task.Run(tokens.MoveNext, cancellationToken).ConfigureAwait(false))
            {
                var id = (int)tokens.Current;
                produced++;
                var text = output.Add(id);
                if (output.Stopped)
                {
                    yield return new GeneratedChunk(text, id, "stop");
                    yield break;
                }
                yield return new GeneratedChunk(text, id);
                cancellationToken.ThrowIfCancellationRequested();
            }
        }
        var tail = output.Flush();
        yield return new GeneratedChunk(tail, null, output.Stopped || produced < limited.MaxNewTokens ? "stop" : "length");
    }

    /// The whole continuation at once: text, ids and why it ended.
    public async Task<(string Text, int[] Ids, string FinishReason)> GenerateAsync(Prompt prompt, SamplingOptions options, CancellationToken cancellationToken = default)
    {
        var text = new System.Text.StringBuilder();
        var ids = new List<int>();
        var finish = "stop";
        await foreach (var chunk in StreamAsync(prompt, options, cancellationToken).ConfigureAwait(false))
        {
            text.Append(chunk.Text);
            if (chunk.TokenId is int id) ids.Add(id);
            if (chunk.FinishReason is { } f) finish = f;
        }
        return (text.ToString(), [.. ids], finish);
    }

    private void CheckPrompt(Prompt prompt)
    {
        if (prompt.Ids.Length == 0) throw new R1SharpException("the prompt is empty");
        if (prompt.Ids.Length >= ContextLength)
            throw new R1SharpException($"the prompt has {prompt.Ids.Length} tokens; the model's context is {ContextLength} (max_position_embeddings), leaving no room to generate");
    }

    public void Dispose() => Model.Dispose();
}
