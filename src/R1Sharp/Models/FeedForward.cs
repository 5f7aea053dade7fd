using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// SwiGLU feed-forward (HF: DeepseekV3MLP, Qwen2MLP, LlamaMLP): dense layers, routed and shared experts.
public sealed class FeedForward : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "gate_proj")] private readonly nn.Module<Tensor, Tensor> _gate;
    [ComponentName(Name = "up_proj")] private readonly nn.Module<Tensor, Tensor> _up;
    [ComponentName(Name = "down_proj")] private readonly nn.Module<Tensor, Tensor> _down;

    public FeedForward(long hidden, long inner, WeightFormat format = WeightFormat.F32, bool bias = false) : base(nameof(FeedForward))
    {
        _gate = Projection.Create(hidden, inner, format, bias);
        _up = Projection.Create(hidden, inner, format, bias);
        _down = Projection.Create(inner, hidden, format, bias);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = nn.functional.silu(_gate.forward(x)) * _up.forward(x);   // [N, inner]
        return _down.forward(h).MoveToOuterDisposeScope();               // [N, hidden]
    }
}
