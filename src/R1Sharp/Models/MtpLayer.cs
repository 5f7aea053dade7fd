using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// DeepSeek-V3 multi-token prediction module (layer index num_hidden_layers + i): predicts token t+2
/// from the main model's hidden state at t and the embedding of token t+1. Kept for training and
/// speculative decoding; plain next-token forward does not use it.
public sealed class MtpLayer : DecoderLayer
{
    [ComponentName(Name = "embed_tokens")] private readonly TokenEmbedding _embed;
    [ComponentName(Name = "enorm")] private readonly RmsNorm _embedNorm;
    [ComponentName(Name = "hnorm")] private readonly RmsNorm _hiddenNorm;
    [ComponentName(Name = "eh_proj")] private readonly nn.Module<Tensor, Tensor> _project;
    [ComponentName(Name = "shared_head")] private readonly SharedHead _head;

    public MtpLayer(DeepSeekConfig config, int index, double softmaxScale, WeightFormat format = WeightFormat.F32)
        : base(config, index, softmaxScale, format, register: false)
    {
        _embed = new TokenEmbedding(config.VocabSize, config.HiddenSize, format);
        _embedNorm = new RmsNorm(config.HiddenSize, config.RmsNormEps);
        _hiddenNorm = new RmsNorm(config.HiddenSize, config.RmsNormEps);
        _project = Projection.Create(2 * config.HiddenSize, config.HiddenSize, format);
        _head = new SharedHead(config, format);
        RegisterComponents();
    }

    /// hidden [B, T, H] (main model, before its final norm), nextIds [B, T] -> logits [B, T, V] for the token after next.
    public Tensor ForwardMtp(Tensor hidden, Tensor nextIds, AttentionContext ctx, int cacheLayer)
    {
        using var scope = NewDisposeScope();
        var mixed = _project.forward(cat([_embedNorm.forward(_embed.forward(nextIds).to_type(ScalarType.Float32)), _hiddenNorm.forward(hidden)], -1));
        var h = Forward(mixed, ctx, cacheLayer);
        return _head.Forward(h).MoveToOuterDisposeScope();
    }

    private sealed class SharedHead : nn.Module
    {
        [ComponentName(Name = "norm")] private readonly RmsNorm _norm;
        [ComponentName(Name = "head")] private readonly nn.Module<Tensor, Tensor> _head;

        public SharedHead(DeepSeekConfig config, WeightFormat format) : base(nameof(SharedHead))
        {
            _norm = new RmsNorm(config.HiddenSize, config.RmsNormEps);
            _head = Projection.CreateHead(config.HiddenSize, config.VocabSize, format);
            RegisterComponents();
        }

        public Tensor Forward(Tensor h) => _head.forward(_norm.forward(h)).to_type(ScalarType.Float32);
    }
}
