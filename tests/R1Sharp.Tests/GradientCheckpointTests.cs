using System.Text.Json.Nodes;
using R1Sharp.Checkpoints;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Tests;

public class GradientCheckpointTests
{
    private static Dictionary<string, Tensor?> Gradients(bool checkpointing, bool lora, bool moe = false)
    {
        // Sliding-window layers (qwen2-swa), or DeepSeek's MLA and routed experts.
        using var model = moe ? TinyModels.Model() : ModelIO.Load(Path.Combine(TestPaths.Fixtures, "dense", "qwen2-swa"));
        var extra = new List<(string, Tensor)>();
        if (lora)
        {
            foreach (var (name, w) in LoraAdapter.Attach(model, new LoraConfig { R = 2, TargetModules = new JsonArray("q_proj", "down_proj") }, 1))
            {
                using (no_grad()) w.B.normal_(0, 0.1, generator: new Generator(2));
                extra.Add((name + ".lora_A", w.A));
                extra.Add((name + ".lora_B", w.B));
            }
        }
        model.GradientCheckpointing = checkpointing;
        model.train();
        var ids = tensor(new long[] { 3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46, 26, 43, 38, 32, 79 }).view(2, 8) % model.Config.VocabSize;
        using var trace = new ForwardTrace();
        var logits = model.Forward(ids, trace: trace);
        if (model.Config is DeepSeekConfig c) Assert.Equal(Enumerable.Range(0, c.NumHiddenLayers).Count(c.IsMoeLayer), trace.Routing.Count);   // routed once per MoE layer, not again by the recomputation
        var loss = nn.functional.cross_entropy(logits[.., ..^1].reshape(-1, logits.shape[^1]), ids[.., 1..].reshape(-1));
        loss.backward();
        return model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, (Tensor)p.parameter)).Concat(extra)
            .ToDictionary(p => p.Item1, p => p.Item2.grad?.clone());   // none: an expert no token chose
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void CheckpointedLayersGiveTheSameGradients(bool lora, bool moe)
    {
        var plain = Gradients(false, lora, moe);
        var checkpointed = Gradients(true, lora, moe);
        Assert.Equal(plain.Keys.Order(), checkpointed.Keys.Order());
        Assert.True(plain.Values.Count(g => g is not null) > (lora ? 4 : 10));
        foreach (var (name, g) in plain)
        {
            Assert.Equal(g is null, checkpointed[name] is null);
            if (g is not null) Numerics.AssertClose(g, checkpointed[name]!, 1e-6, name);
        }
    }

    [Fact]
    public void TheRouterLossesThatNeedItsGradientsAreRefusedWithCheckpointing()
    {
        var config = new R1Sharp.Training.Training.TrainConfig { Model = "m", Data = new() { ["a"] = new() { Path = "d" } }, GradientCheckpointing = true, AuxLossWeight = 0.001 };
        Assert.Contains("aux_loss_weight and z_loss_weight need 0", Assert.Throws<R1SharpException>(config.Validate).Message);
    }
}
