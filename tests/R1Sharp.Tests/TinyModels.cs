using System.Text.Json.Nodes;
using R1Sharp.Checkpoints;
using R1Sharp.Models;

namespace R1Sharp.Tests;

/// Small DeepSeek models built in code from a fixed seed.
static class TinyModels
{
    public static JsonObject ConfigJson(Action<JsonObject>? change = null)
    {
        var json = new JsonObject
        {
            ["model_type"] = "deepseek_v3",
            ["vocab_size"] = 64, ["hidden_size"] = 32, ["intermediate_size"] = 48, ["moe_intermediate_size"] = 16,
            ["num_hidden_layers"] = 3, ["first_k_dense_replace"] = 1, ["num_attention_heads"] = 2,
            ["n_routed_experts"] = 8, ["n_shared_experts"] = 1, ["num_experts_per_tok"] = 2,
            ["n_group"] = 4, ["topk_group"] = 2, ["topk_method"] = "noaux_tc", ["scoring_func"] = "sigmoid",
            ["norm_topk_prob"] = true, ["routed_scaling_factor"] = 2.5, ["moe_layer_freq"] = 1,
            ["q_lora_rank"] = 24, ["kv_lora_rank"] = 16, ["qk_nope_head_dim"] = 8, ["qk_rope_head_dim"] = 4, ["v_head_dim"] = 8,
            ["max_position_embeddings"] = 128, ["rope_theta"] = 10000.0, ["rms_norm_eps"] = 1e-6,
            ["bos_token_id"] = 0, ["eos_token_id"] = 1, ["tie_word_embeddings"] = false, ["num_nextn_predict_layers"] = 0,
        };
        change?.Invoke(json);
        return json;
    }

    public static DeepSeekConfig Config(Action<JsonObject>? change = null) => (DeepSeekConfig)ModelConfig.Parse(ConfigJson(change).ToJsonString());

    /// A randomly initialised model; weights drawn with a larger spread than HF's so routing and
    /// attention are far from uniform.
    public static DeepSeekForCausalLM Model(Action<JsonObject>? change = null, long seed = 7, double std = 0.2)
    {
        var model = new DeepSeekForCausalLM(Config(change));
        ModelIO.Initialize(model, seed, std);
        using (TorchSharp.torch.no_grad())
            foreach (var (name, p) in model.named_parameters())
                if (name.EndsWith("e_score_correction_bias")) p.copy_(TorchSharp.torch.linspace(-0.05, 0.05, p.shape[0]));
        model.eval();
        return model;
    }
}
