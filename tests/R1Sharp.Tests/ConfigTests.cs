using R1Sharp.Checkpoints;
using R1Sharp.Diagnostics;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Tests;

public class ConfigTests
{
    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", name);

    [Fact]
    public void ReadsTheRealDeepSeekV3Config()
    {
        var c = (DeepSeekConfig)ModelConfig.Load(Fixture("deepseek-v3-671b.config.json"));
        Assert.Equal((7168, 61, 256, 8, 8, 4), (c.HiddenSize, c.NumHiddenLayers, c.RoutedExperts, c.NumExpertsPerTok!.Value, c.ExpertGroups, c.GroupsPerToken));
        Assert.Equal(("noaux_tc", "sigmoid", true, 2.5), (c.TopkMethod, c.ScoringFunc, c.NormTopkProb, c.RoutedScalingFactor));
        Assert.Equal(1536, c.QLoraRank);
        Assert.Equal("yarn", c.RopeScaling!.Kind);
        Assert.Equal("fp8", c.QuantizationConfig!.QuantMethod);
        Assert.Equal([1], c.EosTokenIds!);
        Assert.False(c.IsMoeLayer(2));
        Assert.True(c.IsMoeLayer(3));
    }

    [Fact]
    public void KimiK2LoadsAsTheDeepSeekV3ArchitectureItIs()
    {
        // Kimi K2's config.json is DeepSeek-V3's with its own model_type and sizes (384 experts, 1 group, 64 heads).
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Fixture("deepseek-v3-671b.config.json")))!.AsObject();
        json["model_type"] = "kimi_k2";
        (json["n_routed_experts"], json["n_group"], json["topk_group"], json["num_attention_heads"], json["num_key_value_heads"], json["first_k_dense_replace"], json["routed_scaling_factor"])
            = (384, 1, 1, 64, 64, 1, 2.827);
        var c = (DeepSeekConfig)ModelConfig.Parse(json.ToJsonString());
        Assert.Equal((384, 8, 1, 1, 64), (c.RoutedExperts, c.NumExpertsPerTok!.Value, c.ExpertGroups, c.GroupsPerToken, c.NumAttentionHeads));
        Assert.Equal(("noaux_tc", "sigmoid", 2.827), (c.TopkMethod, c.ScoringFunc, c.RoutedScalingFactor));
        Assert.True(c.IsMoeLayer(1));
        Assert.False(c.IsMoeLayer(0));
    }

    [Fact]
    public void ReadsDeepSeekV2LiteWithoutQLora()
    {
        var c = (DeepSeekConfig)ModelConfig.Load(Fixture("deepseek-v2-lite.config.json"));
        Assert.Null(c.QLoraRank);
        Assert.Equal(("greedy", "softmax", false), (c.TopkMethod, c.ScoringFunc, c.NormTopkProb));
        Assert.False(c.HasCorrectionBias);
    }

    public static TheoryData<string, string> BadConfigs() => new()
    {
        { """{"model_type":"gpt2","vocab_size":1}""", "model_type 'gpt2' is not supported" },
        { """{"vocab_size":1}""", "missing required key model_type" },
        { "{not json", "not valid JSON" },
        { Without("kv_lora_rank"), "missing required key(s): kv_lora_rank" },
        { With("hidden_size", "\"big\""), "invalid value at $.hidden_size" },
        { With("scoring_func", "\"relu\""), "scoring_func 'relu' is not supported" },
        { With("topk_method", "\"random\""), "topk_method 'random' is not supported" },
        { With("n_group", "3"), "n_routed_experts must be divisible by n_group" },
        { With("rope_scaling", """{"type":"dynamic","factor":2}"""), "rope_scaling type 'dynamic' is not supported" },
        { With("quantization_config", """{"quant_method":"gptq"}"""), "quant_method 'gptq' is not supported" },
        { With("hidden_act", "\"gelu\""), "hidden_act 'gelu' is not supported" },
        { With("qk_rope_head_dim", "3"), "qk_rope_head_dim must be even" },
    };

    private static string With(string key, string json)
    {
        var c = TinyModels.ConfigJson();
        c[key] = System.Text.Json.Nodes.JsonNode.Parse(json);
        return c.ToJsonString();
    }

    private static string Without(string key)
    {
        var c = TinyModels.ConfigJson();
        c.Remove(key);
        return c.ToJsonString();
    }

    [Theory, MemberData(nameof(BadConfigs))]
    public void BadConfigsAreOneClearError(string json, string message)
    {
        var error = Assert.Throws<R1SharpException>(() => ModelConfig.Parse(json));
        Assert.Contains(message, error.Message);
    }

    [Fact]
    public void EosMayBeAListAndRopeTypeAnAlias()
    {
        var c = TinyModels.Config(j =>
        {
            j["eos_token_id"] = new System.Text.Json.Nodes.JsonArray(1, 7);
            j["rope_scaling"] = System.Text.Json.Nodes.JsonNode.Parse("""{"rope_type":"yarn","factor":4,"original_max_position_embeddings":16}""");
        });
        Assert.Equal([1, 7], c.EosTokenIds!);
        Assert.True(c.UsesYarn);
    }
}
