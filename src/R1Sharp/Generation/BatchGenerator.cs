using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Generation;

/// One finished sequence of a batch: the new tokens (stop token excluded) and whether it hit the limit.
public sealed record BatchCompletion(long[] Tokens, bool Truncated);

/// Continues many prompts at once through one KV cache: prompts of different lengths are prefilled
/// right-padded, then every step decodes one token for all rows in a single forward; rows that have
/// stopped keep decoding padding that nobody reads.
public static class BatchGenerator
{
    public static List<BatchCompletion> Generate(CausalLM model, IReadOnlyList<long[]> prompts, SamplingOptions options, long padId = 0)
    {
        if (prompts.Count == 0) return [];
        if (prompts.Any(p => p.Length == 0)) throw new R1SharpException("a prompt is empty");
        foreach (var p in prompts) model.CheckTokenIds(p);
        var longest = prompts.Max(p => p.Length);
        if (longest + options.MaxNewTokens > model.Config.MaxPositionEmbeddings)
            throw new R1SharpException($"prompt ({longest}) + max new tokens ({options.MaxNewTokens}) exceeds max_position_embeddings ({model.Config.MaxPositionEmbeddings})");
        options.Validate();
        var generator = new Generator((ulong)(options.Seed ?? Random.Shared.NextInt64()));
        var samplingRows = prompts.Select(_ => new SamplingRow(options, null, [], [])).ToList();
        int rows = prompts.Count;
        var lengths = prompts.Select(p => (long)p.Length).ToArray();
        var padded = new long[rows * longest];
        for (int r = 0; r < rows; r++)
            for (int t = 0; t < longest; t++) padded[r * longest + t] = t < prompts[r].Length ? prompts[r][t] : padId;

        var output = Enumerable.Range(0, rows).Select(_ => new List<long>()).ToArray();
        var finished = new bool[rows];
        using var cache = model.CreateCache(rows, longest + options.MaxNewTokens);
        using var noGrad = no_grad();
        long[] next;
        using (var scope = NewDisposeScope())
        {
            var last = model.Forward(tensor(padded, device: model.Device).view(rows, longest), cache, lengths, lastOnly: true).squeeze(1);   // [B, V]
            next = BatchSampler.Sample(last, samplingRows, generator);
        }
        for (int step = 0; ; step++)
        {
            for (int r = 0; r < rows; r++)
            {
                if (finished[r]) continue;
                if (options.StopTokenIds.Contains(next[r])) { finished[r] = true; continue; }
                output[r].Add(next[r]);
            }
            if (step + 1 >= options.MaxNewTokens || finished.All(f => f)) break;
            using var scope = NewDisposeScope();
            var input = tensor(next.Select((id, r) => finished[r] ? padId : id).ToArray(), device: model.Device).view(rows, 1);
            next = BatchSampler.Sample(model.Forward(input, cache)[.., -1], samplingRows, generator);
        }
        return output.Select((tokens, r) => new BatchCompletion([.. tokens], !finished[r])).ToList();
    }
}
