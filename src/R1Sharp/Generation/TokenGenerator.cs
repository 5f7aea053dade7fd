using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Generation;

/// Prefills a prompt into a KV cache, then decodes one token per step. Works on token ids.
public static class TokenGenerator
{
    /// Yields new token ids as they are chosen; stops at a stop id (not yielded) or after MaxNewTokens.
    /// Each step opens and closes its own dispose scope and no-grad guard, so nothing spans a yield.
    public static IEnumerable<long> Generate(CausalLM model, IReadOnlyList<long> prompt, SamplingOptions options)
    {
        if (prompt.Count == 0) throw new R1SharpException("the prompt is empty");
        model.CheckTokenIds(prompt);
        var maxLength = prompt.Count + options.MaxNewTokens;
        if (maxLength > model.Config.MaxPositionEmbeddings)
            throw new R1SharpException($"prompt ({prompt.Count}) + max new tokens ({options.MaxNewTokens}) exceeds max_position_embeddings ({model.Config.MaxPositionEmbeddings})");
        options.Validate();
        var generator = new Generator((ulong)(options.Seed ?? Random.Shared.NextInt64()));
        using var cache = model.CreateCache(1, maxLength);
        var generated = new List<long>();
        var input = prompt.ToArray();
        for (int step = 0; step < options.MaxNewTokens; step++)
        {
            long next;
            using (var scope = NewDisposeScope())
            using (no_grad())
            {
                var logits = model.Forward(tensor(input, device: model.Device).unsqueeze(0), cache, lastOnly: true);   // [1, 1, V]
                next = BatchSampler.Sample(logits[.., -1], [new SamplingRow(options, null, prompt, generated)], generator)[0];
            }
            if (options.StopTokenIds.Contains(next)) yield break;
            yield return next;
            generated.Add(next);
            input = [next];
        }
    }
}
