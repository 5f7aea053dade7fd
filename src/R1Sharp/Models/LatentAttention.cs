using R1Sharp.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// Multi-head Latent Attention (HF: DeepseekV3Attention; official: MLA). Keys and values come from a
/// compressed latent (kv_lora_rank) plus one shared rope key; the cache holds only those two.
public sealed class LatentAttention : nn.Module
{
    [ComponentName(Name = "q_proj")] private readonly nn.Module<Tensor, Tensor>? _q;
    [ComponentName(Name = "q_a_proj")] private readonly nn.Module<Tensor, Tensor>? _qA;
    [ComponentName(Name = "q_a_layernorm")] private readonly RmsNorm? _qNorm;
    [ComponentName(Name = "q_b_proj")] private readonly nn.Module<Tensor, Tensor>? _qB;
    [ComponentName(Name = "kv_a_proj_with_mqa")] private readonly nn.Module<Tensor, Tensor> _kvA;
    [ComponentName(Name = "kv_a_layernorm")] private readonly RmsNorm _kvNorm;
    [ComponentName(Name = "kv_b_proj")] private readonly nn.Module<Tensor, Tensor> _kvB;
    [ComponentName(Name = "o_proj")] private readonly nn.Module<Tensor, Tensor> _o;
    private readonly int _heads, _nope, _rope, _v, _rank;
    private readonly double _softmaxScale;

    public LatentAttention(DeepSeekConfig c, double softmaxScale, WeightFormat format = WeightFormat.F32) : base(nameof(LatentAttention))
    {
        (_heads, _nope, _rope, _v, _rank) = (c.NumAttentionHeads, c.QkNopeHeadDim, c.QkRopeHeadDim, c.VHeadDim, c.KvLoraRank);
        _softmaxScale = softmaxScale;
        if (c.QLoraRank is int qRank)
        {
            _qA = Projection.Create(c.HiddenSize, qRank, format);
            _qNorm = new RmsNorm(qRank, c.RmsNormEps);
            _qB = Projection.Create(qRank, _heads * c.QkHeadDim, format);
        }
        else
        {
            _q = Projection.Create(c.HiddenSize, _heads * c.QkHeadDim, format);
        }
        _kvA = Projection.Create(c.HiddenSize, _rank + _rope, format);
        _kvNorm = new RmsNorm(_rank, c.RmsNormEps);
        _kvB = Projection.Create(_rank, _heads * (_nope + _v), format);
        _o = Projection.Create(_heads * _v, c.HiddenSize, format);
        RegisterComponents();
    }

    /// Per-token cache shapes: the normalised latent and the rotated rope key.
    public static long[][] CacheShapes(DeepSeekConfig c) => [[c.KvLoraRank], [c.QkRopeHeadDim]];

    /// x [B, T, H] -> [B, T, H].
    public Tensor Forward(Tensor x, AttentionContext ctx, int layer)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        var q = (_q is not null ? _q.forward(x) : _qB!.forward(_qNorm!.forward(_qA!.forward(x))))
            .view(b, t, _heads, _nope + _rope);                                           // [B, T, h, nope+rope]
        var kv = _kvA.forward(x);                                                         // [B, T, rank+rope]
        Tensor qRope, ropeKey;
        if (RopeInPlace.Applies(q, ctx.Cos) && RopeInPlace.Applies(kv, ctx.Cos))
        {
            RopeInPlace.Interleaved(q, _heads, _nope + _rope, _nope, _rope, ctx.Cos, ctx.Sin);
            RopeInPlace.Interleaved(kv, 1, _rank + _rope, _rank, _rope, ctx.Cos, ctx.Sin);
            (qRope, ropeKey) = (q.narrow(-1, _nope, _rope), kv.narrow(-1, _rank, _rope));
        }
        else
        {
            qRope = Rope.ApplyInterleaved(q.narrow(-1, _nope, _rope), ctx.Cos.unsqueeze(2), ctx.Sin.unsqueeze(2));
            ropeKey = Rope.ApplyInterleaved(kv.narrow(-1, _rank, _rope), ctx.Cos, ctx.Sin);  // [B, T, rope]
        }
        var qNope = q.narrow(-1, 0, _nope);
        var latent = _kvNorm.forward(kv.narrow(-1, 0, _rank));                            // [B, T, rank]

        var cached = ctx.StoreAndRead(layer, latent, ropeKey);                                // [B, S, ...] each
        (latent, ropeKey) = (cached[0], cached[1]);

        var output = ctx.Mode == AttentionMode.Naive ? Naive(qNope, qRope, latent, ropeKey, ctx.MaskFor(layer))
            : _kvB is IKernelProjection { KernelReadable: true } kvB && KernelLinear.Applies(x, kvB.NeedsGrad) && kvB.View() is { Format: not StoredWeight.Fp8 } view
                ? AbsorbedKernels(qNope, qRope, latent, ropeKey, view, ctx.MaskFor(layer))
                : Absorbed(qNope, qRope, latent, ropeKey, Projection.Weight(_kvB).view(_heads, _nope + _v, _rank), ctx.MaskFor(layer)); // [B, h, T, v]
        return _o.forward(output.transpose(1, 2).reshape(b, t, _heads * _v)).MoveToOuterDisposeScope();
    }

    // Official default: fold kv_b_proj's key half into q and its value half into the output, so
    // attention runs directly against the cached latent: every head scores the same latent and rope key,
    // so each sequence's heads form one batched matmul and nothing is repeated per head.
    private Tensor Absorbed(Tensor qNope, Tensor qRope, Tensor latent, Tensor ropeKey, Tensor wkvB, Tensor mask)
    {
        var qLatent = matmul(qNope.transpose(1, 2), wkvB.narrow(1, 0, _nope));                  // [B, h, T, rank]
        var context = LatentContext(qLatent, qRope, latent, ropeKey, mask);                     // [B, h, T, rank]
        return matmul(context, wkvB.narrow(1, _nope, _v).transpose(-1, -2));                    // [B, h, T, v]
    }

    /// The same for a few tokens (decoding) with kv_b_proj read as stored by the kernels, never as a
    /// float32 copy: per head the query latent qNope·W_k (rows of W weighted) and the output ctx·W_vᵀ,
    /// the heads split over the cores.
    private unsafe Tensor AbsorbedKernels(Tensor qNope, Tensor qRope, Tensor latent, Tensor ropeKey, WeightView kvB, Tensor mask)
    {
        int b = (int)latent.shape[0], t = (int)qNope.shape[1], heads = _heads, nope = _nope, v = _v, rank = _rank, stride = _nope + _v;
        var queries = qNope.contiguous();                                                       // [B, T, h, nope]
        var qLatent = zeros(b, heads, t, rank);
        float* q = (float*)TensorMemory.Pointer(queries), ql = (float*)TensorMemory.Pointer(qLatent);
        var parts = Math.Min(KernelThreads.Count, heads);
        KernelThreads.Run(parts, part =>
        {
            for (int h = part; h < heads; h += parts)
                for (int s = 0; s < b; s++)
                    FewRowMatmul.AccumulateRows(kvB, h * stride, nope, q + ((long)s * t * heads + h) * nope, heads * nope, t, ql + ((long)s * heads + h) * t * rank);
        });
        var context = LatentContext(qLatent, qRope, latent, ropeKey, mask).contiguous();        // [B, h, T, rank]
        var output = empty(b, heads, t, v);
        float* c = (float*)TensorMemory.Pointer(context), o = (float*)TensorMemory.Pointer(output);
        KernelThreads.Run(parts, part =>
        {
            for (int h = part; h < heads; h += parts)
                for (int s = 0; s < b; s++)
                {
                    long at = (long)s * heads + h;
                    FewRowMatmul.RunOnThisThread(kvB.Rows(h * stride + nope, v), c + at * t * rank, t, o + at * t * v);
                }
        });
        return output;
    }

    /// softmax(scale · (qLatent latentᵀ + qRope ropeKeyᵀ) + mask) latent: [B, h, T, rank], in one batched
    /// matmul per sequence for all heads.
    private Tensor LatentContext(Tensor qLatent, Tensor qRope, Tensor latent, Tensor ropeKey, Tensor mask)
    {
        long b = latent.shape[0], s = latent.shape[1], t = qLatent.shape[2];
        var scores = matmul(qLatent.reshape(b, _heads * t, _rank), latent.transpose(1, 2))
            + matmul(qRope.transpose(1, 2).reshape(b, _heads * t, _rope), ropeKey.transpose(1, 2)); // [B, h·T, S]
        var weights = (scores.view(b, _heads, t, s).to_type(ScalarType.Float32) * _softmaxScale + mask).softmax(-1);
        return matmul(weights.to_type(latent.dtype).view(b, _heads * t, s), latent).view(b, _heads, t, _rank);
    }

    private Tensor Naive(Tensor qNope, Tensor qRope, Tensor latent, Tensor ropeKey, Tensor mask)
    {
        long b = latent.shape[0], s = latent.shape[1];
        var kv = _kvB.forward(latent).view(b, s, _heads, _nope + _v);                          // [B, S, h, nope+v]
        var keys = cat([kv.narrow(-1, 0, _nope), ropeKey.unsqueeze(2).expand(b, s, _heads, _rope)], -1);
        var queries = cat([qNope, qRope], -1);
        return Attend(queries.transpose(1, 2), keys.transpose(1, 2), kv.narrow(-1, _nope, _v).transpose(1, 2), mask);
    }

    /// softmax(q k^T * scale + mask) v with libtorch's fused kernel, which scales by 1/sqrt(d) itself.
    private Tensor Attend(Tensor queries, Tensor keys, Tensor values, Tensor mask)
    {
        var rescale = _softmaxScale * Math.Sqrt(queries.shape[^1]);
        return nn.functional.scaled_dot_product_attention(queries * rescale, keys, values, attn_mask: mask.to_type(queries.dtype));
    }
}
