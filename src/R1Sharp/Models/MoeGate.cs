using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// What the router decided for N tokens: final weights and expert ids [N, k], and the raw logits and
/// unbiased scores [N, E] that the balance losses need.
public sealed record Routing(Tensor Weights, Tensor Experts, Tensor Logits, Tensor Scores);

/// The router of DeepSeekMoE (HF: MoEGate; official: Gate).
public sealed class MoeGate : nn.Module
{
    private readonly Parameter weight;
    private readonly Parameter? e_score_correction_bias;
    private readonly DeepSeekConfig _config;

    public MoeGate(DeepSeekConfig config) : base(nameof(MoeGate))
    {
        _config = config;
        weight = new Parameter(empty(config.RoutedExperts, config.HiddenSize, device: ModelDevice.Current));
        if (config.HasCorrectionBias)
            e_score_correction_bias = new Parameter(zeros(config.RoutedExperts, dtype: ScalarType.Float32, device: ModelDevice.Current), requires_grad: false);
        RegisterComponents();
    }

    public Parameter Weight => weight;
    public Parameter? CorrectionBias => e_score_correction_bias;

    public Routing Route(Tensor x)
    {
        using var scope = NewDisposeScope();
        int n = (int)x.shape[0], groups = _config.ExpertGroups, k = _config.NumExpertsPerTok!.Value;
        var logits = nn.functional.linear(x.to_type(ScalarType.Float32), weight.to_type(ScalarType.Float32));
        var scores = _config.ScoringFunc == "softmax" ? logits.softmax(-1) : logits.sigmoid();   // [N, E]
        // The correction bias only chooses experts; the weights come from the unbiased scores.
        var choice = e_score_correction_bias is null ? scores : scores + e_score_correction_bias;
        if (groups > 1)
        {
            var grouped = choice.view(n, groups, -1);                                             // [N, G, E/G]
            var groupScores = e_score_correction_bias is null
                ? grouped.amax([-1L])
                : grouped.topk(2, dim: -1).values.sum(-1);                                        // [N, G]
            var keep = groupScores.topk(_config.GroupsPerToken, dim: -1).indexes;
            var dropped = ones(n, groups, dtype: ScalarType.Bool, device: x.device).scatter_(1, keep, zeros_like(keep, dtype: ScalarType.Bool));
            choice = grouped.masked_fill(dropped.unsqueeze(-1), double.NegativeInfinity).flatten(1);
        }
        var experts = choice.topk(k, dim: -1).indexes;                                           // [N, k]
        var weights = scores.gather(1, experts);
        if (_config.NormTopkProb) weights = weights / weights.sum(-1, keepdim: true);
        weights = (weights * _config.RoutedScalingFactor).to_type(x.dtype);
        return new Routing(weights.MoveToOuterDisposeScope(), experts.MoveToOuterDisposeScope(),
            logits.MoveToOuterDisposeScope(), scores.MoveToOuterDisposeScope());
    }
}
