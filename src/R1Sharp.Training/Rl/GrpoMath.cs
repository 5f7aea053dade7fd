using static TorchSharp.torch;

namespace R1Sharp.Training.Rl;

/// The arithmetic of GRPO, kept separate so each piece can be tested.
public static class GrpoMath
{
    /// rewards [P, G] -> advantages [P, G].
    /// group: (r - group mean) / (group std + eps)  (DeepSeekMath / R1);
    /// batch: (r - group mean) / (batch std + eps)  (REINFORCE++-style scaling);
    /// none:  r - group mean                        (Dr. GRPO: no std scaling).
    public static Tensor Advantages(Tensor rewards, string scaling, double eps = 1e-4)
    {
        using var scope = NewDisposeScope();
        var centred = rewards - rewards.mean([1L], keepdim: true);
        var result = scaling switch
        {
            "group" => centred / (rewards.std(1, keepdim: true) + eps),
            "batch" => centred / (rewards.std() + eps),
            "none" => centred,
            _ => throw new R1SharpException($"reward_scaling '{scaling}' is not supported (group, batch, none)"),
        };
        return result.MoveToOuterDisposeScope();
    }

    /// Log-probabilities of the given next tokens: logits [N, T, V], targets [N, T] -> [N, T].
    public static Tensor TokenLogProbs(Tensor logits, Tensor targets)
    {
        using var scope = NewDisposeScope();
        return logits.log_softmax(-1).gather(2, targets.unsqueeze(-1)).squeeze(-1).MoveToOuterDisposeScope();
    }

    /// The k3 estimator of KL(policy || reference) per token: exp(ref - new) - (ref - new) - 1 (>= 0, 0 when equal).
    public static Tensor KlK3(Tensor logProbs, Tensor refLogProbs)
    {
        using var scope = NewDisposeScope();
        var diff = refLogProbs - logProbs;
        return (diff.exp() - diff - 1).MoveToOuterDisposeScope();
    }

    public sealed record LossParts(Tensor Loss, double Kl, double ClipFraction);

    /// The clipped surrogate with a KL penalty, over completion tokens (mask [N, T]).
    /// advantages [N]; aggregation: grpo (token mean per sequence, then mean), bnpo and dapo (mean over
    /// all tokens), dr_grpo (sum over tokens / (N x maxTokens)). level: token (one ratio per token), or
    /// sequence (GSPO: one ratio per sequence, the exp of its mean token log-ratio, clipped as a whole).
    public static LossParts PolicyLoss(Tensor logProbs, Tensor oldLogProbs, Tensor refLogProbs, Tensor advantages, Tensor mask,
        double epsilon, double epsilonHigh, double beta, string aggregation, int maxTokens, string level = "token")
    {
        using var scope = NewDisposeScope();
        var logRatio = logProbs - oldLogProbs;
        if (level == "sequence") logRatio = ((logRatio * mask).sum(1, keepdim: true) / mask.sum(1, keepdim: true).clamp(min: 1)).expand_as(logProbs);
        else if (level != "token") throw new R1SharpException($"importance_sampling_level '{level}' is not supported (token, sequence)");
        var ratio = logRatio.exp();
        var a = advantages.unsqueeze(1);
        var clipped = ratio.clamp(1 - epsilon, 1 + epsilonHigh);
        var perToken = -minimum(ratio * a, clipped * a);
        var kl = KlK3(logProbs, refLogProbs);
        if (beta > 0) perToken = perToken + kl * beta;
        var tokens = mask.sum().clamp(min: 1);
        var loss = aggregation switch
        {
            "grpo" => ((perToken * mask).sum(1) / mask.sum(1).clamp(min: 1)).mean(),
            "bnpo" or "dapo" => (perToken * mask).sum() / tokens,
            "dr_grpo" => (perToken * mask).sum() / (mask.shape[0] * (double)maxTokens),
            _ => throw new R1SharpException($"loss_aggregation '{aggregation}' is not supported (grpo, bnpo, dapo, dr_grpo)"),
        };
        var wasClipped = ((ratio < 1 - epsilon) & (a < 0)) | ((ratio > 1 + epsilonHigh) & (a > 0));
        var clipFraction = ((wasClipped.to_type(ScalarType.Float32) * mask).sum() / tokens).item<float>();
        var meanKl = ((kl * mask).sum() / tokens).item<float>();
        return new LossParts(loss.MoveToOuterDisposeScope(), meanKl, clipFraction);
    }

    /// Wilson 95% interval for a proportion of `successes` in `n`.
    public static (double Low, double High) Wilson(int successes, int n, double z = 1.959964)
    {
        if (n == 0) return (0, 1);
        double p = (double)successes / n, denominator = 1 + z * z / n;
        var centre = (p + z * z / (2 * n)) / denominator;
        var half = z * Math.Sqrt(p * (1 - p) / n + z * z / (4.0 * n * n)) / denominator;
        return (Math.Max(0, centre - half), Math.Min(1, centre + half));
    }

    /// Unbiased pass@k from n samples with c correct (Chen et al. 2021): 1 - C(n-c, k) / C(n, k).
    public static double PassAtK(int n, int c, int k)
    {
        if (n - c < k) return 1.0;
        double product = 1;
        for (int i = n - c + 1; i <= n; i++) product *= 1.0 - (double)k / i;
        return 1 - product;
    }
}
