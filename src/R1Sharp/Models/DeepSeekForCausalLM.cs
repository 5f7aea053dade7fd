using R1Sharp.Generation;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// DeepSeek-V2/V3/R1 (HF: DeepseekV3ForCausalLM). Numerics follow the official DeepSeek-V3 inference code.
public sealed class DeepSeekForCausalLM : CausalLM
{
    [ComponentName(Name = "model")] private readonly DeepSeekBody _model;
    [ComponentName(Name = "lm_head")] private readonly nn.Module<Tensor, Tensor>? _lmHead;
    private readonly DeepSeekConfig _config;

    public DeepSeekForCausalLM(DeepSeekConfig config, WeightFormat format = WeightFormat.F32) : base(nameof(DeepSeekForCausalLM))
    {
        _config = config;
        WeightFormat = format;
        var (inverseFrequencies, softmaxScale, ropeFactor) = RopeSettings(config);
        _model = new DeepSeekBody(config, softmaxScale, format);
        if (!config.TieWordEmbeddings) _lmHead = Projection.CreateHead(config.HiddenSize, config.VocabSize, format);
        RegisterComponents();
        InverseFrequencies = inverseFrequencies;
        SoftmaxScale = softmaxScale;
        SetRopeTables(Rope.Tables(inverseFrequencies, config.MaxPositionEmbeddings, ropeFactor, ModelDevice.Current));
    }

    public override ModelConfig Config => _config;
    public override WeightFormat WeightFormat { get; }
    public DeepSeekConfig DeepSeek => _config;
    public float[] InverseFrequencies { get; }
    public double SoftmaxScale { get; }
    public AttentionMode AttentionMode { get; set; } = AttentionMode.Absorbed;
    public IReadOnlyList<DecoderLayer> Layers => _model.Layers;

    /// YaRN as the official code applies it: only when the model's length exceeds the original one;
    /// the softmax scale then grows by mscale^2.
    private static (float[] InverseFrequencies, double SoftmaxScale, double RopeFactor) RopeSettings(DeepSeekConfig c)
    {
        var scale = 1.0 / Math.Sqrt(c.QkHeadDim);
        if (c.RopeScaling is not { Kind: "yarn" } y || c.MaxPositionEmbeddings <= y.OriginalMaxPositionEmbeddings!.Value)
            return (Rope.InverseFrequencies(c.QkRopeHeadDim, c.RopeTheta), scale, 1.0);
        var freqs = Rope.YarnInverseFrequencies(c.QkRopeHeadDim, c.RopeTheta, y.Factor, y.OriginalMaxPositionEmbeddings.Value, y.BetaFast, y.BetaSlow);
        var softmaxMscale = Rope.YarnMscale(y.Factor, y.MscaleAllDim > 0 ? y.MscaleAllDim : y.Mscale);
        var ropeFactor = y.MscaleAllDim > 0 ? Rope.YarnMscale(y.Factor, y.Mscale) / Rope.YarnMscale(y.Factor, y.MscaleAllDim) : 1.0;
        return (freqs, scale * softmaxMscale * softmaxMscale, ropeFactor);
    }

    public override bool GradientCheckpointing { get => _model.GradientCheckpointing; set => _model.GradientCheckpointing = value; }

    public override KvCache CreateCache(int batchSize, int maxLength) =>
        NewCache(batchSize, maxLength, LatentAttention.CacheShapes(_config), _config.NumHiddenLayers + _config.NumNextnPredictLayers);

    public override Tensor Forward(Tensor ids, KvCache? cache = null, long[]? validLengths = null, ForwardTrace? trace = null, bool lastOnly = false)
    {
        using var scope = NewDisposeScope();
        long batch = ids.shape[0], length = ids.shape[1];
        var ctx = Context(batch, length, ids.device, cache, validLengths);
        var h = _model.Forward(ids, ctx, trace);
        return Logits(h, _lmHead, _model.Embedding, cache, validLengths, lastOnly).MoveToOuterDisposeScope();
    }

    /// Multi-token prediction (training, no cache): hidden [B, T, H] from the last block (before the final
    /// norm) and the next tokens [B, T] -> logits [B, T, V] for the token after next, from MTP module `depth`.
    public Tensor MtpLogits(Tensor hidden, Tensor nextIds, int depth = 0)
    {
        if (depth >= _config.NumNextnPredictLayers) throw new R1SharpException($"the model has {_config.NumNextnPredictLayers} MTP modules (num_nextn_predict_layers)");
        using var scope = NewDisposeScope();
        var mtp = (MtpLayer)_model.Layers[_config.NumHiddenLayers + depth];
        var ctx = Context(nextIds.shape[0], nextIds.shape[1], nextIds.device, null);
        return mtp.ForwardMtp(hidden, nextIds, ctx, _config.NumHiddenLayers + depth).MoveToOuterDisposeScope();
    }

    private AttentionContext Context(long batch, long length, Device device, KvCache? cache, long[]? validLengths = null) =>
        BuildContext(batch, length, device, cache, AttentionMode, validLengths);

    /// HF "model": embeddings, blocks (then MTP modules), final norm.
    private sealed class DeepSeekBody : nn.Module
    {
        [ComponentName(Name = "embed_tokens")] private readonly TokenEmbedding _embed;
        [ComponentName(Name = "layers")] private readonly ModuleList<DecoderLayer> _layers;
        [ComponentName(Name = "norm")] private readonly RmsNorm _norm;
        private readonly int _mainLayers;

        public DeepSeekBody(DeepSeekConfig c, double softmaxScale, WeightFormat format) : base(nameof(DeepSeekBody))
        {
            _mainLayers = c.NumHiddenLayers;
            _embed = new TokenEmbedding(c.VocabSize, c.HiddenSize, format);
            var layers = Enumerable.Range(0, c.NumHiddenLayers).Select(i => new DecoderLayer(c, i, softmaxScale, format))
                .Concat(Enumerable.Range(c.NumHiddenLayers, c.NumNextnPredictLayers).Select(i => (DecoderLayer)new MtpLayer(c, i, softmaxScale, format)));
            _layers = new ModuleList<DecoderLayer>(layers.ToArray());
            _norm = new RmsNorm(c.HiddenSize, c.RmsNormEps);
            RegisterComponents();
        }

        public TokenEmbedding Embedding => _embed;
        public IReadOnlyList<DecoderLayer> Layers => _layers.ToList();
        public bool GradientCheckpointing { get; set; }

        /// The layer's routing is traced by the forward only, not again by the backward's recomputation
        /// (the same tokens go to the same experts); a trace's router tensors then carry no gradient.
        private Tensor Checkpointed(int index, Tensor h, AttentionContext ctx, ForwardTrace? trace)
        {
            var first = true;
            return LayerCheckpoint.Run(h, (x, c) =>
            {
                var traced = first ? trace : null;
                first = false;
                return _layers[index].Forward(x, c, index, traced);
            }, ctx);
        }

        public Tensor Forward(Tensor ids, AttentionContext ctx, ForwardTrace? trace)
        {
            using var scope = NewDisposeScope();
            var h = _embed.forward(ids).to_type(ScalarType.Float32);
            trace?.AddHidden(h);
            for (int i = 0; i < _mainLayers; i++)
            {
                h = GradientCheckpointing && ctx.Cache is null && is_grad_enabled() ? Checkpointed(i, h, ctx, trace) : _layers[i].Forward(h, ctx, i, trace);
                trace?.AddHidden(h);
            }
            h = _norm.forward(h);
            trace?.AddHidden(h);
            return h.MoveToOuterDisposeScope();
        }
    }
}
