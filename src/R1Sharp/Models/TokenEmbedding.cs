using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// The token embedding table (HF: nn.Embedding `embed_tokens`, parameter `weight` [vocab, hidden]),
/// made on ModelDevice.Current. TorchSharp's nn.Embedding is always built on the CPU first, so even a
/// meta-device model would allocate (and initialise) its largest matrix.
public sealed class TokenEmbedding : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;

    public TokenEmbedding(long vocab, long hidden, WeightFormat format) : base(nameof(TokenEmbedding))
    {
        var dtype = format == WeightFormat.F32 ? ScalarType.Float32 : ScalarType.BFloat16;
        weight = new Parameter(empty(vocab, hidden, dtype: dtype, device: ModelDevice.Current).normal_());
        RegisterComponents();
    }

    public Parameter Weight => weight;

    /// ids [...] -> [..., hidden] in the stored dtype.
    public override Tensor forward(Tensor ids)
    {
        using var scope = NewDisposeScope();
        return weight.index_select(0, ids.reshape(-1)).view([.. ids.shape, weight.shape[1]]).MoveToOuterDisposeScope();
    }
}
