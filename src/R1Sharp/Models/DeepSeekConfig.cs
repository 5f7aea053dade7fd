using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace R1Sharp.Models;

/// `model_type` deepseek_v3 / deepseek_v2: Multi-head Latent Attention and DeepSeekMoE.
public sealed record DeepSeekConfig : ModelConfig
{
    [JsonPropertyName("moe_intermediate_size")] public int MoeIntermediateSize { get; init; }
    [JsonPropertyName("n_routed_experts")] public int? NRoutedExperts { get; init; }
    [JsonPropertyName("n_shared_experts")] public int? NSharedExperts { get; init; }
    [JsonPropertyName("num_experts_per_tok")] public int? NumExpertsPerTok { get; init; }
    [JsonPropertyName("n_group")] public int? NGroup { get; init; }
    [JsonPropertyName("topk_group")] public int? TopkGroup { get; init; }
    [JsonPropertyName("topk_method")] public required string TopkMethod { get; init; }
    [JsonPropertyName("scoring_func")] public required string ScoringFunc { get; init; }
    [JsonPropertyName("norm_topk_prob")] public required bool NormTopkProb { get; init; }
    [JsonPropertyName("routed_scaling_factor")] public required double RoutedScalingFactor { get; init; }
    [JsonPropertyName("first_k_dense_replace")] public required int FirstKDenseReplace { get; init; }
    [JsonPropertyName("moe_layer_freq")] public required int MoeLayerFreq { get; init; }
    [JsonPropertyName("q_lora_rank")] public required int? QLoraRank { get; init; }
    [JsonPropertyName("kv_lora_rank")] public required int KvLoraRank { get; init; }
    [JsonPropertyName("qk_nope_head_dim")] public required int QkNopeHeadDim { get; init; }
    [JsonPropertyName("qk_rope_head_dim")] public required int QkRopeHeadDim { get; init; }
    [JsonPropertyName("v_head_dim")] public required int VHeadDim { get; init; }
    [JsonPropertyName("num_nextn_predict_layers")] public int NumNextnPredictLayers { get; init; }
    [JsonPropertyName("attention_bias")] public bool AttentionBias { get; init; }

    [JsonIgnore] public int QkHeadDim => QkNopeHeadDim + QkRopeHeadDim;
    [JsonIgnore] public int RoutedExperts => NRoutedExperts ?? 0;
    [JsonIgnore] public int SharedIntermediateSize => MoeIntermediateSize * (NSharedExperts ?? 0);
    [JsonIgnore] public int ExpertGroups => NGroup ?? 1;
    [JsonIgnore] public int GroupsPerToken => TopkGroup ?? ExpertGroups;
    [JsonIgnore] public bool HasCorrectionBias => TopkMethod == "noaux_tc";
    [JsonIgnore] public bool UsesYarn => RopeScaling?.Kind == "yarn";

    /// HF: `n_routed_experts is not None and i >= first_k_dense_replace and i % moe_layer_freq == 0`.
    public bool IsMoeLayer(int layer) =>
        RoutedExperts > 0 && layer >= FirstKDenseReplace && layer % MoeLayerFreq == 0;

    /// Behaviour keys may be absent: they take the defaults transformers gives each model_type.
    internal static JsonObject WithDefaults(JsonObject file, bool v3)
    {
        var merged = new JsonObject
        {
            ["topk_method"] = v3 ? "noaux_tc" : "greedy",
            ["scoring_func"] = v3 ? "sigmoid" : "softmax",
            ["norm_topk_prob"] = v3,
            ["routed_scaling_factor"] = v3 ? 2.5 : 1.0,
            ["first_k_dense_replace"] = v3 ? 3 : 0,
            ["moe_layer_freq"] = 1,
        };
        foreach (var (key, value) in file) merged[key] = value?.DeepClone();
        return merged;
    }

    public override void Validate()
    {
        base.Validate();
        Require(KvLoraRank > 0, "kv_lora_rank must be > 0");
        Require(QLoraRank is null or > 0, "q_lora_rank must be null or > 0");
        Require(QkNopeHeadDim > 0, "qk_nope_head_dim must be > 0");
        Require(QkRopeHeadDim > 0 && QkRopeHeadDim % 2 == 0, "qk_rope_head_dim must be even and > 0");
        Require(VHeadDim > 0, "v_head_dim must be > 0");
        Require(!AttentionBias, "attention_bias true is not supported for DeepSeek models");
        RequireDimension((long)NumAttentionHeads * (QkNopeHeadDim + QkRopeHeadDim), "num_attention_heads × (qk_nope_head_dim + qk_rope_head_dim)");
        RequireDimension((long)NumAttentionHeads * (QkNopeHeadDim + VHeadDim), "num_attention_heads × (qk_nope_head_dim + v_head_dim)");
        RequireDimension((long)KvLoraRank + QkRopeHeadDim, "kv_lora_rank + qk_rope_head_dim");
        if (NSharedExperts is > 0) RequireDimension((long)MoeIntermediateSize * NSharedExperts.Value, "moe_intermediate_size × n_shared_experts");
        Require(NumNextnPredictLayers is >= 0 and <= 16, "num_nextn_predict_layers must be between 0 and 16");
        Require(FirstKDenseReplace >= 0, "first_k_dense_replace must be >= 0");
        Require(MoeLayerFreq >= 1, "moe_layer_freq must be >= 1");
        if (RoutedExperts > 0)
        {
            Require((long)RoutedExperts * (NumHiddenLayers + NumNextnPredictLayers) <= MaxExpertModules,
                $"n_routed_experts × layers must be at most {MaxExpertModules:N0}, got {(long)RoutedExperts * (NumHiddenLayers + NumNextnPredictLayers):N0}");
            Require(MoeIntermediateSize > 0, "moe_intermediate_size must be > 0");
            Require(NSharedExperts is null or >= 0, "n_shared_experts must be >= 0");
            Require(NumExpertsPerTok is > 0 && NumExpertsPerTok <= RoutedExperts,
                "num_experts_per_tok must be between 1 and n_routed_experts");
            Require(TopkMethod is "greedy" or "group_limited_greedy" or "noaux_tc",
                $"topk_method '{TopkMethod}' is not supported (greedy, group_limited_greedy, noaux_tc)");
            Require(ScoringFunc is "softmax" or "sigmoid", $"scoring_func '{ScoringFunc}' is not supported (softmax, sigmoid)");
            Require(ExpertGroups >= 1 && RoutedExperts % ExpertGroups == 0, "n_routed_experts must be divisible by n_group");
            Require(GroupsPerToken >= 1 && GroupsPerToken <= ExpertGroups, "topk_group must be between 1 and n_group");
            Require(NumExpertsPerTok <= GroupsPerToken * (RoutedExperts / ExpertGroups),
                "num_experts_per_tok exceeds the experts in topk_group groups");
            Require(!HasCorrectionBias || ExpertGroups == 1 || RoutedExperts / ExpertGroups >= 2,
                "noaux_tc group scores need at least 2 experts per group");
            Require(RoutedScalingFactor > 0, "routed_scaling_factor must be > 0");
        }
        if (RopeScaling is { } r)
        {
            Require(r.Kind is "yarn" or "default", $"rope_scaling type '{r.Kind}' is not supported for DeepSeek models (yarn)");
            if (r.Kind == "yarn")
            {
                Require(r.Factor >= 1, "rope_scaling.factor must be >= 1");
                Require(r.OriginalMaxPositionEmbeddings is > 0, "rope_scaling.original_max_position_embeddings is required for yarn");
            }
        }
    }
}
