using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Checkpoints;

/// Copies a checkpoint into a model's parameters, one tensor at a time, converting to each parameter's
/// dtype (FP8 blocks dequantized). Strict: every mismatch is listed by name before anything is copied.
public static class WeightLoader
{
    private const string ScaleSuffix = "_scale_inv";

    public static void Load(CausalLM model, Checkpoint checkpoint)
    {
        var targets = model.state_dict();
        var (blockRows, blockCols) = BlockSize(model.Config);
        var problems = new List<string>();
        var missing = targets.Keys.Where(n => !checkpoint.Contains(n)).ToList();
        var consumed = new HashSet<string>();
        var misShaped = new List<string>();
        foreach (var (name, target) in targets)
        {
            if (!checkpoint.Contains(name)) continue;
            var entry = checkpoint.Entry(name);
            if (!entry.Shape.SequenceEqual(target.shape))
                misShaped.Add($"{name} (checkpoint {SafeTensorsFile.Format(entry.Shape)}, model {SafeTensorsFile.Format(target.shape)})");
            if (entry.DType != "F8_E4M3") continue;
            var scaleName = name + ScaleSuffix;
            consumed.Add(scaleName);
            if (entry.Shape.Length != 2)
                problems.Add($"FP8 tensor {name} must be 2-D");
            else if (!checkpoint.Contains(scaleName))
                problems.Add($"FP8 tensor {name} has no scale tensor {scaleName}");
            else
            {
                var expected = Fp8E4M3.ScaleShape(entry.Shape, blockRows, blockCols);
                var scale = checkpoint.Entry(scaleName);
                if (!scale.Shape.SequenceEqual(expected))
                    problems.Add($"scale tensor {scaleName} has shape {SafeTensorsFile.Format(scale.Shape)}, expected {SafeTensorsFile.Format(expected)} for {blockRows}x{blockCols} blocks");
            }
        }
        var tied = model.Config.TieWordEmbeddings ? new HashSet<string> { "lm_head.weight" } : [];
        var unexpected = checkpoint.Names.Where(n => !targets.ContainsKey(n) && !consumed.Contains(n) && !tied.Contains(n)).Order().ToList();
        if (missing.Count > 0) problems.Add("missing: " + List(missing));
        if (unexpected.Count > 0) problems.Add("unexpected: " + List(unexpected));
        if (misShaped.Count > 0) problems.Add("mis-shaped: " + List(misShaped));
        if (problems.Count > 0) throw new R1SharpException("checkpoint does not match the model: " + string.Join("; ", problems));

        using var noGrad = no_grad();
        foreach (var (name, target) in targets)
        {
            using var scope = NewDisposeScope();
            var entry = checkpoint.Entry(name);
            var source = checkpoint.Read(name);
            if (entry.DType == "F8_E4M3")
                source = Fp8E4M3.Dequantize(source, checkpoint.Read(name + ScaleSuffix), blockRows, blockCols);
            target.copy_(source.to_type(target.dtype));
        }
    }

    private static (int Rows, int Cols) BlockSize(ModelConfig config) =>
        config.QuantizationConfig?.WeightBlockSize is [var r, var c] ? (r, c) : (128, 128);

    private static string List(List<string> names) =>
        names.Count <= 12 ? string.Join(", ", names) : string.Join(", ", names.Take(12)) + $", ... ({names.Count} in all)";
}
