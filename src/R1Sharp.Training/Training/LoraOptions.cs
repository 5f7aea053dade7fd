using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using R1Sharp.Models;

namespace R1Sharp.Training.Training;

/// `"lora": {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": ["q_proj", "v_proj"]}` in a train or
/// grpo config: only the adapters train, and checkpoints are PEFT adapter folders.
public sealed record LoraOptions
{
    [JsonPropertyName("r")] public int R { get; init; } = 8;
    [JsonPropertyName("alpha")] public double Alpha { get; init; } = 16;
    [JsonPropertyName("dropout")] public double Dropout { get; init; }
    [JsonPropertyName("target_modules")] public JsonNode? TargetModules { get; init; }

    public LoraConfig ToConfig(string? baseModel) => new()
    {
        R = R, Alpha = Alpha, Dropout = Dropout, BaseModel = baseModel,
        TargetModules = TargetModules?.DeepClone() ?? new JsonArray("q_proj", "k_proj", "v_proj", "o_proj"),
    };
}
