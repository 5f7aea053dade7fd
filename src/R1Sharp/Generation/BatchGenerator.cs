using R1Sharp.Models;

namespace R1Sharp.Generation;

/// One finished sequence of a batch: the new tokens (stop token excluded), whether it hit the limit,
/// and the stop id it ended at.
public sealed record BatchCompletion(long[] Tokens, bool Truncated, long? Stop = null);

/// Many prompts through the decode engine at once: all prefilled together, then one batched decode step
/// after another for the sequences still running (a finished one leaves the batch).
public static class BatchGenerator
{
    public static List<BatchCompletion> Generate(CausalLM model, IReadOnlyList<long[]> prompts, SamplingOptions options)
    {
        if (prompts.Count == 0) return [];
        var longest = prompts.Max(p => p.Length);
        if (longest + options.MaxNewTokens > model.Config.MaxPositionEmbeddings)
            throw new R1SharpException($"prompt ({longest}) + max new tokens ({options.MaxNewTokens}) exceeds max_position_embeddings ({model.Config.MaxPositionEmbeddings})");
        var sequences = prompts.Select(p => new DecodeSequence(p, options, options.MaxNewTokens)).ToList();
        using var engine = new DecodeEngine(model, prompts.Count, longest + options.MaxNewTokens, options.Seed);
        foreach (var s in sequences) engine.Admit(s);
        engine.Step(new StepPlan(sequences.Where(s => !s.Finished).Select(s => (s, s.Prompt.Length)).ToList(), []));
        while (engine.Running.Any()) engine.Step(new StepPlan([], engine.Running.ToList()));
        return sequences.Select(s => new BatchCompletion([.. s.Generated], s.FinishReason == "length", s.StopToken)).ToList();
    }
}
