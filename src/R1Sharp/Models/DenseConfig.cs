using System.Text.Json.Serialization;

namespace R1Sharp.Models;

/// `model_type` qwen2 / qwen3 / llama: the dense decoders of the R1-Distill models (grouped-query
/// attention, rotate-half RoPE, SwiGLU) and of DeepSeek-R1-0528-Qwen3-8B (Qwen3 adds an RMSNorm over
/// each query and key head before RoPE). Defaults are the ones transformers gives each model_type.
public sealed record DenseConfig : ModelConfig
{
    [JsonPropertyName("num_key_value_heads")] public int? NumKeyValueHeadsOrNull { get; init; }
    [JsonPropertyName("head_dim")] public int? HeadDimOrNull { get; init; }
    [JsonPropertyName("attention_bias")] public bool AttentionBiasFlag { get; init; }
    [JsonPropertyName("mlp_bias")] public bool MlpBias { get; init; }

    [JsonIgnore] public bool IsQwen2 => ModelType == "qwen2";
    [JsonIgnore] public bool HasQkNorm => ModelType == "qwen3";
    [JsonIgnore] public int NumKeyValueHeads => NumKeyValueHeadsOrNull ?? NumAttentionHeads;
    [JsonIgnore] public int HeadDim => HeadDimOrNull ?? HiddenSize / NumAttentionHeads;
    /// Qwen2 always has q/k/v biases and no o_proj bias; Llama and Qwen3 put `attention_bias` on all four.
    [JsonIgnore] public bool QkvBias => IsQwen2 || AttentionBiasFlag;
    [JsonIgnore] public bool OutputBias => !IsQwen2 && AttentionBiasFlag;

    public override void Validate()
    {
        base.Validate();
        Require(NumKeyValueHeads > 0 && NumAttentionHeads % NumKeyValueHeads == 0,
            $"num_attention_heads ({NumAttentionHeads}) must be a multiple of num_key_value_heads ({NumKeyValueHeads})");
        Require(HeadDim > 0 && HeadDim % 2 == 0, $"head_dim ({HeadDim}) must be a positive even number");
        Require(HeadDimOrNull is not null || HiddenSize % NumAttentionHeads == 0, "hidden_size must be a multiple of num_attention_heads");
        RequireDimension((long)NumAttentionHeads * HeadDim, "num_attention_heads × head_dim");
        Require(UseSlidingWindow != true || SlidingWindow is not null, "use_sliding_window needs sliding_window");
        if (RopeScaling is { } r)
        {
            Require(r.Kind is "default" or "linear" or "llama3", $"rope_scaling type '{r.Kind}' is not supported for {ModelType} (default, linear, llama3)");
            Require(r.Kind == "default" || r.Factor > 0, "rope_scaling.factor must be > 0");
            Require(r.Kind != "llama3" || (r.LowFreqFactor is > 0 && r.HighFreqFactor > r.LowFreqFactor && r.OriginalMaxPositionEmbeddings > 0),
                "rope_scaling llama3 needs low_freq_factor > 0, high_freq_factor > low_freq_factor and original_max_position_embeddings");
        }
    }
}
