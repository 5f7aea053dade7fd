using System.Runtime.Intrinsics;
using R1Sharp.Kernels;
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
        if (KernelLinear.Applies(x, weight.requires_grad) && x.dtype == ScalarType.Float32 && RouteFew(x) is { } few) return few;
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

    /// The same for a few tokens (decoding) over C# arrays, where libtorch's twenty small ops per call cost
    /// more than the arithmetic: the logits by the kernels, then per token the scores, the group limit and
    /// the top k. Null when a logit is not finite (libtorch's path then decides, as it orders NaN).
    private unsafe Routing? RouteFew(Tensor x)
    {
        using var scope = NewDisposeScope();
        int n = (int)x.shape[0], e = _config.RoutedExperts, k = _config.NumExpertsPerTok!.Value, groups = _config.ExpertGroups;
        var input = x.contiguous();
        var logits = empty(n, e);
        var scores = empty(n, e);
        var experts = empty(n, k, dtype: ScalarType.Int64);
        var weights = empty(n, k);
        float* l = (float*)TensorMemory.Pointer(logits), sc = (float*)TensorMemory.Pointer(scores), w = (float*)TensorMemory.Pointer(weights);
        long* ids = (long*)TensorMemory.Pointer(experts);
        FewRowMatmul.Run(KernelLinear.View(weight), (float*)TensorMemory.Pointer(input), n, null, l);
        var bias = e_score_correction_bias is null ? null : (float*)TensorMemory.Pointer(e_score_correction_bias);
        Span<float> work = e + groups <= 4096 ? stackalloc float[e + groups] : new float[e + groups];   // a config may hold 100,000 experts
        fixed (float* choice = work)
            for (int t = 0; t < n; t++)
                if (!RouteToken(l + (long)t * e, sc + (long)t * e, bias, choice, choice + e, ids + t * k, w + t * k)) return null;
        return new Routing(weights.MoveToOuterDisposeScope(), experts.MoveToOuterDisposeScope(), logits.MoveToOuterDisposeScope(), scores.MoveToOuterDisposeScope());
    }

    /// One token: scores from its logits, the group limit on the biased scores, the top k, their weights.
    private unsafe bool RouteToken(float* logit, float* score, float* bias, float* choice, float* groupScore, long* ids, float* w)
    {
        int e = _config.RoutedExperts, k = _config.NumExpertsPerTok!.Value, groups = _config.ExpertGroups, perGroup = e / groups;
        for (int j = 0; j < e; j++) if (!float.IsFinite(logit[j])) return false;
        if (_config.ScoringFunc == "softmax") Softmax(logit, score, e); else Sigmoid(logit, score, e);
        for (int j = 0; j < e; j++) choice[j] = bias is null ? score[j] : score[j] + bias[j];
        if (groups > 1)
        {
            for (int g = 0; g < groups; g++) groupScore[g] = bias is null ? Max(choice + g * perGroup, perGroup) : TopTwoSum(choice + g * perGroup, perGroup);
            for (int kept = 0; kept < _config.GroupsPerToken; kept++) groupScore[ArgMax(groupScore, groups)] = float.NaN;   // NaN: kept
            for (int g = 0; g < groups; g++)
                if (!float.IsNaN(groupScore[g])) new Span<float>(choice + g * perGroup, perGroup).Fill(float.NegativeInfinity);
        }
        double total = 0;
        for (int j = 0; j < k; j++)
        {
            var best = ArgMax(choice, e);
            choice[best] = float.NaN;   // taken: ArgMax skips it
            ids[j] = best;
            w[j] = score[best];
            total += score[best];
        }
        var factor = (float)_config.RoutedScalingFactor;
        for (int j = 0; j < k; j++) w[j] = _config.NormTopkProb ? (float)(w[j] / total) * factor : w[j] * factor;
        return true;
    }

    /// The first index of the largest value, NaN (taken) skipped; -inf counts, so one is always found.
    private static unsafe int ArgMax(float* values, int count)
    {
        int best = -1;
        for (int i = 0; i < count; i++)
            if (!float.IsNaN(values[i]) && (best < 0 || values[i] > values[best])) best = i;
        return best;
    }

    private static unsafe float Max(float* values, int count)
    {
        var max = float.NegativeInfinity;
        for (int i = 0; i < count; i++) max = MathF.Max(max, values[i]);
        return max;
    }

    private static unsafe float TopTwoSum(float* values, int count)
    {
        float first = float.NegativeInfinity, second = float.NegativeInfinity;
        for (int i = 0; i < count; i++)
            if (values[i] > first) (first, second) = (values[i], first);
            else if (values[i] > second) second = values[i];
        return first + second;
    }

    private static unsafe void Sigmoid(float* x, float* y, int count)
    {
        int i = 0;
        for (; i + 8 <= count; i += 8) Vector256.Store(Vector256<float>.One / (Vector256<float>.One + Vector256.Exp(-Vector256.Load(x + i))), y + i);
        for (; i < count; i++) y[i] = 1 / (1 + MathF.Exp(-x[i]));
    }

    private static unsafe void Softmax(float* x, float* y, int count)
    {
        var max = Max(x, count);
        double sum = 0;
        for (int i = 0; i < count; i++) sum += y[i] = MathF.Exp(x[i] - max);
        for (int i = 0; i < count; i++) y[i] = (float)(y[i] / sum);
    }
}
