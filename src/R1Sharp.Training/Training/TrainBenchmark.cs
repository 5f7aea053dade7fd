using System.Diagnostics;
using System.Text.Json.Nodes;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Training.Training;

/// `bench train`: a few real training steps of a config, timed, against the float32 matmul rate of
/// this machine measured in the same process. MFU = achieved model FLOP/s / measured matmul FLOP/s.
public static class TrainBenchmark
{
    public sealed record Result(double TokensPerSecond, double FlopsPerToken, double AchievedFlops, double MatmulFlops, double Mfu,
        long ActiveMatmulParameters, int TokensPerStep, int MeasuredSteps, long TrainedParameters);

    public static Result Run(TrainConfig config, JsonObject resolved, string configDir, int steps, int warmup = 2)
    {
        var runDir = Path.Combine(Path.GetTempPath(), "r1sharp-bench-train-" + Guid.NewGuid().ToString("N"));
        var quick = config with
        {
            Steps = warmup + steps, Stages = null, EvalEvery = int.MaxValue / 2, EvalBatches = 1, CheckpointEvery = int.MaxValue / 2,
            PlotEvery = int.MaxValue / 2, Data = config.Data.ToDictionary(p => p.Key, p => p.Value with { Examples = Math.Min(p.Value.Examples, 2000) }),
        };
        try
        {
            using var trainer = new Trainer(quick, resolved, configDir, runDir);
            var times = new List<double>();
            trainer.Run(false);
            foreach (var line in File.ReadLines(Path.Combine(runDir, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject()))
                if (line["tokens_per_s"] is { } rate && MetricsHistory.Num(line["step"]!) > warmup) times.Add(MetricsHistory.Num(rate));
            times.Sort();
            var tokensPerSecond = times[times.Count / 2];
            var (flopsPerToken, active) = FlopsPerToken(trainer.Model, config.SeqLen);
            var matmul = MatmulFlops();
            var achieved = tokensPerSecond * flopsPerToken;
            return new Result(tokensPerSecond, flopsPerToken, achieved, matmul, achieved / matmul, active, config.BatchSize * config.SeqLen * config.GradAccum, times.Count,
                trainer.TrainedParameters);
        }
        finally
        {
            if (Directory.Exists(runDir)) Directory.Delete(runDir, true);
        }
    }

    /// Training FLOPs per token: 6 x (matmul weights a token passes through: attention, dense and
    /// shared MLPs, k of E routed experts, router, lm_head) — 4 x for frozen weights (LoRA), whose
    /// backward computes no weight gradient — + 6 x layers x heads x (qk + v dims) x T for attention
    /// scores and values (forward 2x, backward 4x).
    public static (double Flops, long ActiveParameters) FlopsPerToken(CausalLM model, int seqLen)
    {
        var c = model.Config;
        var moe = (model as DeepSeekForCausalLM)?.DeepSeek;
        double active = 0, flops = 0;
        foreach (var (name, p) in model.named_parameters())
        {
            if (p.dim() != 2) continue;
            var tiedHead = name.Contains("embed_tokens");
            if (tiedHead && !c.TieWordEmbeddings) continue;
            var layer = name.StartsWith("model.layers.") ? int.Parse(name.Split('.')[2]) : -1;
            if (layer >= c.NumHiddenLayers) continue;   // MTP modules
            var n = moe is not null && name.Contains(".mlp.experts.") ? (double)p.NumberOfElements * moe.NumExpertsPerTok!.Value / moe.RoutedExperts : p.NumberOfElements;
            active += n;
            flops += (p.requires_grad ? 6 : 4) * n;
        }
        var headDims = moe is not null ? moe.QkHeadDim + moe.VHeadDim : 2 * ((DenseConfig)c).HeadDim;
        var attention = 6.0 * c.NumHiddenLayers * c.NumAttentionHeads * headDims * seqLen;
        return (flops + attention, (long)active);
    }

    /// float32 matmul FLOP/s of this process: 1024x1024 products for about a second.
    public static double MatmulFlops()
    {
        using var noGrad = no_grad();
        using var a = randn(1024, 1024);
        using var b = randn(1024, 1024);
        for (int i = 0; i < 3; i++) { using var warm = a.matmul(b); }
        int count = 0;
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed.TotalSeconds < 1.0)
        {
            using var c = a.matmul(b);
            count++;
        }
        return count * 2.0 * 1024 * 1024 * 1024 / watch.Elapsed.TotalSeconds;
    }
}
