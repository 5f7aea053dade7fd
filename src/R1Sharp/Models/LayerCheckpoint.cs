using static TorchSharp.torch;

namespace R1Sharp.Models;

/// Activation checkpointing of one decoder layer (`gradient_checkpointing: true`): the forward runs
/// without keeping the layer's intermediate activations, only its input; the backward runs the layer
/// again with gradients on and differentiates that. Memory per layer drops to its input, at the cost
/// of a second forward. The layer must compute the same thing twice: no dropout inside (a LoRA
/// adapter with dropout is refused with checkpointing).
public sealed class LayerCheckpoint : autograd.SingleTensorFunction<LayerCheckpoint>
{
    public override string Name => nameof(LayerCheckpoint);

    /// h [B, T, H] through `layer` with attention context `ctx` (no cache). The backward runs the
    /// recomputed layer's own backward (reentrant, as PyTorch's original checkpoint), so its weights and
    /// adapters get their gradients directly; `Anchor` makes the node exist when h itself needs no
    /// gradient (frozen embeddings under LoRA).
    public static Tensor Run(Tensor h, Func<Tensor, AttentionContext, Tensor> layer, AttentionContext ctx)
    {
        if (ctx.Cache is not null) throw new InvalidOperationException("checkpointing is for training forwards, without a cache");
        return apply(h, layer, new KeptContext(ctx), Anchor);
    }

    private static readonly Tensor Anchor = zeros(1, requires_grad: true).DetachFromDisposeScope();

    /// The context's tensors held past the forward's dispose scope until the backward has used them.
    private sealed class KeptContext(AttentionContext ctx)
    {
        private readonly Tensor[] _kept = new[] { ctx.Cos, ctx.Sin, ctx.Positions, ctx.Mask, ctx.LocalMask }
            .Select(t => t?.alias().DetachFromDisposeScope()).ToArray()!;

        public AttentionContext Context => ctx with { Cos = _kept[0], Sin = _kept[1], Positions = _kept[2], Mask = _kept[3], LocalMask = _kept[4] };

        public void Release() { foreach (var t in _kept) t?.Dispose(); }
    }

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var kept = (KeptContext)vars[2];
        ctx.save_data("layer", vars[1]);
        ctx.save_data("context", kept);
        ctx.save_for_backward([(Tensor)vars[0]]);
        using var noGrad = no_grad();
        return ((Func<Tensor, AttentionContext, Tensor>)vars[1])((Tensor)vars[0], kept.Context);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        var layer = (Func<Tensor, AttentionContext, Tensor>)ctx.get_data("layer");
        var kept = (KeptContext)ctx.get_data("context");
        try
        {
            // The recomputed activations are freed here, not when the garbage collector finds them.
            using var scope = NewDisposeScope();
            using var enableGrad = enable_grad();
            var input = saved[0].detach().requires_grad_(true);
            var output = layer(input, kept.Context);
            output.backward([gradOutput]);
            return [input.grad!.MoveToOuterDisposeScope(), null!, null!, null!];   // one per argument: h, the layer, the context, the anchor
        }
        finally
        {
            kept.Release();
        }
    }
}
