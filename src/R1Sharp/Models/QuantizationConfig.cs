using System.Text.Json.Serialization;

namespace R1Sharp.Models;

/// `quantization_config` as DeepSeek publishes it: FP8 E4M3 weights with 128x128 block scales.
public sealed record QuantizationConfig
{
    [JsonPropertyName("quant_method")] public string? QuantMethod { get; init; }
    [JsonPropertyName("fmt")] public string? Format { get; init; }
    [JsonPropertyName("activation_scheme")] public string? ActivationScheme { get; init; }
    [JsonPropertyName("weight_block_size")] public int[]? WeightBlockSize { get; init; }
}
