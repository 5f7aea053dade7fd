using R1Sharp.Models;
using R1Sharp.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Checkpoints;

/// Builds models from Hugging Face folders and writes them back in the same layout.
public static class ModelIO
{
    /// A model with the architecture `config` names, parameters uninitialised-but-allocated; refused first
    /// when its weights could not fit in memory.
    public static CausalLM Create(ModelConfig config, WeightFormat format = WeightFormat.F32)
    {
        using (ModelDevice.Meta())
        using (var shapes = Build(config, format))
            MachineMemory.Require(shapes.MemoryBytes, $"a {config.ModelType} model of {shapes.parameters().Sum(p => (double)p.NumberOfElements):N0} parameters");
        return Build(config, format);
    }

    private static CausalLM Build(ModelConfig config, WeightFormat format) => config switch
    {
        DeepSeekConfig d => new DeepSeekForCausalLM(d, format),
        DenseConfig d => new DenseForCausalLM(d, format),
        _ => throw new R1SharpException($"model_type '{config.ModelType}' has no implementation"),
    };

    /// Loads config.json (or `config`, e.g. the same architecture with another attention window) and the
    /// safetensors weights of `dir`, held as `format` (float32 compute), in eval mode. The headers are
    /// compared with the shapes the config implies, and the size with the machine's memory, before
    /// anything is allocated.
    public static CausalLM Load(string dir, WeightFormat format = WeightFormat.F32, ModelConfig? config = null)
    {
        if (!Directory.Exists(dir)) throw new R1SharpException($"model directory not found: {dir}");
        config ??= ModelConfig.Load(dir);
        using var checkpoint = Checkpoint.Open(dir);
        RequireLayers(config, checkpoint);
        using (ModelDevice.Meta())
        using (var shapes = Build(config, format))
        {
            WeightLoader.CheckShapes(shapes, checkpoint);
            MachineMemory.Require(shapes.MemoryBytes, $"{dir}: the model");
        }
        var model = Build(config, format);
        try
        {
            WeightLoader.Load(model, checkpoint);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        model.eval();
        return model;
    }

    private static readonly System.Text.RegularExpressions.Regex LayerName = new(@"^model\.layers\.(\d+)\.(?:mlp\.experts\.(\d+)\.)?", System.Text.RegularExpressions.RegexOptions.Compiled);

    /// Before the model is even built on the meta device (whose cost grows with the config's layer
    /// and expert counts): the checkpoint must hold as many layers and experts as the config names.
    private static void RequireLayers(ModelConfig config, Checkpoint checkpoint)
    {
        long layers = 0, experts = 0;
        foreach (var name in checkpoint.Names)
        {
            var match = LayerName.Match(name);
            if (!match.Success) continue;
            layers = Math.Max(layers, long.Parse(match.Groups[1].ValueSpan) + 1);
            if (match.Groups[2].Success) experts = Math.Max(experts, long.Parse(match.Groups[2].ValueSpan) + 1);
        }
        var wanted = config.NumHiddenLayers + (config is DeepSeekConfig d ? d.NumNextnPredictLayers : 0);
        if (wanted > layers)
            throw new R1SharpException($"checkpoint does not match the model: config.json describes {wanted} layers (num_hidden_layers{(config is DeepSeekConfig { NumNextnPredictLayers: > 0 } ? " + num_nextn_predict_layers" : "")}) but the checkpoint has {layers}");
        if (config is DeepSeekConfig { RoutedExperts: > 0 } moe && Enumerable.Range(0, moe.NumHiddenLayers).Any(moe.IsMoeLayer) && moe.RoutedExperts > experts)
            throw new R1SharpException($"checkpoint does not match the model: config.json has n_routed_experts {moe.RoutedExperts} but the checkpoint has {experts}");
    }

    /// Hugging Face's initialisation: normal(0, initializer_range) for matrices, ones for norms,
    /// zeros for biases (and the router's correction bias). Same seed, same weights.
    public static void Initialize(CausalLM model, long seed, double std = 0.02)
    {
        using var noGrad = no_grad();
        var generator = new Generator((ulong)seed);
        foreach (var (name, p) in model.named_parameters())
        {
            if (name.EndsWith("e_score_correction_bias") || name.EndsWith(".bias")) p.zero_();
            else if (p.dim() == 1) p.fill_(1.0);
            else p.normal_(0, std, generator);
        }
    }

    /// Writes config.json and the weights (model.safetensors, or shards plus an index when they
    /// exceed `maxShardBytes`). Float weights are stored as `dtype`; 8-bit weights as they are held,
    /// with their scales and the router's correction bias in float32.
    public static void Save(CausalLM model, string dir, ScalarType dtype = ScalarType.Float32, long maxShardBytes = long.MaxValue)
    {
        Directory.CreateDirectory(dir);
        var json = model.Config.Json.DeepClone().AsObject();
        json["torch_dtype"] = dtype switch { ScalarType.BFloat16 => "bfloat16", ScalarType.Float16 => "float16", _ => "float32" };
        json.Remove("quantization_config");
        if (QuantizationFormat.ConfigFor(model.WeightFormat) is { } quantization) json["quantization_config"] = quantization;
        (model.Config with { Json = json }).Save(dir);

        using var scope = NewDisposeScope();
        var tensors = model.state_dict().OrderBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => (p.Key, Tensor: KeepsItsType(p.Key) || !p.Value.is_floating_point() ? p.Value : p.Value.detach().to_type(dtype)))
            .ToList();
        var shards = new List<List<(string, Tensor)>> { new() };
        long size = 0;
        foreach (var t in tensors)
        {
            var bytes = t.Tensor.NumberOfElements * t.Tensor.ElementSize;
            if (size > 0 && size + bytes > maxShardBytes) { shards.Add([]); size = 0; }
            shards[^1].Add(t);
            size += bytes;
        }
        var metadata = new Dictionary<string, string> { ["format"] = "pt" };
        var storedAs = model.named_modules().Where(m => m.module is QuantizedLinear { Format: WeightFormat.Fp8 })
            .ToDictionary(m => m.name + ".weight", _ => "F8_E4M3");
        foreach (var stale in Directory.GetFiles(dir, "model*.safetensors*")) File.Delete(stale);
        if (shards.Count == 1)
        {
            SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), shards[0], metadata, storedAs);
        }
        else
        {
            var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
            for (int i = 0; i < shards.Count; i++)
            {
                var file = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
                SafeTensorsWriter.Write(Path.Combine(dir, file), shards[i], metadata, storedAs);
                foreach (var (name, _) in shards[i]) weightMap[name] = file;
            }
            var index = new { metadata = new { total_size = tensors.Sum(t => t.Tensor.NumberOfElements * t.Tensor.ElementSize) }, weight_map = weightMap };
            AtomicFile.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"),
                System.Text.Json.JsonSerializer.Serialize(index, new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        }
    }

    private static bool KeepsItsType(string name) =>
        name.EndsWith("e_score_correction_bias") || name.EndsWith("weight_scale_inv") || name.EndsWith("weight_scale");
}
