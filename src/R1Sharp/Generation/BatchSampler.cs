using static TorchSharp.torch;

namespace R1Sharp.Generation;

/// One row of a batched sampling step: its options, its own generator when the request gave a seed,
/// and its prompt and generated ids (for the penalties).
public sealed record SamplingRow(SamplingOptions Options, Generator? Seeded, IReadOnlyList<long> Prompt, IReadOnlyList<long> Generated);

/// Chooses the next token of many sequences at once, each with its own options: penalties,
/// temperature, top-k, top-p and min-p are applied as batched tensor ops over [rows, vocab] — over the
/// top 1,024 tokens of each row when they hold every token the rules keep (a 151,936-token sort per step is
/// the slowest part of sampling otherwise).
public static class BatchSampler
{
    /// `logprobs`, when given, gets the log-probabilities of rows whose options ask for them (TokenLogprobs).
    public static long[] Sample(Tensor logits, IReadOnlyList<SamplingRow> rows, Generator shared, TokenLogprobs?[]? logprobs = null)
    {
        using var scope = NewDisposeScope();
        var device = logits.device;
        logits = logits.to_type(ScalarType.Float32);

        if (rows.Any(r => r.Options.RepetitionPenalty != 1.0 && r.Prompt.Count + r.Generated.Count > 0))
        {
            // transformers' CTRL-style penalty over every id seen: divide positive logits, multiply negative ones.
            var seen = Padded(rows.Select(r => (IReadOnlyList<long>)[.. r.Prompt, .. r.Generated]).ToList(), device, out _);
            var penalty = Column(rows, device, o => o.RepetitionPenalty);
            var values = logits.gather(1, seen);
            logits = logits.scatter(1, seen, where(values > 0, values / penalty, values * penalty));
        }
        if (rows.Any(r => (r.Options.PresencePenalty != 0 || r.Options.FrequencyPenalty != 0) && r.Generated.Count > 0))
        {
            // OpenAI's penalties over the generated ids: count * frequency + (count > 0) * presence.
            var generated = Padded(rows.Select(r => r.Generated).ToList(), device, out var valid);
            var counts = zeros_like(logits).scatter_add(1, generated, valid);
            logits = logits - counts * Column(rows, device, o => o.FrequencyPenalty) - (counts > 0).to_type(ScalarType.Float32) * Column(rows, device, o => o.PresencePenalty);
        }

        var greedy = rows.Select(r => r.Options.Greedy).ToArray();
        var result = logits.argmax(-1).cpu().data<long>().ToArray();
        if (!greedy.All(g => g)) Draw(logits, rows, shared, result);
        if (logprobs is not null) Logprobs(logits, rows, result, logprobs);
        return result;
    }

    private static void Logprobs(Tensor logits, IReadOnlyList<SamplingRow> rows, long[] chosen, TokenLogprobs?[] output)
    {
        var wanted = Enumerable.Range(0, rows.Count).Where(i => rows[i].Options.Logprobs is not null).ToArray();
        if (wanted.Length == 0) return;
        var device = logits.device;
        var index = tensor(wanted.Select(i => (long)i).ToArray(), device: device);
        var logSoftmax = logits.index_select(0, index).log_softmax(-1);
        var picked = logSoftmax.gather(1, tensor(wanted.Select(i => chosen[i]).ToArray(), device: device).view(-1, 1)).cpu().data<float>().ToArray();
        var k = (int)Math.Min(wanted.Max(i => rows[i].Options.Logprobs!.Value), logits.shape[1]);
        float[] topValues = [];
        long[] topIds = [];
        if (k > 0)
        {
            var (values, ids) = logSoftmax.topk(k, -1);
            (topValues, topIds) = (values.cpu().data<float>().ToArray(), ids.cpu().data<long>().ToArray());
        }
        for (int j = 0; j < wanted.Length; j++)
        {
            var n = Math.Min(rows[wanted[j]].Options.Logprobs!.Value, k);
            output[wanted[j]] = new TokenLogprobs(picked[j], topIds.Skip(j * k).Take(n).ToArray(), topValues.Skip(j * k).Take(n).ToArray());
        }
    }

    /// Replaces the argmax of every sampled row with its draw.
    private static void Draw(Tensor logits, IReadOnlyList<SamplingRow> rows, Generator shared, long[] result)
    {
        var device = logits.device;
        long n = rows.Count;
        var greedy = rows.Select(r => r.Options.Greedy).ToArray();
        var (distribution, candidates) = Distribution(logits, rows);
        var unseeded = Enumerable.Range(0, (int)n).Where(i => !greedy[i] && rows[i].Seeded is null).ToArray();
        if (unseeded.Length > 0)
        {
            var index = tensor(unseeded.Select(i => (long)i).ToArray(), device: device);
            var drawn = multinomial(distribution.index_select(0, index), 1, generator: shared);
            var ids = (candidates is null ? drawn : candidates.index_select(0, index).gather(1, drawn)).cpu().data<long>().ToArray();
            for (int j = 0; j < unseeded.Length; j++) result[unseeded[j]] = ids[j];
        }
        for (int i = 0; i < n; i++)
        {
            if (greedy[i] || rows[i].Seeded is not { } own) continue;
            var drawn = multinomial(distribution[i], 1, generator: own);
            result[i] = (candidates is null ? drawn : candidates[i].gather(0, drawn)).item<long>();
        }
    }

    /// How many of the most likely tokens are looked at first: a row whose top-k, top-p or min-p keeps
    /// only tokens among them is sampled from them, exactly, without sorting the whole vocabulary.
    public const int CandidateWindow = 1024;

    /// The distribution to sample from after transformers' warpers (temperature, top-k, top-p, min-p,
    /// each on the previous one's output), over the vocabulary (candidates null) or over the candidate
    /// ids [n, W] it returns. Without truncation that is the softmax; with it, the top W tokens when
    /// every row's kept tokens lie among them, else the whole vocabulary sorted.
    internal static (Tensor Probabilities, Tensor? Candidates) Distribution(Tensor logits, IReadOnlyList<SamplingRow> rows, int window = CandidateWindow)
    {
        var device = logits.device;
        long vocab = logits.shape[1];
        logits = logits / Column(rows, device, o => o.Greedy ? 1.0 : o.Temperature);
        if (!rows.Any(r => !r.Options.Greedy && (HasTopK(r.Options, vocab) || r.Options.TopP < 1 || r.Options.MinP > 0))) return (logits.softmax(-1), null);

        var fullNormaliser = logits.logsumexp(1, keepdim: true);
        if (window < vocab && rows.All(r => r.Options.Greedy || !HasTopK(r.Options, vocab) || r.Options.TopK <= window))
        {
            var (values, ids) = logits.topk(window, -1);
            var kept = Truncate(values, rows, vocab, fullNormaliser);
            if (WindowHoldsEveryKeptToken(values, kept, rows, vocab)) return (kept.softmax(-1), ids);
        }
        var (sorted, order) = logits.sort(-1, descending: true);
        return (zeros_like(logits).scatter(1, order, Truncate(sorted, rows, vocab, fullNormaliser).softmax(-1)), null);
    }

    /// Top-k, top-p and min-p on logits sorted in descending order (all of the vocabulary, or its top W);
    /// `fullNormaliser` is the logsumexp of the whole row, which top-p needs when no top-k came first.
    private static Tensor Truncate(Tensor sorted, IReadOnlyList<SamplingRow> rows, long vocab, Tensor fullNormaliser)
    {
        var device = sorted.device;
        long n = rows.Count, width = sorted.shape[1];
        var hasTopK = rows.Select(r => HasTopK(r.Options, vocab)).ToArray();
        var topK = tensor(rows.Select((r, i) => hasTopK[i] ? Math.Min(r.Options.TopK, width) : width).ToArray(), device: device).view(n, 1);
        sorted = sorted.masked_fill(sorted < sorted.gather(1, topK - 1), double.NegativeInfinity);
        var normaliser = where(tensor(hasTopK, device: device).view(n, 1), sorted.logsumexp(1, keepdim: true), fullNormaliser);
        var probs = (sorted - normaliser).exp();
        // Drop a token when the tokens ranked above it already reach top_p; the first always stays.
        // top_p = 1 keeps everything (a float cumsum may reach 1 before the tail ends).
        sorted = sorted.masked_fill((probs.cumsum(-1) - probs) >= Column(rows, device, o => o.TopP < 1 ? o.TopP : 2.0), double.NegativeInfinity);
        // min-p compares with the most likely token: a ratio of probabilities, a difference of logits.
        return sorted.masked_fill(sorted < sorted.narrow(1, 0, 1) + Column(rows, device, o => o.MinP > 0 ? Math.Log(o.MinP) : double.NegativeInfinity), double.NegativeInfinity);
    }

    /// Whether no token beyond the top W would have been kept. Each rule keeps a prefix of the ranking, so
    /// it suffices that a sampled row's last candidate is dropped: by top-k itself (below the k-th value,
    /// so its normaliser saw every token it keeps), else by top-p or min-p.
    private static bool WindowHoldsEveryKeptToken(Tensor values, Tensor kept, IReadOnlyList<SamplingRow> rows, long vocab)
    {
        long width = values.shape[1];
        var last = values.narrow(1, width - 1, 1).squeeze(1).cpu().data<float>().ToArray();
        var dropped = kept.narrow(1, width - 1, 1).isneginf().squeeze(1).cpu().data<bool>().ToArray();
        var rank = tensor(rows.Select(r => (long)Math.Clamp(r.Options.TopK - 1, 0, width - 1)).ToArray(), device: values.device).view(-1, 1);
        var kth = values.gather(1, rank).squeeze(1).cpu().data<float>().ToArray();
        for (int i = 0; i < rows.Count; i++)
        {
            var o = rows[i].Options;
            if (o.Greedy) continue;
            if (HasTopK(o, vocab) ? !(o.TopK < width && last[i] < kth[i]) : !dropped[i]) return false;
        }
        return true;
    }

    /// One option of every row as a float32 column [n, 1].
    private static Tensor Column(IReadOnlyList<SamplingRow> rows, Device device, Func<SamplingOptions, double> value) =>
        tensor(rows.Select(r => value(r.Options)).ToArray(), device: device).to_type(ScalarType.Float32).view(rows.Count, 1);

    private static bool HasTopK(SamplingOptions o, long vocab) => o.TopK > 0 && o.TopK < vocab;

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
