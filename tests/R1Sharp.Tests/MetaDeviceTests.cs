using R1Sharp.Diagnostics;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Tests;

/// The real DeepSeek-V3 (671B) config built on the meta device: names and shapes only, nothing allocated.
[Collection(GlobalTorchState.Name)]
public class MetaDeviceTests
{
    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", name);

    [Fact]
    public void TheFull671BModelHasEveryHuggingFaceTensorWithItsShape()
    {
        var config = (DeepSeekConfig)ModelConfig.Load(Fixture("deepseek-v3-671b.config.json"));
        set_default_device(META);
        try
        {
            using var model = new DeepSeekForCausalLM(config);
            var shapes = model.state_dict().ToDictionary(p => p.Key, p => p.Value.shape);
            var golden = new Dictionary<string, long[]>
            {
                ["model.embed_tokens.weight"] = [129280, 7168],
                ["lm_head.weight"] = [129280, 7168],
                ["model.norm.weight"] = [7168],
                ["model.layers.0.input_layernorm.weight"] = [7168],
                ["model.layers.0.self_attn.q_a_proj.weight"] = [1536, 7168],
                ["model.layers.0.self_attn.q_a_layernorm.weight"] = [1536],
                ["model.layers.0.self_attn.q_b_proj.weight"] = [24576, 1536],
                ["model.layers.0.self_attn.kv_a_proj_with_mqa.weight"] = [576, 7168],
                ["model.layers.0.self_attn.kv_a_layernorm.weight"] = [512],
                ["model.layers.0.self_attn.kv_b_proj.weight"] = [32768, 512],
                ["model.layers.0.self_attn.o_proj.weight"] = [7168, 16384],
                ["model.layers.0.mlp.gate_proj.weight"] = [18432, 7168],
                ["model.layers.0.mlp.down_proj.weight"] = [7168, 18432],
                ["model.layers.3.mlp.gate.weight"] = [256, 7168],
                ["model.layers.3.mlp.gate.e_score_correction_bias"] = [256],
                ["model.layers.3.mlp.experts.255.up_proj.weight"] = [2048, 7168],
                ["model.layers.60.mlp.experts.0.down_proj.weight"] = [7168, 2048],
                ["model.layers.60.mlp.shared_experts.gate_proj.weight"] = [2048, 7168],
                ["model.layers.61.embed_tokens.weight"] = [129280, 7168],
                ["model.layers.61.enorm.weight"] = [7168],
                ["model.layers.61.hnorm.weight"] = [7168],
                ["model.layers.61.eh_proj.weight"] = [7168, 14336],
                ["model.layers.61.shared_head.norm.weight"] = [7168],
                ["model.layers.61.shared_head.head.weight"] = [129280, 7168],
                ["model.layers.61.mlp.experts.17.gate_proj.weight"] = [2048, 7168],
            };
            foreach (var (name, shape) in golden) Assert.Equal(shape, shapes[name]);
            // Per MoE layer: 7 attention + 2 norms + gate weight and bias + 256 x 3 experts + 3 shared = 782.
            var perLayer = (3 * 12) + (58 * 782) + (782 + 6) + 3;
            Assert.Equal(perLayer, shapes.Count);
            Assert.DoesNotContain(shapes.Keys, k => k.StartsWith("rope_"));
            var summary = ModelSummary.Of(model);
            Assert.InRange(summary.TotalParameters, 671_000_000_000, 671_100_000_000);
            Assert.InRange(summary.ActiveParameters, 37_000_000_000, 38_000_000_000);
        }
        finally
        {
            set_default_device(CPU);
        }
    }
}
