using R1Sharp.Generation;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// A decoder-only language model whose parameter names are the Hugging Face tensor names.
public abstract class CausalLM : nn.Module
{
    static CausalLM() => NativeMemoryTuning.Apply();

    protected CausalLM(string name) : base(name) { }

    public abstract ModelConfig Config { get; }

    /// How the weights are held in memory (compute is float32 regardless).
    public abstract WeightFormat WeightFormat { get; }

    /// ids [B, T] -> float32 logits [B, T, V]. With a cache, row b's tokens continue at cache.Lengths[b]
    /// and the cache advances by validLengths[b] (default T): rows may be right-padded.
    public abstract Tensor Forward(Tensor ids, KvCache? cache = null, long[]? validLengths = null, ForwardTrace? trace = null);

    public abstract KvCache CreateCache(int batchSize, int maxLength);

    /// Throws a user error naming the first id outside [0, vocab_size).
    public void CheckTokenIds(IEnumerable<long> ids)
    {
        foreach (var id in ids)
            if (id < 0 || id >= Config.VocabSize)
                throw new R1SharpException($"token id {id} is outside the vocabulary (0..{Config.VocabSize - 1})");
    }

    public Device Device => parameters().First().device;

    /// Additive causal mask [B, 1, T, S]: the query at position p sees keys 0..p.
    protected static Tensor CausalMask(Tensor positions, long keyLength)
    {
        using var scope = NewDisposeScope();
        var keys = arange(keyLength, device: positions.device).view(1, 1, 1, -1);
        var visible = keys <= positions.unsqueeze(1).unsqueeze(-1);
        return zeros(visible.shape, device: positions.device)
            .masked_fill(visible.logical_not(), double.NegativeInfinity).MoveToOuterDisposeScope();
    }
}
