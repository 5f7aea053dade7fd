using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Training.Training;

/// Expert-balance terms of the training objective and DeepSeek-V3's auxiliary-loss-free balancing.
public static class MoeBalance
{
    /// DeepSeek-V2's sequence-wise balance loss, summed over MoE layers: per sequence,
    /// sum_i f_i * P_i with f_i = E/(k*T) * tokens routed to expert i and P_i = mean over tokens of the
    /// normalised score of expert i. Equals 1 at perfect balance (with uniform scores).
    public static Tensor SequenceAuxLoss(IEnumerable<Routing> layers, long batch, long length, int experts, int k)
    {
        using var scope = NewDisposeScope();
        var total = zeros(1);
        foreach (var r in layers)
        {
            var scores = r.Scores.view(batch, length, experts);
            var normalised = scores / scores.sum(-1, keepdim: true);
            var probability = normalised.mean([1L]);                                                   // [B, E]
            var counts = zeros(batch, experts).scatter_add_(1, r.Experts.view(batch, length * k), ones(batch, length * k));
            var fraction = counts * ((double)experts / (k * length));                                   // [B, E], no gradient
            total = total + (fraction * probability).sum(-1).mean();
        }
        return total.squeeze().MoveToOuterDisposeScope();
    }

    /// Router z-loss (ST-MoE): mean over tokens of logsumexp(router logits)^2, summed over layers.
    public static Tensor ZLoss(IEnumerable<Routing> layers)
    {
        using var scope = NewDisposeScope();
        var total = zeros(1);
        foreach (var r in layers) total = total + r.Logits.logsumexp(-1).pow(2).mean();
        return total.squeeze().MoveToOuterDisposeScope();
    }

    /// Fraction of the token-slots each expert received: [E], sums to 1.
    public static Tensor Load(Routing routing, int experts)
    {
        using var scope = NewDisposeScope();
        var counts = routing.Experts.flatten().bincount(null, experts).to_type(ScalarType.Float32);
        return (counts / counts.sum()).MoveToOuterDisposeScope();
    }

    /// max load / mean load (1 = perfectly balanced).
    public static double Imbalance(Tensor load) => load.max().item<float>() * load.shape[0];

    /// Auxiliary-loss-free balancing (DeepSeek-V3): after each step, raise the bias of under-loaded
    /// experts and lower that of over-loaded ones by `speed` (b_i += speed * sign(mean load - load_i)).
    public static void UpdateCorrectionBias(MoeGate gate, Tensor load, double speed)
    {
        if (gate.CorrectionBias is not { } bias) return;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        bias.add_((load.mean() - load).sign() * speed);
    }

    /// Rescales each routed expert so its weight norm equals the layer's mean expert norm, keeping any
    /// one expert from growing to dominate the layer's output.
    public static void RenormalizeExperts(MoeLayer layer)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var experts = layer.Experts.Select(e => e.parameters().ToList()).ToList();
        var norms = experts.Select(ps => ps.Select(p => p.pow(2).sum()).Aggregate((a, b) => a + b).sqrt()).ToList();
        var mean = stack(norms).mean();
        for (int e = 0; e < experts.Count; e++)
        {
            var factor = (mean / norms[e].clamp(min: 1e-12)).pow(1.0 / 3);   // three matrices share the rescale
            foreach (var p in experts[e]) p.mul_(factor);
        }
    }

    /// Symmetric InfoNCE between two views' pooled representations [B, H]: matching rows are positives.
    public static Tensor InfoNce(Tensor first, Tensor second, double temperature)
    {
        using var scope = NewDisposeScope();
        var a = nn.functional.normalize(first, dim: -1);
        var b = nn.functional.normalize(second, dim: -1);
        var logits = a.matmul(b.t()) / temperature;
        var targets = arange(first.shape[0], device: first.device);
        var loss = (nn.functional.cross_entropy(logits, targets) + nn.functional.cross_entropy(logits.t(), targets)) / 2;
        return loss.MoveToOuterDisposeScope();
    }
}
