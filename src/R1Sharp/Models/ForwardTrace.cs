using static TorchSharp.torch;

namespace R1Sharp.Models;

/// Optional record of intermediate values (hidden states, routing), for tests and `inspect`-style tools.
public sealed class ForwardTrace : IDisposable
{
    public List<Tensor> Hidden { get; } = [];
    public List<(int Layer, Tensor Experts, Tensor Weights)> Routing { get; } = [];

    internal void AddHidden(Tensor h) => Hidden.Add(h.detach().clone().DetachFromDisposeScope());

    internal void AddRouting(int layer, Tensor experts, Tensor weights) =>
        Routing.Add((layer, experts.clone().DetachFromDisposeScope(), weights.detach().clone().DetachFromDisposeScope()));

    public void Dispose()
    {
        foreach (var h in Hidden) h.Dispose();
        foreach (var (_, e, w) in Routing) { e.Dispose(); w.Dispose(); }
    }
}
