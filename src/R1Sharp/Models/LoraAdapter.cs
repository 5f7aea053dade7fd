using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using R1Sharp.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// `adapter_config.json` in PEFT's layout (the keys PEFT reads for a LoRA adapter).
public sealed record LoraConfig
{
    [JsonPropertyName("peft_type")] public string PeftType { get; init; } = "LORA";
    [JsonPropertyName("task_type")] public string TaskType { get; init; } = "CAUSAL_LM";
    [JsonPropertyName("base_model_name_or_path")] public string? BaseModel { get; init; }
    [JsonPropertyName("r")] public int R { get; init; } = 8;
    [JsonPropertyName("lora_alpha")] public double Alpha { get; init; } = 16;
    [JsonPropertyName("lora_dropout")] public double Dropout { get; init; }
    [JsonPropertyName("target_modules")] public JsonNode? TargetModules { get; init; }
    [JsonPropertyName("bias")] public string Bias { get; init; } = "none";
    [JsonPropertyName("fan_in_fan_out")] public bool FanInFanOut { get; init; }
    [JsonPropertyName("use_rslora")] public bool UseRsLora { get; init; }
    [JsonPropertyName("inference_mode")] public bool InferenceMode { get; init; } = true;
    // PEFT's variations R1Sharp does not apply: read so that an adapter using them is refused, not merged wrongly.
    [JsonPropertyName("use_dora"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public bool UseDora { get; init; }
    [JsonPropertyName("rank_pattern"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public JsonObject? RankPattern { get; init; }
    [JsonPropertyName("alpha_pattern"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public JsonObject? AlphaPattern { get; init; }
    [JsonPropertyName("layers_to_transform"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public JsonNode? LayersToTransform { get; init; }
    [JsonPropertyName("modules_to_save"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public JsonNode? ModulesToSave { get; init; }

    /// alpha / r (PEFT's default), or alpha / sqrt(r) with rsLoRA.
    [JsonIgnore] public double Scale => UseRsLora ? Alpha / Math.Sqrt(R) : Alpha / R;

    /// Module names (the last part of a dotted name, as PEFT matches them), "all-linear", or (PEFT's
    /// other string form) a regular expression the whole module name must match.
    [JsonIgnore]
    public IReadOnlyList<string> Targets => TargetModules switch
    {
        JsonValue v when v.TryGetValue<string>(out var s) => [s],
        JsonArray a => a.Select(n => n is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw new R1SharpException("lora target_modules must be names")).ToList(),
        null => ["q_proj", "v_proj"],
        _ => throw new R1SharpException("lora target_modules must be a name or a list of names"),
    };

    public void Validate(string source)
    {
        if (PeftType != "LORA") throw new R1SharpException($"{source}: peft_type '{PeftType}' is not LORA");
        if (R is < 1 or > 4096) throw new R1SharpException($"{source}: r must be in 1..4096");
        if (!(Alpha > 0) || Dropout is < 0 or >= 1) throw new R1SharpException($"{source}: lora_alpha must be > 0 and lora_dropout in [0, 1)");
        if (Bias != "none") throw new R1SharpException($"{source}: bias '{Bias}' is not supported (none)");
        if (FanInFanOut) throw new R1SharpException($"{source}: fan_in_fan_out adapters (GPT-2 Conv1D) are not supported");
        if (Targets.Count == 0) throw new R1SharpException($"{source}: target_modules is empty");
        if (UseDora) throw new R1SharpException($"{source}: DoRA adapters (use_dora) are not supported");
        if (RankPattern is { Count: > 0 } || AlphaPattern is { Count: > 0 }) throw new R1SharpException($"{source}: per-layer rank_pattern / alpha_pattern are not supported");
        if (LayersToTransform is not null) throw new R1SharpException($"{source}: layers_to_transform is not supported");
        if (ModulesToSave is JsonArray { Count: > 0 } or JsonValue) throw new R1SharpException($"{source}: modules_to_save (fully trained extra modules) is not supported");
    }

    /// Whether the linear layer named `name` (dotted, from the model's root) is a target.
    public bool IsTarget(string name)
    {
        if (TargetModules is not JsonValue v || !v.TryGetValue<string>(out var pattern)) return Targets.Contains(name.Split('.')[^1]);
        if (pattern == "all-linear") return true;
        try { return System.Text.RegularExpressions.Regex.IsMatch(name, $"^(?:{pattern})$", System.Text.RegularExpressions.RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1)); }
        catch (Exception e) when (e is ArgumentException or System.Text.RegularExpressions.RegexMatchTimeoutException)
        {
            throw new R1SharpException($"lora target_modules '{pattern}' is not a usable regular expression ({e.Message})");
        }
    }
}

/// One LoRA pair on a linear layer: y = W x + scale · B (A dropout(x)), A [r, in], B [out, r].
/// Kept outside the module tree, so the base model's state dict and checkpoints are unchanged.
public sealed class LoraWeights(Parameter a, Parameter b, double scale, double dropout) : IDisposable
{
    public Parameter A { get; } = a;
    public Parameter B { get; } = b;
    public double Scale { get; } = scale;
    public double DropoutRate { get; } = dropout;
    public bool Enabled { get; set; } = true;

    public Tensor Delta(Tensor x, bool training)
    {
        var input = DropoutRate > 0 && training ? nn.functional.dropout(x, DropoutRate, training: true) : x;
        return nn.functional.linear(nn.functional.linear(input, A), B) * Scale;
    }

    public void Dispose() { A.Dispose(); B.Dispose(); }
}

/// LoRA adapters in PEFT's format: attach to a model for training (base weights frozen), save as
/// `adapter_config.json` + `adapter_model.safetensors` with PEFT's tensor names
/// (`base_model.model.<module>.lora_A.weight` / `lora_B.weight`), load onto a model, or merge into its weights.
public static class LoraAdapter
{
    public const string ConfigFile = "adapter_config.json", WeightsFile = "adapter_model.safetensors";
    private const string Prefix = "base_model.model.";

    /// The model's linear layers a config targets, by module name.
    public static List<(string Name, DenseLinear Layer)> Targets(CausalLM model, LoraConfig config)
    {
        var targets = config.Targets;
        var found = model.named_modules()
            .Where(m => m.module is DenseLinear && m.name != "lm_head" && config.IsTarget(m.name))
            .Select(m => (m.name, (DenseLinear)m.module)).ToList();
        if (found.Count == 0)
        {
            var quantized = model.named_modules().Any(m => m.module is Quantization.QuantizedLinear);
            throw new R1SharpException(quantized
                ? "LoRA needs float32 weights (load the base with --weights f32)"
                : $"lora target_modules [{string.Join(", ", targets)}] match no linear layer of this model");
        }
        return found;
    }

    /// New trainable adapters (A uniform as PEFT's Kaiming init, B zero: the model starts unchanged); every base weight frozen.
    public static List<(string Name, LoraWeights Weights)> Attach(CausalLM model, LoraConfig config, long seed)
    {
        config.Validate("lora");
        foreach (var p in model.parameters()) p.requires_grad = false;
        var generator = new Generator((ulong)seed);
        var attached = new List<(string, LoraWeights)>();
        foreach (var (name, layer) in Targets(model, config))
        {
            long outputs = layer.Weight.shape[0], inputs = layer.Weight.shape[1];
            var bound = 1.0 / Math.Sqrt(inputs);
            var a = new Parameter(empty(config.R, inputs).uniform_(-bound, bound, generator: generator));
            var b = new Parameter(zeros(outputs, config.R));
            layer.Lora = new LoraWeights(a, b, config.Scale, config.Dropout);
            attached.Add((name, layer.Lora));
        }
        return attached;
    }

    public static void SetEnabled(CausalLM model, bool enabled)
    {
        foreach (var (_, m) in model.named_modules())
            if (m is DenseLinear { Lora: { } lora }) lora.Enabled = enabled;
    }

    public static void Save(string dir, LoraConfig config, IReadOnlyList<(string Name, LoraWeights Weights)> adapters)
    {
        Directory.CreateDirectory(dir);
        var tensors = new List<(string, Tensor)>();
        foreach (var (name, w) in adapters)
        {
            tensors.Add(($"{Prefix}{name}.lora_A.weight", w.A.detach()));
            tensors.Add(($"{Prefix}{name}.lora_B.weight", w.B.detach()));
        }
        SafeTensorsWriter.Write(Path.Combine(dir, WeightsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        AtomicFile.WriteAllText(Path.Combine(dir, ConfigFile), JsonSerializer.Serialize(config with { TargetModules = new JsonArray(adapters.Select(a => a.Name.Split('.')[^1]).Distinct().Order(StringComparer.Ordinal).Select(n => (JsonNode)n).ToArray()) },
            new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    public static LoraConfig ReadConfig(string dir)
    {
        var path = Path.Combine(dir, ConfigFile);
        if (!File.Exists(path)) throw new R1SharpException($"{dir}: no {ConfigFile} (not a PEFT adapter folder)");
        LoraConfig config;
        try { config = JsonSerializer.Deserialize<LoraConfig>(InputFile.ReadText(path, 1 << 20)) ?? throw new R1SharpException($"{path}: empty"); }
        catch (JsonException e) { throw new R1SharpException($"{path}: not a valid adapter config ({e.Message.Split('\n')[0]})"); }
        config.Validate(path);
        return config;
    }

    /// The adapter's tensors per target module, checked against the model: every target present, every shape matching.
    private static List<(string Name, DenseLinear Layer, Tensor A, Tensor B)> Read(CausalLM model, string dir, LoraConfig config)
    {
        var file = Path.Combine(dir, WeightsFile);
        if (!File.Exists(file)) throw new R1SharpException($"{dir}: no {WeightsFile}");
        using var safetensors = SafeTensorsFile.Open(file);
        var tensors = safetensors.Entries.Keys.ToDictionary(k => k, safetensors.Read);
        var result = new List<(string, DenseLinear, Tensor, Tensor)>();
        var used = new HashSet<string>();
        foreach (var (name, layer) in Targets(model, config))
        {
            string an = $"{Prefix}{name}.lora_A.weight", bn = $"{Prefix}{name}.lora_B.weight";
            if (!tensors.TryGetValue(an, out var a) || !tensors.TryGetValue(bn, out var b))
            {
                if (!tensors.Keys.Any(k => k.StartsWith($"{Prefix}{name}.", StringComparison.Ordinal))) continue;   // PEFT may skip layers (layers_to_transform)
                throw new R1SharpException($"{file}: {name} has only one of lora_A and lora_B");
            }
            long outputs = layer.Weight.shape[0], inputs = layer.Weight.shape[1];
            if (!a.shape.SequenceEqual(new long[] { config.R, inputs }) || !b.shape.SequenceEqual(new long[] { outputs, config.R }))
                throw new R1SharpException($"{file}: {name}: lora_A {Shape(a)} and lora_B {Shape(b)} do not fit the base layer [{outputs}, {inputs}] with r {config.R}");
            result.Add((name, layer, a.to_type(ScalarType.Float32), b.to_type(ScalarType.Float32)));
            used.Add(an); used.Add(bn);
        }
        var unexpected = tensors.Keys.Where(k => !used.Contains(k)).ToList();
        if (unexpected.Count > 0) throw new R1SharpException($"{file}: {unexpected.Count} tensors match no target layer of the model, e.g. {unexpected[0]}");
        if (result.Count == 0) throw new R1SharpException($"{file}: no adapter tensors for the model's {string.Join(", ", config.Targets)} layers");
        return result;
    }

    private static string Shape(Tensor t) => "[" + string.Join(", ", t.shape) + "]";

    /// Attaches a saved adapter (trainable when `trainable`, e.g. to resume a LoRA run); base weights frozen.
    public static List<(string Name, LoraWeights Weights)> Load(CausalLM model, string dir, bool trainable)
    {
        var config = ReadConfig(dir);
        foreach (var p in model.parameters()) p.requires_grad = false;
        var attached = new List<(string, LoraWeights)>();
        foreach (var (name, layer, a, b) in Read(model, dir, config))
        {
            layer.Lora = new LoraWeights(new Parameter(a, trainable), new Parameter(b, trainable), config.Scale, config.Dropout);
            attached.Add((name, layer.Lora));
        }
        return attached;
    }

    /// W += scale · B A for every adapted layer: the model then computes base + adapter with no adapter attached.
    public static int Merge(CausalLM model, string dir)
    {
        var config = ReadConfig(dir);
        var layers = Read(model, dir, config);
        using var noGrad = no_grad();
        foreach (var (_, layer, a, b) in layers)
            layer.Weight.add_(b.matmul(a).mul_(config.Scale));
        return layers.Count;
    }
}
