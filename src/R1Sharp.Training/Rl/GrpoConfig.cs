using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace R1Sharp.Training.Rl;

/// `r1sharp grpo --config FILE.json`. Defaults follow DeepSeekMath's GRPO as R1 used it (clipped ratio
/// with epsilon 0.2, k3 KL to a frozen reference, group-normalised advantages, temperature 1.0,
/// beta 0.001 as in the R1 paper) except the group size: R1 used G = 16, the default here is 8 to fit
/// two CPU cores. `loss_aggregation` dapo and `epsilon_high` follow DAPO (bnpo is the same mean over
/// the batch's tokens: one process holds the whole batch); `reward_scaling` none and loss_aggregation
/// dr_grpo follow Dr. GRPO; `importance_sampling_level` sequence is GSPO (use a small epsilon there,
/// the GSPO paper's 3e-4 / 4e-4).
public sealed record GrpoConfig
{
    [JsonPropertyName("name")] public string Name { get; init; } = "grpo";
    [JsonPropertyName("init_from")] public required string InitFrom { get; init; }
    [JsonPropertyName("task")] public string Task { get; init; } = "arithmetic";
    /// JSONL problems (`prompt` or `messages`, and `answer`) instead of a built-in task; paths relative to the config.
    [JsonPropertyName("data")] public string? Data { get; init; }
    [JsonPropertyName("eval_data")] public string? EvalData { get; init; }
    /// For models with their own chat template: how the problem is asked.
    [JsonPropertyName("system_prompt")] public string? SystemPrompt { get; init; }
    [JsonPropertyName("instruction")] public string? Instruction { get; init; }
    [JsonPropertyName("enable_thinking")] public bool? EnableThinking { get; init; }
    /// The `external` reward: a shell command reading JSON lines and printing one score per line.
    [JsonPropertyName("reward_command")] public string? RewardCommand { get; init; }
    [JsonPropertyName("reward_timeout")] public double RewardTimeout { get; init; } = 60;
    /// LoRA adapters instead of full fine-tuning; the reference policy is then the base with the adapters off.
    [JsonPropertyName("lora")] public Training.LoraOptions? Lora { get; init; }
    [JsonPropertyName("gradient_checkpointing")] public bool GradientCheckpointing { get; init; }
    [JsonPropertyName("difficulty")] public int Difficulty { get; init; } = 3;
    [JsonPropertyName("seed")] public int Seed { get; init; }
    [JsonPropertyName("steps")] public int Steps { get; init; } = 100;
    [JsonPropertyName("prompts_per_step")] public int PromptsPerStep { get; init; } = 8;
    [JsonPropertyName("group_size")] public int GroupSize { get; init; } = 8;
    [JsonPropertyName("max_new_tokens")] public int MaxNewTokens { get; init; } = 96;
    [JsonPropertyName("temperature")] public double Temperature { get; init; } = 1.0;
    [JsonPropertyName("lr")] public double Lr { get; init; } = 2e-4;
    [JsonPropertyName("weight_decay")] public double WeightDecay { get; init; }
    [JsonPropertyName("grad_clip")] public double GradClip { get; init; } = 1.0;
    [JsonPropertyName("epsilon")] public double Epsilon { get; init; } = 0.2;
    [JsonPropertyName("epsilon_high")] public double? EpsilonHigh { get; init; }
    [JsonPropertyName("beta")] public double Beta { get; init; } = 0.001;
    [JsonPropertyName("iterations")] public int Iterations { get; init; } = 1;
    [JsonPropertyName("loss_aggregation")] public string LossAggregation { get; init; } = "grpo";
    [JsonPropertyName("reward_scaling")] public string RewardScaling { get; init; } = "group";
    [JsonPropertyName("mask_truncated")] public bool MaskTruncated { get; init; } = true;
    [JsonPropertyName("dynamic_sampling")] public bool DynamicSampling { get; init; }
    [JsonPropertyName("importance_sampling_level")] public string ImportanceSamplingLevel { get; init; } = "token";
    [JsonPropertyName("think_opened_by_prompt")] public bool ThinkOpenedByPrompt { get; init; }
    [JsonPropertyName("format_tags")] public FormatTags FormatTags { get; init; } = FormatTags.R1Zero;
    [JsonPropertyName("rewards")] public Dictionary<string, double> Rewards { get; init; } = new() { ["format"] = 0.2, ["correctness"] = 1.0 };
    [JsonPropertyName("length_buffer")] public int LengthBuffer { get; init; } = 16;
    [JsonPropertyName("eval_every")] public int EvalEvery { get; init; } = 50;
    [JsonPropertyName("eval_problems")] public int EvalProblems { get; init; } = 200;
    [JsonPropertyName("checkpoint_every")] public int CheckpointEvery { get; init; } = 50;
    [JsonPropertyName("keep_checkpoints")] public int KeepCheckpoints { get; init; } = 2;

    public void Validate()
    {
        static void Require(bool ok, string message) { if (!ok) throw new R1SharpException("grpo config: " + message); }
        Require(Steps >= 1 && PromptsPerStep >= 1 && GroupSize >= 2, "steps, prompts_per_step >= 1 and group_size >= 2");
        Require(MaxNewTokens >= 4 && Temperature > 0, "max_new_tokens >= 4 and temperature > 0");
        Require(Lr > 0 && GradClip >= 0 && Epsilon is > 0 and < 1 && (EpsilonHigh ?? Epsilon) > 0 && Beta >= 0 && Iterations >= 1, "lr > 0, epsilon in (0, 1), beta >= 0, iterations >= 1");
        Require(LossAggregation is "grpo" or "bnpo" or "dapo" or "dr_grpo", $"loss_aggregation '{LossAggregation}' is not supported (grpo, bnpo, dapo, dr_grpo)");
        Require(ImportanceSamplingLevel is "token" or "sequence", $"importance_sampling_level '{ImportanceSamplingLevel}' is not supported (token, sequence)");
        (FormatTags ?? throw new R1SharpException("grpo config: format_tags must be an object")).Validate();
        Require(RewardScaling is "group" or "batch" or "none", $"reward_scaling '{RewardScaling}' is not supported (group, batch, none)");
        foreach (var name in Rewards.Keys)
            Require(name is "format" or "correctness" or "math" or "external" or "length", $"unknown reward '{name}' (format, correctness, math, external, length)");
        Require(!Rewards.ContainsKey("external") || !string.IsNullOrWhiteSpace(RewardCommand), "the external reward needs reward_command");
        Require(RewardTimeout is > 0 and <= 3600, "reward_timeout must be in (0, 3600] seconds");
        Require(EvalData is null || Data is not null, "eval_data needs data");
        Require(EvalEvery >= 1 && EvalProblems >= 1 && CheckpointEvery >= 1 && KeepCheckpoints >= 1, "eval/checkpoint options must be >= 1");
    }

    /// TRL GRPOConfig's names for the same options, so its users feel at home.
    public static readonly IReadOnlyDictionary<string, string> Aliases = new Dictionary<string, string>
    {
        ["num_generations"] = "group_size", ["loss_type"] = "loss_aggregation", ["num_iterations"] = "iterations",
        ["mask_truncated_completions"] = "mask_truncated", ["scale_rewards"] = "reward_scaling", ["max_completion_length"] = "max_new_tokens",
        ["learning_rate"] = "lr", ["max_grad_norm"] = "grad_clip",
    };

    private static void ResolveAliases(JsonObject json, string path)
    {
        foreach (var (alias, name) in Aliases)
        {
            if (json[alias] is not { } value) continue;
            json.Remove(alias);
            // TRL's scale_rewards is also a boolean: true is per group, false is none.
            if (alias == "scale_rewards" && value is JsonValue b && b.TryGetValue<bool>(out var on)) value = on ? "group" : "none";
            if (json[name] is { } canonical && !JsonNode.DeepEquals(canonical, value))
                throw new R1SharpException($"{path}: {alias} ({value.ToJsonString()}) and {name} ({canonical.ToJsonString()}) disagree; they are the same option");
            json[name] = value.DeepClone();
        }
    }

    public static (GrpoConfig Config, JsonObject Resolved) Load(string path, IEnumerable<string> overrides)
    {
        // Aliases are resolved in the file first, so an override by either name replaces the file's value.
        var json = Training.TrainConfig.ReadJson(path, []);
        ResolveAliases(json, path);
        foreach (var item in overrides)
        {
            var eq = item.IndexOf('=');
            var key = eq > 0 ? item[..eq] : item;
            if (!Aliases.TryGetValue(key, out var name)) { Training.TrainConfig.ApplyOverride(json, item); continue; }
            var value = item[(eq + 1)..];
            Training.TrainConfig.ApplyOverride(json, $"{name}={(key == "scale_rewards" && value is "true" or "false" ? (value == "true" ? "group" : "none") : value)}");
        }
        var config = Training.ConfigDeserializer.Deserialize<GrpoConfig>(json, path, "missing required key init_from");
        config.Validate();
        return (config, json);
    }
}
