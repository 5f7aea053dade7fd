using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// Grouped-query attention (HF: Qwen2Attention, LlamaAttention): each group of query heads shares
/// one key/value head; the cache holds the rotated keys and the values per key/value head.
public sealed class GroupedQueryAttention : nn.Module
{
    [ComponentName(Name = "q_proj")] private readonly nn.Module<Tensor, Tensor> _q;
    [ComponentName(Name = "k_proj")] private readonly nn.Module<Tensor, Tensor> _k;
    [ComponentName(Name = "v_proj")] private readonly nn.Module<Tensor, Tensor> _v;
    [ComponentName(Name = "o_proj")] private readonly nn.Module<Tensor, Tensor> _o;
    private readonly int _heads, _kvHeads, _headDim;

    public GroupedQueryAttention(DenseConfig c, WeightFormat format = WeightFormat.F32) : base(nameof(GroupedQueryAttention))
    {
        (_heads, _kvHeads, _headDim) = (c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim);
        _q = Projection.Create(c.HiddenSize, _heads * _headDim, format, c.QkvBias);
        _k = Projection.Create(c.HiddenSize, _kvHeads * _headDim, format, c.QkvBias);
        _v = Projection.Create(c.HiddenSize, _kvHeads * _headDim, format, c.QkvBias);
        _o = Projection.Create(_heads * _headDim, c.HiddenSize, format, c.OutputBias);
        RegisterComponents();
    }

    /// Per-token cache shapes: rotated keys and values.
    public static long[][] CacheShapes(DenseConfig c) => [[c.NumKeyValueHeads, c.HeadDim], [c.NumKeyValueHeads, c.HeadDim]];

    /// x [B, T, H] -> [B, T, H].
    public Tensor Forward(Tensor x, AttentionContext ctx, int layer)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        var q = Rope.ApplyRotateHalf(_q.forward(x).view(b, t, _heads, _headDim), ctx.Cos.unsqueeze(2), ctx.Sin.unsqueeze(2));
        var k = Rope.ApplyRotateHalf(_k.forward(x).view(b, t, _kvHeads, _headDim), ctx.Cos.unsqueeze(2), ctx.Sin.unsqueeze(2));
        var v = _v.forward(x).view(b, t, _kvHeads, _headDim);
        var kv = ctx.StoreAndRead(layer, k, v);                                                // [B, S, kv, d] each
        (k, v) = (kv[0], kv[1]);
        var output = nn.functional.scaled_dot_product_attention(
            q.transpose(1, 2), ShareHeads(k), ShareHeads(v), attn_mask: ctx.MaskFor(layer).to_type(x.dtype)); // [B, h, T, d]
        return _o.forward(output.transpose(1, 2).reshape(b, t, _heads * _headDim)).MoveToOuterDisposeScope();
    }

    /// [B, S, kv, d] -> [B, h, S, d], each key/value head repeated for its group of query heads.
    private Tensor ShareHeads(Tensor x)
    {
        long b = x.shape[0], s = x.shape[1];
        var perHead = x.transpose(1, 2);
        if (_kvHeads == _heads) return perHead;
        return perHead.unsqueeze(2).expand(b, _kvHeads, _heads / _kvHeads, s, _headDim).reshape(b, _heads, s, _headDim);
    }
}
