using R1Sharp.Generation;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// Qwen2 and Llama (HF: Qwen2ForCausalLM, LlamaForCausalLM), the architectures of the R1-Distill models.
/// Numerics follow transformers' definitions of these architectures.
public sealed class DenseForCausalLM : CausalLM
{
    [ComponentName(Name = "model")] private readonly DenseBody _model;
    [ComponentName(Name = "lm_head")] private readonly nn.Module<Tensor, Tensor>? _lmHead;
    private readonly DenseConfig _config;

    public DenseForCausalLM(DenseConfig config, WeightFormat format = WeightFormat.F32) : base(nameof(DenseForCausalLM))
    {
        _config = config;
        WeightFormat = format;
        _model = new DenseBody(config, format);
        if (!config.TieWordEmbeddings) _lmHead = Projection.CreateHead(config.HiddenSize, config.VocabSize, format);
        RegisterComponents();
        InverseFrequencies = RopeFrequencies(config);
        SetRopeTables(Rope.Tables(InverseFrequencies, config.MaxPositionEmbeddings, device: ModelDevice.Current));
    }

    public override ModelConfig Config => _config;
    public override WeightFormat WeightFormat { get; }
    public DenseConfig Dense => _config;
    public float[] InverseFrequencies { get; }

    public static float[] RopeFrequencies(DenseConfig c) => c.RopeScaling switch
    {
        { Kind: "linear" } r => Rope.InverseFrequencies(c.HeadDim, c.RopeTheta).Select(f => (float)(f / r.Factor)).ToArray(),
        { Kind: "llama3" } r => Rope.Llama3InverseFrequencies(c.HeadDim, c.RopeTheta, r.Factor, r.LowFreqFactor!.Value,
            r.HighFreqFactor!.Value, r.OriginalMaxPositionEmbeddings!.Value),
        _ => Rope.InverseFrequencies(c.HeadDim, c.RopeTheta),
    };

    public override KvCache CreateCache(int batchSize, int maxLength) =>
        NewCache(batchSize, maxLength, GroupedQueryAttention.CacheShapes(_config), _config.NumHiddenLayers);

    /// Recompute each decoder layer in the backward instead of keeping its activations (training only).
    public override bool GradientCheckpointing { get => _model.GradientCheckpointing; set => _model.GradientCheckpointing = value; }

    public override Tensor Forward(Tensor ids, KvCache? cache = null, long[]? validLengths = null, ForwardTrace? trace = null, bool lastOnly = false)
    {
        using var scope = NewDisposeScope();
        long batch = ids.shape[0], length = ids.shape[1];
        var ctx = BuildContext(batch, length, ids.device, cache, AttentionMode.Naive, validLengths);
        var h = _model.Forward(ids, ctx, trace);
        return Logits(h, _lmHead, _model.Embedding, cache, validLengths, lastOnly).MoveToOuterDisposeScope();
    }

    /// HF "model": embeddings, blocks, final norm.
    private sealed class DenseBody : nn.Module
    {
        [ComponentName(Name = "embed_tokens")] private readonly TokenEmbedding _embed;
        [ComponentName(Name = "layers")] private readonly ModuleList<DenseDecoderLayer> _layers;
        [ComponentName(Name = "norm")] private readonly RmsNorm _norm;

        public DenseBody(DenseConfig c, WeightFormat format) : base(nameof(DenseBody))
        {
            _embed = new TokenEmbedding(c.VocabSize, c.HiddenSize, format);
            _layers = new ModuleList<DenseDecoderLayer>(Enumerable.Range(0, c.NumHiddenLayers).Select(_ => new DenseDecoderLayer(c, format)).ToArray());
            _norm = new RmsNorm(c.HiddenSize, c.RmsNormEps);
            RegisterComponents();
        }

        public TokenEmbedding Embedding => _embed;
        public bool GradientCheckpointing { get; set; }


        public Tensor Forward(Tensor ids, AttentionContext ctx, ForwardTrace? trace)
        {
            using var scope = NewDisposeScope();
            var h = _embed.forward(ids).to_type(ScalarType.Float32);
            trace?.AddHidden(h);
            for (int i = 0; i < _layers.Count; i++)
            {
                var index = i;
                h = GradientCheckpointing && ctx.Cache is null && is_grad_enabled()
                    ? LayerCheckpoint.Run(h, (x, c) => _layers[index].Forward(x, c, index), ctx)
                    : _layers[i].Forward(h, ctx, i);
                trace?.AddHidden(h);
            }
            h = _norm.forward(h);
            trace?.AddHidden(h);
            return h.MoveToOuterDisposeScope();
        }
    }
}
