using static TorchSharp.torch;

namespace R1Sharp.Generation;

/// Picks next tokens from logits [B, V], one row per sequence, with batched tensor ops.
public sealed class Sampler
{
    private readonly SamplingOptions _options;
    private readonly Generator? _generator;

    public Sampler(SamplingOptions options)
    {
        options.Validate();
        _options = options;
        if (!options.Greedy) _generator = new Generator((ulong)(options.Seed ?? Random.Shared.NextInt64()));
    }

    /// logits [B, V]; history [B, L] of ids seen so far (for the repetition penalty), or null.
    public Tensor Sample(Tensor logits, Tensor? history = null)
    {
        using var scope = NewDisposeScope();
        logits = logits.to_type(ScalarType.Float32);
        if (_options.RepetitionPenalty != 1.0 && history is not null && history.shape[1] > 0)
        {
            // CTRL-style penalty as transformers applies it: divide positive logits, multiply negative ones.
            var seen = logits.gather(1, history);
            var penalised = where(seen > 0, seen / _options.RepetitionPenalty, seen * _options.RepetitionPenalty);
            logits = logits.scatter(1, history, penalised);
        }
        if (_options.Greedy) return logits.argmax(-1).MoveToOuterDisposeScope();

        logits = logits / _options.Temperature;
        if (_options.TopK > 0 && _options.TopK < logits.shape[1])
        {
            var kth = logits.topk(_options.TopK, dim: -1).values.narrow(-1, _options.TopK - 1, 1);
            logits = logits.masked_fill(logits < kth, double.NegativeInfinity);
        }
        if (_options.TopP < 1.0)
        {
            var (sorted, order) = logits.sort(-1, descending: true);
            var cumulative = sorted.softmax(-1).cumsum(-1);
            // Drop a token when the tokens ranked above it already reach top_p; the first always stays.
            var drop = (cumulative - sorted.softmax(-1)) >= _options.TopP;
            logits = logits.scatter(1, order, sorted.masked_fill(drop, double.NegativeInfinity));
        }
        if (_options.MinP > 0)
        {
            var probs = logits.softmax(-1);
            var floor = probs.amax([-1L], keepdim: true) * _options.MinP;
            logits = logits.masked_fill(probs < floor, double.NegativeInfinity);
        }
        return multinomial(logits.softmax(-1), 1, generator: _generator).squeeze(-1).MoveToOuterDisposeScope();
    }
}
