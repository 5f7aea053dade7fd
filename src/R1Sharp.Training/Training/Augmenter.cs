using static TorchSharp.torch;

namespace R1Sharp.Training.Training;

/// Token-level augmentation with batched tensor ops. Deletion edits the window itself (inputs and
/// targets stay aligned); replacement with random tokens and span masking with the pad token corrupt
/// only the inputs, so the model learns to predict the clean text from a noisy context.
public static class Augmenter
{
    public static int Slack(Augmentation a, int length) => a.Delete > 0 ? (int)Math.Ceiling(length * a.Delete * 2) + 8 : 0;

    /// Windows [B, L+slack] -> [B, L] after random deletion.
    public static (Tensor Tokens, Tensor Mask) Delete(Tensor tokens, Tensor mask, int length, Augmentation a, Generator generator)
    {
        using var scope = NewDisposeScope();
        if (a.Delete > 0)
        {
            // Stable sort puts kept positions first, in order; the first `length` of them remain.
            var drop = rand(tokens.shape, generator: generator) < a.Delete;
            var order = (drop.to_type(ScalarType.Int64) * tokens.shape[1] + arange(tokens.shape[1]).unsqueeze(0)).argsort(-1);
            tokens = tokens.gather(1, order);
            mask = mask.gather(1, order);
        }
        return (tokens.narrow(1, 0, length).MoveToOuterDisposeScope(), mask.narrow(1, 0, length).MoveToOuterDisposeScope());
    }

    /// Inputs [B, L] with replacements and masked spans.
    public static Tensor Corrupt(Tensor tokens, Augmentation a, Generator generator, (int Low, int High, int Pad) ids)
    {
        using var scope = NewDisposeScope();
        long length = tokens.shape[1];
        if (a.Replace > 0)
        {
            var replace = rand(tokens.shape, generator: generator) < a.Replace;
            var randomBytes = randint(ids.Low, ids.High, tokens.shape, generator: generator, dtype: ScalarType.Int64);
            tokens = where(replace, randomBytes, tokens);
        }
        if (a.SpanMask > 0)
        {
            var starts = (rand(tokens.shape, generator: generator) < a.SpanMask / a.SpanLength).to_type(ScalarType.Float32);
            var covered = nn.functional.conv1d(starts.unsqueeze(1), ones(1, 1, a.SpanLength), padding: a.SpanLength - 1)
                .narrow(-1, 0, length).squeeze(1) > 0;                                   // spans run forward from each start
            tokens = tokens.masked_fill(covered, ids.Pad);
        }
        return tokens.MoveToOuterDisposeScope();
    }
}
