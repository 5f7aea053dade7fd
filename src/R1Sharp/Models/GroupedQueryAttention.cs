using R1Sharp.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// Grouped-query attention (HF: Qwen2Attention, LlamaAttention, Qwen3Attention): each group of query
/// heads shares one key/value head; the cache holds the rotated keys and the values per key/value head.
/// Qwen3 normalises each query and key head (RMSNorm over head_dim) before RoPE.
public sealed class GroupedQueryAttention : nn.Module
{
    [ComponentName(Name = "q_proj")] private readonly nn.Module<Tensor, Tensor> _q;
    [ComponentName(Name = "k_proj")] private readonly nn.Module<Tensor, Tensor> _k;
    [ComponentName(Name = "v_proj")] private readonly nn.Module<Tensor, Tensor> _v;
    [ComponentName(Name = "o_proj")] private readonly nn.Module<Tensor, Tensor> _o;
    [ComponentName(Name = "q_norm")] private readonly RmsNorm? _qNorm;
    [ComponentName(Name = "k_norm")] private readonly RmsNorm? _kNorm;
    private readonly int _heads, _kvHeads, _headDim;

    public GroupedQueryAttention(DenseConfig c, WeightFormat format = WeightFormat.F32) : base(nameof(GroupedQueryAttention))
    {
        (_heads, _kvHeads, _headDim) = (c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim);
        _q = Projection.Create(c.HiddenSize, _heads * _headDim, format, c.QkvBias);
        _k = Projection.Create(c.HiddenSize, _kvHeads * _headDim, format, c.QkvBias);
        _v = Projection.Create(c.HiddenSize, _kvHeads * _headDim, format, c.QkvBias);
        _o = Projection.Create(_heads * _headDim, c.HiddenSize, format, c.OutputBias);
        if (c.HasQkNorm) (_qNorm, _kNorm) = (new RmsNorm(_headDim, c.RmsNormEps), new RmsNorm(_headDim, c.RmsNormEps));
        RegisterComponents();
    }

    /// Per-token cache shapes: rotated keys and values.
    public static long[][] CacheShapes(DenseConfig c) => [[c.NumKeyValueHeads, c.HeadDim], [c.NumKeyValueHeads, c.HeadDim]];

    /// x [B, T, H] -> [B, T, H].
    public Tensor Forward(Tensor x, AttentionContext ctx, int layer)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        var q = _q.forward(x).view(b, t, _heads, _headDim);
        var k = _k.forward(x).view(b, t, _kvHeads, _headDim);
        if (_qNorm is not null) (q, k) = (_qNorm.forward(q), _kNorm!.forward(k));
        if (RopeInPlace.Applies(q, ctx.Cos) && RopeInPlace.Applies(k, ctx.Cos))
        {
            RopeInPlace.RotateHalf(q, _heads, _headDim, ctx.Cos, ctx.Sin);
            RopeInPlace.RotateHalf(k, _kvHeads, _headDim, ctx.Cos, ctx.Sin);
        }
        else
        {
            q = Rope.ApplyRotateHalf(q, ctx.Cos.unsqueeze(2), ctx.Sin.unsqueeze(2));
            k = Rope.ApplyRotateHalf(k, ctx.Cos.unsqueeze(2), ctx.Sin.unsqueeze(2));
        }
        var v = _v.forward(x).view(b, t, _kvHeads, _headDim);
        var kv = ctx.StoreAndRead(layer, k, v);                                                // [B, S, kv, d] each
        var output = Attend(q, kv[0], kv[1], ctx.MaskFor(layer).to_type(x.dtype));              // [B, T, h·d]
        return _o.forward(output).MoveToOuterDisposeScope();
    }

    /// q [B, T, h, d] against k, v [B, S, kv, d]: each key/value head's group of g query heads attends as
    /// g·T query rows, so the cache is read as it is, never repeated per head. mask [B, 1, T, S].
    private Tensor Attend(Tensor q, Tensor k, Tensor v, Tensor mask)
    {
        long b = q.shape[0], t = q.shape[1], s = k.shape[1], g = _heads / _kvHeads, m = mask.shape[0];
        var queries = q.view(b, t, _kvHeads, g, _headDim).permute(0, 2, 3, 1, 4).reshape(b, _kvHeads, g * t, _headDim);
        var groupMask = mask.unsqueeze(2).expand(m, 1, g, t, s).reshape(m, 1, g * t, s);
        var output = nn.functional.scaled_dot_product_attention(queries, k.transpose(1, 2), v.transpose(1, 2), attn_mask: groupMask);
        return output.view(b, _kvHeads, g, t, _headDim).permute(0, 3, 1, 2, 4).reshape(b, t, _heads * _headDim);
    }
}
