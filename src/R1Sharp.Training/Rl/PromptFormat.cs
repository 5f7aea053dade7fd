using System.Text.Json.Nodes;
using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Templates;
using R1Sharp.Tokenization;
using R1Sharp.Training.Data;
using R1Sharp.Training.Tasks;

namespace R1Sharp.Training.Rl;

/// How problems become prompt ids and completions become text for the model being trained or
/// evaluated: R1Sharp's built-in byte-level chat format, or a model folder's own tokenizer and chat
/// template (real models: Qwen2.5, R1-Distill, DeepSeek…).
public abstract class PromptFormat
{
    public abstract long[] Prompt(TaskProblem problem);
    public abstract string Decode(IReadOnlyList<long> ids);
    /// Generation stops at any of these; the first ends a finished completion in training sequences.
    public abstract long[] StopIds { get; }
    /// The prompt ends inside `<think>` (DeepSeek-R1's template): completions only close it.
    public virtual bool ThinkOpenedByPrompt => false;

    /// The folder's tokenizer and chat template; R1Sharp's byte-level format when the folder has no
    /// tokenizer files or holds R1Sharp's own byte tokenizer (its built-in models).
    public static PromptFormat For(string modelDir, ModelConfig config, ChatPromptOptions options)
    {
        if (!PretrainedTokenizer.InFolder(modelDir)) return new BytePromptFormat();
        var tokenizer = PretrainedTokenizer.Load(modelDir);
        if (ByteTokenizer.Is(tokenizer)) return new BytePromptFormat();
        if (tokenizer.VocabSize > config.VocabSize)
            throw new R1SharpException($"{modelDir}: the tokenizer has {tokenizer.VocabSize} tokens but the model's vocab_size is {config.VocabSize}");
        var generation = GenerationConfig.Load(modelDir);
        var stops = generation.EosTokenIds.Concat(config.EosTokenIds ?? []).Concat(tokenizer.EosId is int e ? [e] : []).Distinct().Select(i => (long)i).ToArray();
        if (stops.Length == 0) throw new R1SharpException($"{modelDir}: no end-of-sequence id (generation_config.json, config.json or the tokenizer's eos_token)");
        var template = ChatTemplate.For(tokenizer);
        if (TurnEnd(template, tokenizer) is long end && !stops.Contains(end)) stops = [.. stops, end];
        return new ChatPromptFormat(tokenizer, template, stops, options);
    }

    /// The special token the template closes an assistant turn with (`<|im_end|>`, `<|eot_id|>`): a base
    /// model's eos is often another one, and a turn learned through the template ends with this.
    private static long? TurnEnd(ChatTemplate template, PretrainedTokenizer tokenizer)
    {
        const string probe = "R1SHARP-PROBE-ANSWER";
        string text;
        try
        {
            text = template.Render([new JsonObject { ["role"] = "user", ["content"] = "?" }, new JsonObject { ["role"] = "assistant", ["content"] = probe }], false, tokenizer);
        }
        catch (R1SharpException) { return null; }
        var at = text.LastIndexOf(probe, StringComparison.Ordinal);
        if (at < 0) return null;
        foreach (var id in tokenizer.Encode(text[(at + probe.Length)..], addSpecialTokens: false))
            if (tokenizer.IsSpecial(id)) return id;
        return null;
    }
}

/// How a task's problem is asked of a chat model: an optional system prompt, an instruction appended
/// to the user's question (e.g. where to put the final answer), and `enable_thinking` for templates
/// that read it (Qwen3).
public sealed record ChatPromptOptions(string? SystemPrompt = null, string? Instruction = null, bool? EnableThinking = null);

public sealed class BytePromptFormat : PromptFormat
{
    public override long[] Prompt(TaskProblem problem) => Document.Prompt(problem.Prompt).Select(t => (long)t).ToArray();
    public override string Decode(IReadOnlyList<long> ids) => ByteTokenizer.Instance.Decode(ids);
    public override long[] StopIds => [ByteTokenizer.Eos];
}

public sealed class ChatPromptFormat(PretrainedTokenizer tokenizer, ChatTemplate template, long[] stops, ChatPromptOptions options) : PromptFormat
{
    private bool? _opens;

    public PretrainedTokenizer Tokenizer => tokenizer;
    public override long[] StopIds => stops;
    public override bool ThinkOpenedByPrompt => _opens ??= ReasoningParser.PromptOpensReasoning(Render(new TaskProblem("probe", "1+1", "", "2")));

    public override long[] Prompt(TaskProblem problem) => tokenizer.Encode(Render(problem), addSpecialTokens: false).Select(i => (long)i).ToArray();

    public override string Decode(IReadOnlyList<long> ids) =>
        tokenizer.Decode(ids.Select(i => (int)i), skipSpecialTokens: false, strict: false);

    private string Render(TaskProblem problem)
    {
        JsonArray messages;
        if (problem.Messages is { } given) messages = (JsonArray)given.DeepClone();
        else
        {
            messages = [];
            if (options.SystemPrompt is { } system) messages.Add(new JsonObject { ["role"] = "system", ["content"] = system });
            var content = options.Instruction is { } instruction ? problem.Prompt + "\n" + instruction : problem.Prompt;
            messages.Add(new JsonObject { ["role"] = "user", ["content"] = content });
        }
        var extra = options.EnableThinking is { } thinking ? new Dictionary<string, object?> { ["enable_thinking"] = thinking } : null;
        return template.Render(messages, addGenerationPrompt: true, tokenizer, null, extra);
    }
}
