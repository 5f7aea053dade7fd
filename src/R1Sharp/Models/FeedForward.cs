using R1Sharp.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// SwiGLU feed-forward (HF: DeepseekV3MLP, Qwen2MLP, LlamaMLP): dense layers, routed and shared experts.
public sealed class FeedForward : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "gate_proj")] private readonly nn.Module<Tensor, Tensor> _gate;
    [ComponentName(Name = "up_proj")] private readonly nn.Module<Tensor, Tensor> _up;
    [ComponentName(Name = "down_proj")] private readonly nn.Module<Tensor, Tensor> _down;

    /// Its three projections as the kernels read them, or null when one is not kernel-readable.
    public (IKernelProjection Gate, IKernelProjection Up, IKernelProjection Down)? KernelProjections =>
        _gate is IKernelProjection g && _up is IKernelProjection u && _down is IKernelProjection d && g.KernelReadable && u.KernelReadable && d.KernelReadable ? (g, u, d) : null;

    public FeedForward(long hidden, long inner, WeightFormat format = WeightFormat.F32, bool bias = false) : base(nameof(FeedForward))
    {
        _gate = Projection.Create(hidden, inner, format, bias);
        _up = Projection.Create(hidden, inner, format, bias);
        _down = Projection.Create(inner, hidden, format, bias);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        if (KernelProjections is var (g, u, d) && KernelLinear.Applies(x, g.NeedsGrad || u.NeedsGrad || d.NeedsGrad))
            return KernelForward(x, g, u, d);
        using var scope = NewDisposeScope();
        var h = nn.functional.silu(_gate.forward(x)) * _up.forward(x);   // [N, inner]
        return _down.forward(h).MoveToOuterDisposeScope();               // [N, hidden]
    }

    /// Decoding: the whole SwiGLU in one fused kernel call, reading the weights as stored.
    private static unsafe Tensor KernelForward(Tensor x, IKernelProjection gate, IKernelProjection up, IKernelProjection down)
    {
        using var scope = NewDisposeScope();
        var input = x.contiguous();
        var (g, u, d) = (gate.View(), up.View(), down.View());
        var rows = (int)(input.NumberOfElements / g.InFeatures);
        var y = zeros([.. x.shape[..^1], d.OutFeatures]);
        var biases = new KernelBiases(gate.Bias, up.Bias, down.Bias);
        SwiGlu.Run([new SwiGluCall(g, u, d, (float*)TensorMemory.Pointer(input), rows, (float*)TensorMemory.Pointer(y), 1f,
            gateBias: biases[0], upBias: biases[1], downBias: biases[2])]);
        return y.MoveToOuterDisposeScope();
    }
}
