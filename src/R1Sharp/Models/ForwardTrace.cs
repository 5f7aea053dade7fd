using static TorchSharp.torch;

namespace R1Sharp.Models;

/// Optional record of intermediate values: hidden states after the embedding, each block and the final
/// norm, and each MoE layer's routing. By default copies are detached (for tests and tools); with
/// KeepGraph the tensors stay in the autograd graph so training losses can use them.
public sealed class ForwardTrace : IDisposable
{
    public bool KeepGraph { get; init; }
    public List<Tensor> Hidden { get; } = [];
    public List<(int Layer, Tensor Experts, Tensor Weights)> Routing { get; } = [];
    public List<(int Layer, Routing Routing)> Router { get; } = [];

    internal void AddHidden(Tensor h) => Hidden.Add(KeepGraph ? h.alias().DetachFromDisposeScope() : h.detach().clone().DetachFromDisposeScope());

    internal void AddRouting(int layer, Routing routing)
    {
        Routing.Add((layer, routing.Experts.clone().DetachFromDisposeScope(), routing.Weights.detach().clone().DetachFromDisposeScope()));
        if (KeepGraph)
            Router.Add((layer, new Routing(routing.Weights.alias().DetachFromDisposeScope(), routing.Experts.alias().DetachFromDisposeScope(),
                routing.Logits.alias().DetachFromDisposeScope(), routing.Scores.alias().DetachFromDisposeScope())));
    }

    public void Dispose()
    {
        foreach (var h in Hidden) h.Dispose();
        foreach (var (_, e, w) in Routing) { e.Dispose(); w.Dispose(); }
        foreach (var (_, r) in Router) { r.Weights.Dispose(); r.Experts.Dispose(); r.Logits.Dispose(); r.Scores.Dispose(); }
    }
}
