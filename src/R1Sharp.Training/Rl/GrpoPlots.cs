using System.Text.Json.Nodes;
using R1Sharp.Training.Training;

namespace R1Sharp.Training.Rl;

/// PNG plots of a GRPO run from its metrics.jsonl.
public static class GrpoPlots
{
    public static void Write(string dir, string metricsPath)
    {
        if (!File.Exists(metricsPath)) return;
        var lines = File.ReadLines(metricsPath).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        var train = lines.Where(l => l["reward"] is not null).ToList();
        var eval = lines.Where(l => l["eval_pass1"] is not null).ToList();
        if (train.Count == 0) return;
        Directory.CreateDirectory(dir);
        List<double> X(List<JsonObject> ls) => ls.Select(l => MetricsHistory.Num(l["step"]!)).ToList();
        List<double> Y(List<JsonObject> ls, string key) => ls.Select(l => MetricsHistory.Num(l[key]!)).ToList();
        TrainingPlots.Line(Path.Combine(dir, "reward.png"), "Mean reward and training accuracy", "value",
            ("mean reward", X(train), Smooth(Y(train, "reward"))), ("accuracy (samples)", X(train), Smooth(Y(train, "accuracy"))),
            ("format rate", X(train), Smooth(Y(train, "format"))), ("held-out pass@1 (T 0.6)", X(eval), Y(eval, "eval_pass1")), ("held-out greedy", X(eval), Y(eval, "eval_greedy")));
        TrainingPlots.Line(Path.Combine(dir, "length.png"), "Response length (tokens)", "tokens", ("mean length", X(train), Smooth(Y(train, "length"))));
        TrainingPlots.Line(Path.Combine(dir, "kl.png"), "KL to the reference (k3)", "KL", ("KL", X(train), Y(train, "kl")));
        TrainingPlots.Line(Path.Combine(dir, "clip_and_spread.png"), "Clip fraction and groups with zero reward spread", "fraction",
            ("clip fraction", X(train), Y(train, "clip_fraction")), ("zero-spread groups", X(train), Smooth(Y(train, "zero_std_fraction"))));
    }

    /// Moving average over 10 steps, for noisy per-step figures.
    private static List<double> Smooth(List<double> values, int window = 10) =>
        values.Select((_, i) => values.Skip(Math.Max(0, i - window + 1)).Take(Math.Min(window, i + 1)).Average()).ToList();
}
