using R1Sharp.Models;

namespace R1Sharp.Generation;

/// One prompt through the decode engine, token by token. Works on token ids.
public static class TokenGenerator
{
    /// Yields new token ids as they are chosen; stops at a stop id (not yielded) or after MaxNewTokens.
    /// Each engine step opens and closes its own dispose scope, so nothing spans a yield.
    public static IEnumerable<long> Generate(CausalLM model, IReadOnlyList<long> prompt, SamplingOptions options)
    {
        if (prompt.Count == 0) throw new R1SharpException("the prompt is empty");
        var maxLength = prompt.Count + options.MaxNewTokens;
        if (maxLength > model.Config.MaxPositionEmbeddings)
            throw new R1SharpException($"prompt ({prompt.Count}) + max new tokens ({options.MaxNewTokens}) exceeds max_position_embeddings ({model.Config.MaxPositionEmbeddings})");
        var sequence = new DecodeSequence(prompt, options, options.MaxNewTokens);
        using var engine = new DecodeEngine(model, 1, maxLength, options.Seed);
        engine.Admit(sequence);
        while (!sequence.Finished)
        {
            var plan = sequence.Prefilling ? new StepPlan([(sequence, sequence.Prompt.Length)], []) : new StepPlan([], [sequence]);
            if (engine.Step(plan) is [{ Token: long token }]) yield return token;
        }
    }
}
