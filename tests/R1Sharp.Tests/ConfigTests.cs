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
