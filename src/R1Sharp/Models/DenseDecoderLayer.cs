using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// One pre-norm block of the dense family (HF: Qwen2DecoderLayer, LlamaDecoderLayer).
public sealed class DenseDecoderLayer : nn.Module
{
    [ComponentName(Name = "input_layernorm")] private readonly RmsNorm _attentionNorm;
    [ComponentName(Name = "self_attn")] private readonly GroupedQueryAttention _attention;
    [ComponentName(Name = "post_attention_layernorm")] private readonly RmsNorm _mlpNorm;
    [ComponentName(Name = "mlp")] private readonly FeedForward _mlp;

    public DenseDecoderLayer(DenseConfig config, WeightFormat format = WeightFormat.F32) : base(nameof(DenseDecoderLayer))
    {
        _attentionNorm = new RmsNorm(config.HiddenSize, config.RmsNormEps);
        _attention = new GroupedQueryAttention(config, format);
        _mlpNorm = new RmsNorm(config.HiddenSize, config.RmsNormEps);
        _mlp = new FeedForward(config.HiddenSize, config.IntermediateSize, format, config.MlpBias);
        RegisterComponents();
    }

    public Tensor Forward(Tensor h, AttentionContext ctx, int layer)
    {
        using var scope = NewDisposeScope();
        h = h + _attention.Forward(_attentionNorm.forward(h), ctx, layer);
        return (h + _mlp.forward(_mlpNorm.forward(h))).MoveToOuterDisposeScope();
    }
}
