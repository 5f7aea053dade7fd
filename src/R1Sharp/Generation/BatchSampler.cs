using static TorchSharp.torch;

namespace R1Sharp.Generation;

/// One row of a batched sampling step: its options, its own generator when the request gave a seed,
/// and its prompt and generated ids (for the penalties).
public sealed record SamplingRow(SamplingOptions Options, Generator? Seeded, IReadOnlyList<long> Prompt, IReadOnlyList<long> Generated);

/// Chooses the next token of many sequences at once, each with its own options: penalties,
/// temperature, top-k, top-p and min-p are applied as batched tensor ops over [rows, vocab].
public static class BatchSampler
{
    public static long[] Sample(Tensor logits, IReadOnlyList<SamplingRow> rows, Generator shared)
    {
        using var scope = NewDisposeScope();
        var device = logits.device;
        long n = rows.Count;
        Tensor Column(Func<SamplingOptions, double> value) => tensor(rows.Select(r => value(r.Options)).ToArray(), device: device).to_type(ScalarType.Float32).view(n, 1);
        logits = logits.to_type(ScalarType.Float32);

        if (rows.Any(r => r.Options.RepetitionPenalty != 1.0 && r.Prompt.Count + r.Generated.Count > 0))
        {
            // transformers' CTRL-style penalty over every id seen: divide positive logits, multiply negative ones.
            var seen = Padded(rows.Select(r => (IReadOnlyList<long>)[.. r.Prompt, .. r.Generated]).ToList(), device, out _);
            var penalty = Column(o => o.RepetitionPenalty);
            var values = logits.gather(1, seen);
            logits = logits.scatter(1, seen, where(values > 0, values / penalty, values * penalty));
        }
        if (rows.Any(r => (r.Options.PresencePenalty != 0 || r.Options.FrequencyPenalty != 0) && r.Generated.Count > 0))
        {
            // OpenAI's penalties over the generated ids: count * frequency + (count > 0) * presence.
            var generated = Padded(rows.Select(r => r.Generated).ToList(), device, out var valid);
            var counts = zeros_like(logits).scatter_add(1, generated, valid);
            logits = logits - counts * Column(o => o.FrequencyPenalty) - (counts > 0).to_type(ScalarType.Float32) * Column(o => o.PresencePenalty);
        }

        var greedy = rows.Select(r => r.Options.Greedy).ToArray();
        var choice = logits.argmax(-1);
        if (greedy.All(g => g)) return choice.cpu().data<long>().ToArray();

        // transformers' warper order, each on the output of the previous: temperature, top-k, top-p, min-p.
        logits = logits / Column(o => o.Greedy ? 1.0 : o.Temperature);
        var (sorted, order) = logits.sort(-1, descending: true);
        var vocab = logits.shape[1];
        var topK = tensor(rows.Select(r => (long)(r.Options.TopK is > 0 && r.Options.TopK < vocab ? r.Options.TopK : vocab)).ToArray(), device: device).view(n, 1);
        sorted = sorted.masked_fill(sorted < sorted.gather(1, topK - 1), double.NegativeInfinity);
        var probs = sorted.softmax(-1);
        // Drop a token when the tokens ranked above it already reach top_p; the first always stays.
        // top_p = 1 keeps everything (a float cumsum may reach 1 before the tail ends).
        sorted = sorted.masked_fill((probs.cumsum(-1) - probs) >= Column(o => o.TopP < 1 ? o.TopP : 2.0), double.NegativeInfinity);
        probs = sorted.softmax(-1);
        sorted = sorted.masked_fill(probs < probs.narrow(1, 0, 1) * Column(o => o.MinP), double.NegativeInfinity);
        var distribution = zeros_like(logits).scatter(1, order, sorted.softmax(-1));

        var result = choice.cpu().data<long>().ToArray();
        var unseeded = Enumerable.Range(0, (int)n).Where(i => !greedy[i] && rows[i].Seeded is null).ToArray();
        if (unseeded.Length > 0)
        {
            var index = tensor(unseeded.Select(i => (long)i).ToArray(), device: device);
            var drawn = multinomial(distribution.index_select(0, index), 1, generator: shared).cpu().data<long>().ToArray();
            for (int j = 0; j < unseeded.Length; j++) result[unseeded[j]] = drawn[j];
        }
        for (int i = 0; i < n; i++)
            if (!greedy[i] && rows[i].Seeded is { } own) result[i] = multinomial(distribution[i], 1, generator: own).item<long>();
        return result;
    }

    /// Rows of ids right-padded with each row's first id (harmless to gather/scatter), and a
    /// weight of 1 for real ids and 0 for padding.
    private static Tensor Padded(IReadOnlyList<IReadOnlyList<long>> ids, Device device, out Tensor valid)
    {
        var width = Math.Max(1, ids.Max(r => r.Count));
        var data = new long[ids.Count * width];
        var weights = new float[ids.Count * width];
        for (int r = 0; r < ids.Count; r++)
            for (int t = 0; t < width; t++)
            {
                var real = t < ids[r].Count;
                data[r * width + t] = real ? ids[r][t] : ids[r].Count > 0 ? ids[r][0] : 0;
                weights[r * width + t] = real ? 1 : 0;
            }
        valid = tensor(weights, device: device).view(ids.Count, width);
        return tensor(data, device: device).view(ids.Count, width);
    }
}
