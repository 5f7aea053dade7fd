using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace R1Sharp.Models;

/// A Hugging Face `config.json`, read as is. One record per `model_type`; `Load` picks it.
public abstract record ModelConfig
{
    [JsonPropertyName("model_type")] public required string ModelType { get; init; }
    [JsonPropertyName("vocab_size")] public required int VocabSize { get; init; }
    [JsonPropertyName("hidden_size")] public required int HiddenSize { get; init; }
    [JsonPropertyName("intermediate_size")] public required int IntermediateSize { get; init; }
    [JsonPropertyName("num_hidden_layers")] public required int NumHiddenLayers { get; init; }
    [JsonPropertyName("num_attention_heads")] public required int NumAttentionHeads { get; init; }
    [JsonPropertyName("max_position_embeddings")] public required int MaxPositionEmbeddings { get; init; }
    [JsonPropertyName("rms_norm_eps")] public double RmsNormEps { get; init; } = 1e-6;
    [JsonPropertyName("rope_theta")] public double RopeTheta { get; init; } = 10000;
    [JsonPropertyName("rope_scaling")] public RopeScaling? RopeScaling { get; init; }
    [JsonPropertyName("tie_word_embeddings")] public bool TieWordEmbeddings { get; init; }
    [JsonPropertyName("hidden_act")] public string HiddenAct { get; init; } = "silu";
    [JsonPropertyName("bos_token_id")] public int? BosTokenId { get; init; }
    [JsonPropertyName("eos_token_id"), JsonConverter(typeof(TokenIdsConverter))] public int[]? EosTokenIds { get; init; }
    [JsonPropertyName("torch_dtype")] public string? TorchDtype { get; init; }
    [JsonPropertyName("quantization_config")] public QuantizationConfig? QuantizationConfig { get; init; }
    /// Local (sliding-window) attention: each query sees at most `sliding_window` keys: the first
    /// `num_sink_tokens` positions (attention sinks, counted in the window as Hugging Face's SinkCache
    /// counts them) and the most recent ones, itself included. Which layers are local:
    /// `layer_types` ("sliding_attention"/"full_attention" per layer), else layers >= `max_window_layers`,
    /// else all. Qwen2 and Qwen3 apply it only with `use_sliding_window`, as transformers does.
    [JsonPropertyName("sliding_window")] public int? SlidingWindow { get; init; }
    [JsonPropertyName("use_sliding_window")] public bool? UseSlidingWindow { get; init; }
    [JsonPropertyName("max_window_layers")] public int? MaxWindowLayers { get; init; }
    [JsonPropertyName("layer_types")] public string[]? LayerTypes { get; init; }
    [JsonPropertyName("num_sink_tokens")] public int NumSinkTokens { get; init; }

    /// The window of local layers, or null when the model attends globally everywhere.
    [JsonIgnore] public int? Window => SlidingWindow is int w && (ModelType is not ("qwen2" or "qwen3") || UseSlidingWindow == true) ? w : null;

    public bool IsLocalLayer(int layer)
    {
        if (Window is null) return false;
        if (LayerTypes is { } types) return layer < types.Length && types[layer] == "sliding_attention";
        var firstLocal = MaxWindowLayers ?? (ModelType is "qwen2" or "qwen3" ? 28 : 0);
        return layer >= firstLocal;
    }

    /// The file's JSON exactly as read, so saving keeps keys we do not model.
    [JsonIgnore] public JsonObject Json { get; init; } = [];

    public virtual void Validate()
    {
        Require(VocabSize > 0, "vocab_size must be > 0");
        Require(HiddenSize > 0, "hidden_size must be > 0");
        Require(IntermediateSize > 0, "intermediate_size must be > 0");
        Require(NumHiddenLayers is > 0 and <= MaxLayers, $"num_hidden_layers must be between 1 and {MaxLayers}");
        Require(NumAttentionHeads > 0, "num_attention_heads must be > 0");
        Require(MaxPositionEmbeddings > 0, "max_position_embeddings must be > 0");
        Require(RmsNormEps > 0, "rms_norm_eps must be > 0");
        Require(RopeTheta > 0, "rope_theta must be > 0");
        Require(HiddenAct == "silu", $"hidden_act '{HiddenAct}' is not supported (only silu)");
        Require(SlidingWindow is null or > 0, "sliding_window must be > 0");
        Require(NumSinkTokens >= 0, "num_sink_tokens must be >= 0");
        Require(SlidingWindow is null || NumSinkTokens < SlidingWindow, "num_sink_tokens must be smaller than sliding_window (the sinks count in the window)");
        Require(MaxWindowLayers is null or >= 0, "max_window_layers must be >= 0");
        Require(LayerTypes is null || LayerTypes.Length >= NumHiddenLayers, $"layer_types must name all {NumHiddenLayers} layers");
        Require(LayerTypes is null || LayerTypes.All(t => t is "sliding_attention" or "full_attention"),
            "layer_types entries must be \"sliding_attention\" or \"full_attention\"");
        if (QuantizationConfig is { } q)
        {
            Require(q.QuantMethod is "fp8" or "int8" or "int4", $"quantization_config.quant_method '{q.QuantMethod}' is not supported (fp8, int8, int4)");
            Require(q.QuantMethod != "fp8" || q.Format is null or "e4m3", $"quantization_config.fmt '{q.Format}' is not supported (only e4m3)");
            Require(q.WeightBlockSize is null || (q.WeightBlockSize.Length == 2 && q.WeightBlockSize.All(b => b > 0)),
                "quantization_config.weight_block_size must be two positive ints");
        }
    }

    /// Sanity bounds far above any real model (Llama-3.1-405B has 126 layers, DeepSeek-V3 256 experts in
    /// 58 layers): a config is built into modules before anything else can be checked.
    public const int MaxLayers = 10_000;
    public const long MaxExpertModules = 100_000;

    /// A tensor dimension derived from the config (a product of keys) must fit the int sizes of modules.
    protected static void RequireDimension(long size, string what) =>
        Require(size is > 0 and <= int.MaxValue, $"{what} = {size:N0} is not a usable tensor dimension");

    protected static void Require(bool condition, string message)
    {
        if (!condition) throw new R1SharpException("config.json: " + message);
    }

    public static ModelConfig Load(string modelDirOrFile)
    {
        var path = Directory.Exists(modelDirOrFile) ? Path.Combine(modelDirOrFile, "config.json") : modelDirOrFile;
        if (!File.Exists(path) && Directory.Exists(modelDirOrFile) && File.Exists(Path.Combine(modelDirOrFile, LoraAdapter.ConfigFile)))
            throw new R1SharpException($"{modelDirOrFile} is a LoRA adapter, not a model: load it on its base with --adapter, or fold it in with `r1sharp merge-lora BASE {modelDirOrFile} --out DIR`");
        if (!File.Exists(path))
            throw new R1SharpException(Directory.Exists(modelDirOrFile) || modelDirOrFile.EndsWith(".json")
                ? $"config not found: {path}" : $"model directory not found: {modelDirOrFile}");
        return Parse(InputFile.ReadText(path, 16 << 20), path);
    }

    public static ModelConfig Parse(string json, string source = "config.json")
    {
        JsonObject obj;
        try
        {
            obj = JsonNode.Parse(json) as JsonObject ?? throw new R1SharpException($"{source}: not a JSON object");
        }
        catch (JsonException e)
        {
            throw new R1SharpException($"{source}: not valid JSON ({e.Message})");
        }
        var type = obj["model_type"] is JsonValue v && v.TryGetValue<string>(out var s) ? s
            : throw new R1SharpException($"{source}: missing required key model_type");
        ModelConfig config = type switch
        {
            // Kimi K2 is the DeepSeek-V3 architecture under its own name.
            "deepseek_v3" or "kimi_k2" => Deserialize<DeepSeekConfig>(DeepSeekConfig.WithDefaults(obj, v3: true), source),
            "deepseek_v2" => Deserialize<DeepSeekConfig>(DeepSeekConfig.WithDefaults(obj, v3: false), source),
            "qwen2" or "qwen3" or "llama" => Deserialize<DenseConfig>(obj, source),
            _ => throw new R1SharpException($"{source}: model_type '{type}' is not supported (supported: deepseek_v3, kimi_k2, deepseek_v2, qwen2, qwen3, llama)"),
        };
        config = config with { Json = obj };
        config.Validate();
        return config;
    }

    private static T Deserialize<T>(JsonObject obj, string source) where T : ModelConfig
    {
        try
        {
            return obj.Deserialize<T>() ?? throw new R1SharpException($"{source}: empty config");
        }
        catch (JsonException e) when (e.Message.Contains("missing required properties"))
        {
            var keys = typeof(T).GetProperties()
                .Where(p => p.GetCustomAttributes(typeof(System.Runtime.CompilerServices.RequiredMemberAttribute), true).Length > 0)
                .Select(p => ((JsonPropertyNameAttribute?)Attribute.GetCustomAttribute(p, typeof(JsonPropertyNameAttribute)))?.Name)
                .Where(k => k is not null && !obj.ContainsKey(k));
            throw new R1SharpException($"{source}: missing required key(s): {string.Join(", ", keys)}");
        }
        catch (JsonException e)
        {
            throw new R1SharpException($"{source}: invalid value at {e.Path ?? "?"}: {e.Message.Split(" Path:")[0]}");
        }
    }

    /// Writes config.json (the original keys, plus any we changed) atomically.
    public void Save(string dir)
    {
        Directory.CreateDirectory(dir);
        AtomicFile.WriteAllText(Path.Combine(dir, "config.json"), Json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }
}
