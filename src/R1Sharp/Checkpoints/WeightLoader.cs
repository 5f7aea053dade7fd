using R1Sharp.Models;
using R1Sharp.Quantization;
using static TorchSharp.torch;

namespace R1Sharp.Checkpoints;

/// Copies a checkpoint into a model one tensor at a time. Each stored weight is decoded to float32
/// (FP8 blocks, INT8 channels and INT4 groups dequantized) unless the model holds it in that same
/// format, in which case the bytes and scales are copied as they are. Strict: every missing,
/// unexpected and mis-shaped tensor is listed by name before anything is copied.
public static class WeightLoader
{
    private const string Fp8Scale = "_scale_inv";
    private const string Int8Scale = "_scale";   // INT8 and INT4

    private sealed record Plan(Dictionary<string, IStoredWeight> Quantized, Dictionary<string, Tensor> Targets, HashSet<string> Consumed, int BlockRows, int BlockCols);

    public static void Load(CausalLM model, Checkpoint checkpoint)
    {
        var (quantized, targets, consumed, blockRows, blockCols) = Check(model, checkpoint);
        using var noGrad = no_grad();
        foreach (var (name, target) in targets)
        {
            using var scope = NewDisposeScope();
            var dtype = checkpoint.Entry(name).DType;
            if (quantized.TryGetValue(name, out var layer))
            {
                var sameFp8 = layer.Format == WeightFormat.Fp8 && dtype == "F8_E4M3" && (blockRows, blockCols) == (QuantizedLinear.Block, QuantizedLinear.Block);
                var sameScaled = layer.Format is WeightFormat.Int8 or WeightFormat.Int4 && consumed.Contains(name + Int8Scale)
                    && IsInt4(checkpoint, model.Config, name) == (layer.Format == WeightFormat.Int4);
                if (sameFp8) layer.AssignRaw(checkpoint.Read(name), checkpoint.Read(name + Fp8Scale));
                else if (sameScaled) layer.AssignRaw(checkpoint.Read(name), checkpoint.Read(name + Int8Scale));
                else layer.Assign(ReadFloat(checkpoint, model.Config, name, layer.LogicalShape, consumed, blockRows, blockCols));
            }
            else
            {
                target.copy_(ReadFloat(checkpoint, model.Config, name, target.shape, consumed, blockRows, blockCols).to_type(target.dtype));
            }
        }
    }

    /// Compares names and shapes only, so it works on a model built on the meta device: a folder whose
    /// config does not match its weights is refused before any memory is taken.
    private static Plan Check(CausalLM model, Checkpoint checkpoint)
    {
        var quantized = model.named_modules().Where(m => m.module is IStoredWeight)
            .ToDictionary(m => m.name + ".weight", m => (IStoredWeight)m.module);
        var targets = model.state_dict().Where(p => !IsScaleOf(p.Key, quantized)).ToDictionary(p => p.Key, p => p.Value);
        var (blockRows, blockCols) = BlockSize(model.Config);

        var problems = new List<string>();
        var consumed = new HashSet<string>();
        var misShaped = new List<string>();
        foreach (var (name, target) in targets)
        {
            if (!checkpoint.Contains(name)) continue;
            var entry = checkpoint.Entry(name);
            var logical = quantized.TryGetValue(name, out var layer) ? layer.LogicalShape : target.shape;
            var int4 = IsInt4(checkpoint, model.Config, name);
            var expected = int4 && logical.Length == 2 ? Int4Group.PackedShape(logical[0], logical[1]) : logical;
            if (!entry.Shape.SequenceEqual(expected))
                misShaped.Add($"{name} (checkpoint {SafeTensorsFile.Format(entry.Shape)}, model {SafeTensorsFile.Format(expected)})");
            if (entry.DType == "F8_E4M3")
                CheckScale(checkpoint, name, name + Fp8Scale, entry.Shape.Length == 2 ? Fp8E4M3.ScaleShape(entry.Shape, blockRows, blockCols) : null, "FP8", problems, consumed);
            else if (entry.DType == "I8" && model.Config.QuantizationConfig?.QuantMethod is "int8" or "int4")
                CheckScale(checkpoint, name, name + Int8Scale, entry.Shape.Length == 2 ? [entry.Shape[0]] : null, "INT8", problems, consumed);
            else if (int4)
                CheckScale(checkpoint, name, name + Int8Scale, logical.Length == 2 ? Int4Group.ScaleShape(logical[0], logical[1]) : null, "INT4", problems, consumed);
        }
        var missing = targets.Keys.Where(n => !checkpoint.Contains(n)).ToList();
        var tied = model.Config.TieWordEmbeddings ? "lm_head.weight" : null;
        // Older transformers versions saved the rope buffer; it is recomputed from the config, as transformers does.
        var unexpected = checkpoint.Names.Where(n => !targets.ContainsKey(n) && !consumed.Contains(n) && n != tied && !n.EndsWith(".rotary_emb.inv_freq"))
            .Order().ToList();
        if (missing.Count > 0) problems.Add("missing: " + List(missing));
        if (unexpected.Count > 0) problems.Add("unexpected: " + List(unexpected));
        if (misShaped.Count > 0) problems.Add("mis-shaped: " + List(misShaped));
        if (problems.Count > 0) throw new R1SharpException("checkpoint does not match the model: " + string.Join("; ", problems));
        return new Plan(quantized, targets, consumed, blockRows, blockCols);
    }

    /// Checks a checkpoint against a model that exists only as names and shapes (the meta device).
    public static void CheckShapes(CausalLM model, Checkpoint checkpoint) => Check(model, checkpoint);

    private static Tensor ReadFloat(Checkpoint checkpoint, ModelConfig config, string name, long[] logical, HashSet<string> consumed, int blockRows, int blockCols)
    {
        var stored = checkpoint.Read(name);
        if (checkpoint.Entry(name).DType == "F8_E4M3") return Fp8E4M3.Dequantize(stored, checkpoint.Read(name + Fp8Scale), blockRows, blockCols);
        if (IsInt4(checkpoint, config, name)) return Int4Group.Dequantize(stored, checkpoint.Read(name + Int8Scale), logical[1]);
        if (consumed.Contains(name + Int8Scale)) return Int8Channel.Dequantize(stored, checkpoint.Read(name + Int8Scale));
        return stored;
    }

    /// R1Sharp's INT4 layout: packed U8 weights of a checkpoint whose quant_method is int4.
    private static bool IsInt4(Checkpoint checkpoint, ModelConfig config, string name) =>
        config.QuantizationConfig?.QuantMethod == "int4" && checkpoint.Contains(name) && checkpoint.Entry(name).DType == "U8" && name.EndsWith(".weight");

    private static void CheckScale(Checkpoint checkpoint, string name, string scaleName, long[]? expected, string kind, List<string> problems, HashSet<string> consumed)
    {
        consumed.Add(scaleName);
        if (expected is null) problems.Add($"{kind} tensor {name} must be 2-D");
        else if (!checkpoint.Contains(scaleName)) problems.Add($"{kind} tensor {name} has no scale tensor {scaleName}");
        else if (!checkpoint.Entry(scaleName).Shape.SequenceEqual(expected))
            problems.Add($"scale tensor {scaleName} has shape {SafeTensorsFile.Format(checkpoint.Entry(scaleName).Shape)}, expected {SafeTensorsFile.Format(expected)}");
    }

    private static bool IsScaleOf(string key, Dictionary<string, IStoredWeight> quantized) =>
        (key.EndsWith(Fp8Scale) && quantized.ContainsKey(key[..^Fp8Scale.Length])) ||
        (key.EndsWith(Int8Scale) && quantized.ContainsKey(key[..^Int8Scale.Length]));

    private static (int Rows, int Cols) BlockSize(ModelConfig config) =>
        config.QuantizationConfig?.WeightBlockSize is [var r, var c] ? (r, c) : (QuantizedLinear.Block, QuantizedLinear.Block);

    private static string List(List<string> names) =>
        names.Count <= 12 ? string.Join(", ", names) : string.Join(", ", names.Take(12)) + $", ... ({names.Count} in all)";
}
