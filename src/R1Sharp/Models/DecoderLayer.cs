using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// One pre-norm transformer block (HF: DeepseekV3DecoderLayer): MLA, then a dense MLP or DeepSeekMoE.
public class DecoderLayer : nn.Module
{
    [ComponentName(Name = "input_layernorm")] private readonly RmsNorm _attentionNorm;
    [ComponentName(Name = "self_attn")] private readonly LatentAttention _attention;
    [ComponentName(Name = "post_attention_layernorm")] private readonly RmsNorm _mlpNorm;
    [ComponentName(Name = "mlp")] private readonly nn.Module _mlp;

    public DecoderLayer(DeepSeekConfig config, int index, double softmaxScale, WeightFormat format = WeightFormat.F32)
        : this(config, index, softmaxScale, format, register: true) { }

    protected DecoderLayer(DeepSeekConfig config, int index, double softmaxScale, WeightFormat format, bool register) : base(nameof(DecoderLayer))
    {
        Index = index;
        _attentionNorm = new RmsNorm(config.HiddenSize, config.RmsNormEps);
        _attention = new LatentAttention(config, softmaxScale, format);
        _mlpNorm = new RmsNorm(config.HiddenSize, config.RmsNormEps);
        _mlp = config.IsMoeLayer(index) ? new MoeLayer(config, format) : new FeedForward(config.HiddenSize, config.IntermediateSize, format);
        if (register) RegisterComponents();
    }

    public int Index { get; }
    public MoeLayer? Moe => _mlp as MoeLayer;
    public LatentAttention Attention => _attention;

    /// h [B, T, H] -> [B, T, H]. `cacheLayer` is this block's slot in the KV cache.
    public Tensor Forward(Tensor h, AttentionContext ctx, int cacheLayer, ForwardTrace? trace = null)
    {
        using var scope = NewDisposeScope();
        h = h + _attention.Forward(_attentionNorm.forward(h), ctx, cacheLayer);
        var normed = _mlpNorm.forward(h);
        var mlpOut = _mlp is MoeLayer moe ? moe.Forward(normed, trace, Index) : ((FeedForward)_mlp).forward(normed);
        return (h + mlpOut).MoveToOuterDisposeScope();
    }
}
