using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// SwiGLU feed-forward (HF: DeepseekV3MLP): dense layers, routed experts and shared experts.
public sealed class FeedForward : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "gate_proj")] private readonly Linear _gate;
    [ComponentName(Name = "up_proj")] private readonly Linear _up;
    [ComponentName(Name = "down_proj")] private readonly Linear _down;

    public FeedForward(long hidden, long inner) : base(nameof(FeedForward))
    {
        _gate = nn.Linear(hidden, inner, hasBias: false);
        _up = nn.Linear(hidden, inner, hasBias: false);
        _down = nn.Linear(inner, hidden, hasBias: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = nn.functional.silu(_gate.forward(x)) * _up.forward(x);   // [N, inner]
        return _down.forward(h).MoveToOuterDisposeScope();               // [N, hidden]
    }
}
