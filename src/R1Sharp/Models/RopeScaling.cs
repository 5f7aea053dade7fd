using System.Text.Json.Serialization;

namespace R1Sharp.Models;

/// The `rope_scaling` object of a Hugging Face config; `type` and `rope_type` are both accepted.
public sealed record RopeScaling
{
    [JsonPropertyName("type")] public string? Type { get; init; }
    [JsonPropertyName("rope_type")] public string? RopeType { get; init; }
    [JsonPropertyName("factor")] public double Factor { get; init; } = 1.0;
    [JsonPropertyName("original_max_position_embeddings")] public int? OriginalMaxPositionEmbeddings { get; init; }
    [JsonPropertyName("beta_fast")] public double BetaFast { get; init; } = 32;
    [JsonPropertyName("beta_slow")] public double BetaSlow { get; init; } = 1;
    [JsonPropertyName("mscale")] public double Mscale { get; init; } = 1;
    [JsonPropertyName("mscale_all_dim")] public double MscaleAllDim { get; init; } = 0;
    [JsonPropertyName("low_freq_factor")] public double? LowFreqFactor { get; init; }
    [JsonPropertyName("high_freq_factor")] public double? HighFreqFactor { get; init; }

    [JsonIgnore] public string Kind => (RopeType ?? Type ?? "default").ToLowerInvariant();
}
