using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace R1Sharp.Training.Training;

/// A data source: a folder made by `prepare`, or a built-in task generated into the run.
public sealed record DataSource
{
    [JsonPropertyName("path")] public string? Path { get; init; }
    [JsonPropertyName("builtin")] public string? Builtin { get; init; }
    [JsonPropertyName("examples")] public int Examples { get; init; } = 20000;
    [JsonPropertyName("difficulty")] public int Difficulty { get; init; } = 3;
}

/// One phase of progressive training.
public sealed record Stage
{
    [JsonPropertyName("name")] public string? Name { get; init; }
    [JsonPropertyName("steps")] public int Steps { get; init; }
    [JsonPropertyName("seq_len")] public int? SeqLen { get; init; }
    [JsonPropertyName("lr_scale")] public double LrScale { get; init; } = 1.0;
    [JsonPropertyName("mixture")] public Dictionary<string, double>? Mixture { get; init; }
}

public sealed record Augmentation
{
    [JsonPropertyName("replace")] public double Replace { get; init; }
    [JsonPropertyName("delete")] public double Delete { get; init; }
    [JsonPropertyName("span_mask")] public double SpanMask { get; init; }
    [JsonPropertyName("span_length")] public int SpanLength { get; init; } = 3;
    [JsonIgnore] public bool Any => Replace > 0 || Delete > 0 || SpanMask > 0;
}

/// `r1sharp train --config FILE.json`: every option of a run. Paths are relative to the config file.
public sealed record TrainConfig
{
    [JsonPropertyName("name")] public string Name { get; init; } = "run";
    [JsonPropertyName("model")] public required string Model { get; init; }
    [JsonPropertyName("init_from")] public string? InitFrom { get; init; }
    /// A folder with the run's tokenizer.json (and chat template), when neither init_from nor the data bring one.
    [JsonPropertyName("tokenizer")] public string? Tokenizer { get; init; }
    [JsonPropertyName("data")] public required Dictionary<string, DataSource> Data { get; init; }
    [JsonPropertyName("mixture")] public Dictionary<string, double>? Mixture { get; init; }
    [JsonPropertyName("val_fraction")] public double ValFraction { get; init; } = 0.05;
    [JsonPropertyName("seed")] public int Seed { get; init; }
    [JsonPropertyName("steps")] public int Steps { get; init; } = 300;
    [JsonPropertyName("batch_size")] public int BatchSize { get; init; } = 8;
    [JsonPropertyName("seq_len")] public int SeqLen { get; init; } = 128;
    [JsonPropertyName("grad_accum")] public int GradAccum { get; init; } = 1;
    [JsonPropertyName("lr")] public double Lr { get; init; } = 3e-3;
    [JsonPropertyName("min_lr_ratio")] public double MinLrRatio { get; init; } = 0.1;
    [JsonPropertyName("warmup_steps")] public int WarmupSteps { get; init; } = 20;
    [JsonPropertyName("weight_decay")] public double WeightDecay { get; init; } = 0.1;
    [JsonPropertyName("beta1")] public double Beta1 { get; init; } = 0.9;
    [JsonPropertyName("beta2")] public double Beta2 { get; init; } = 0.95;
    [JsonPropertyName("grad_clip")] public double GradClip { get; init; } = 1.0;
    [JsonPropertyName("aux_loss_weight")] public double AuxLossWeight { get; init; }
    [JsonPropertyName("bias_update_speed")] public double BiasUpdateSpeed { get; init; }
    [JsonPropertyName("z_loss_weight")] public double ZLossWeight { get; init; }
    [JsonPropertyName("contrastive_weight")] public double ContrastiveWeight { get; init; }
    [JsonPropertyName("contrastive_temperature")] public double ContrastiveTemperature { get; init; } = 0.1;
    [JsonPropertyName("mtp_weight")] public double MtpWeight { get; init; }
    [JsonPropertyName("renormalize_experts")] public bool RenormalizeExperts { get; init; }
    [JsonPropertyName("precision")] public string Precision { get; init; } = "f32";
    [JsonPropertyName("lora")] public LoraOptions? Lora { get; init; }
    /// Recompute each decoder layer in the backward instead of keeping its activations (dense models).
    [JsonPropertyName("gradient_checkpointing")] public bool GradientCheckpointing { get; init; }
    [JsonPropertyName("augment")] public Augmentation Augment { get; init; } = new();
    [JsonPropertyName("stages")] public List<Stage>? Stages { get; init; }
    [JsonPropertyName("eval_every")] public int EvalEvery { get; init; } = 50;
    [JsonPropertyName("eval_batches")] public int EvalBatches { get; init; } = 8;
    [JsonPropertyName("checkpoint_every")] public int CheckpointEvery { get; init; } = 100;
    [JsonPropertyName("keep_checkpoints")] public int KeepCheckpoints { get; init; } = 2;
    [JsonPropertyName("plot_every")] public int PlotEvery { get; init; } = 50;
    [JsonPropertyName("max_bad_steps")] public int MaxBadSteps { get; init; } = 5;

    /// The stages to run; without a `stages` list, one stage from the top-level options.
    [JsonIgnore]
    public IReadOnlyList<Stage> ResolvedStages => Stages is { Count: > 0 }
        ? Stages
        : [new Stage { Name = "main", Steps = Steps, SeqLen = SeqLen, Mixture = Mixture }];

    [JsonIgnore] public int TotalSteps => ResolvedStages.Sum(s => s.Steps);

    public void Validate()
    {
        static void Require(bool ok, string message) { if (!ok) throw new R1SharpException("train config: " + message); }
        Require(Data.Count > 0, "data needs at least one source");
        foreach (var (name, source) in Data)
            Require((source.Path is null) != (source.Builtin is null), $"data.{name} needs exactly one of path or builtin");
        Require(BatchSize >= 1 && SeqLen >= 2 && GradAccum >= 1, "batch_size, grad_accum must be >= 1 and seq_len >= 2");
        Require(Lr > 0 && MinLrRatio is >= 0 and <= 1 && WarmupSteps >= 0, "lr > 0, min_lr_ratio in [0, 1], warmup_steps >= 0");
        Require(GradClip >= 0 && WeightDecay >= 0, "grad_clip and weight_decay must be >= 0");
        Require(AuxLossWeight >= 0 && BiasUpdateSpeed >= 0 && ZLossWeight >= 0 && ContrastiveWeight >= 0 && MtpWeight >= 0, "loss weights must be >= 0");
        Require(Precision is "f32" or "bf16", $"precision '{Precision}' is not supported (f32, bf16)");
        Require(Augment.Replace is >= 0 and < 1 && Augment.Delete is >= 0 and < 0.5 && Augment.SpanMask is >= 0 and < 1 && Augment.SpanLength >= 1,
            "augment rates must be in [0, 1) (delete < 0.5) and span_length >= 1");
        Require(!GradientCheckpointing || Lora is not { Dropout: > 0 }, "gradient_checkpointing recomputes each layer: it needs lora.dropout 0");
        Require(!GradientCheckpointing || (AuxLossWeight == 0 && ZLossWeight == 0),
            "gradient_checkpointing keeps no router gradients from the forward: aux_loss_weight and z_loss_weight need 0 (balance with bias_update_speed, as DeepSeek-V3)");
        Require(ContrastiveWeight == 0 || Augment.Any, "contrastive_weight needs augmentation (two augmented views)");
        foreach (var stage in ResolvedStages)
        {
            Require(stage.Steps >= 1, $"stage {stage.Name}: steps must be >= 1");
            Require(stage.SeqLen is null or >= 2, $"stage {stage.Name}: seq_len must be >= 2");
            foreach (var source in (stage.Mixture ?? Mixture ?? []).Keys)
                Require(Data.ContainsKey(source), $"stage {stage.Name}: mixture names unknown data source '{source}'");
        }
        Require(EvalEvery >= 1 && CheckpointEvery >= 1 && KeepCheckpoints >= 1 && PlotEvery >= 1 && MaxBadSteps >= 1, "every/keep options must be >= 1");
    }

    /// Reads the file, applies `key=value` overrides (dotted paths, JSON values or bare strings), validates.
    public static (TrainConfig Config, JsonObject Resolved) Load(string path, IEnumerable<string> overrides)
    {
        var json = ReadJson(path, overrides);
        var config = Training.ConfigDeserializer.Deserialize<TrainConfig>(json, path, "missing required key(s) model and/or data");
        config.Validate();
        return (config, json);
    }

    /// A config file as JSON with `key=value` overrides applied.
    public static JsonObject ReadJson(string path, IEnumerable<string> overrides)
    {
        if (!File.Exists(path)) throw new R1SharpException($"config not found: {path}");
        JsonObject json;
        try
        {
            json = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new R1SharpException($"{path}: not a JSON object");
        }
        catch (JsonException e)
        {
            throw new R1SharpException($"{path}: not valid JSON ({e.Message.Split('\n')[0]})");
        }
        foreach (var item in overrides) ApplyOverride(json, item);
        return json;
    }

    /// One `--set key.sub=value` (the value parsed as JSON, else taken as a string).
    public static void ApplyOverride(JsonObject root, string item)
    {
        var eq = item.IndexOf('=');
        if (eq <= 0) throw new R1SharpException($"--set expects key=value, got '{item}'");
        var keys = item[..eq].Split('.');
        var text = item[(eq + 1)..];
        JsonNode? value;
        try { value = JsonNode.Parse(text); } catch (JsonException) { value = JsonValue.Create(text); }
        var node = root;
        foreach (var key in keys[..^1])
        {
            if (node[key] is not JsonObject child) { child = new JsonObject(); node[key] = child; }
            node = child;
        }
        node[keys[^1]] = value;
    }
}
