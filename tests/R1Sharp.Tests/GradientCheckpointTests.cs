using System.Text.Json.Nodes;
using R1Sharp.Checkpoints;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Tests;

public class GradientCheckpointTests
{
    private static Dictionary<string, Tensor> Gradients(bool checkpointing, bool lora)
    {
        using var model = ModelIO.Load(Path.Combine(TestPaths.Fixtures, "dense", "qwen2-swa"));   // sliding-window layers too
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
        var ids = tensor(new long[] { 3, 14, 15, 92 % 96, 65, 35, 89, 79, 32, 38, 46, 26, 43, 38, 32, 79 }).view(2, 8);
        var logits = model.Forward(ids);
        var loss = nn.functional.cross_entropy(logits[.., ..^1].reshape(-1, logits.shape[^1]), ids[.., 1..].reshape(-1));
        loss.backward();
        return model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, (Tensor)p.parameter)).Concat(extra)
            .ToDictionary(p => p.Item1, p => p.Item2.grad!.clone());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void CheckpointedLayersGiveTheSameGradients(bool lora)
    {
        var plain = Gradients(false, lora);
        var checkpointed = Gradients(true, lora);
        Assert.Equal(plain.Keys.Order(), checkpointed.Keys.Order());
        Assert.True(plain.Count > (lora ? 4 : 10));
        foreach (var (name, g) in plain) Numerics.AssertClose(g, checkpointed[name], 1e-6, name);
    }

    [Fact]
    public void FamiliesWithoutItRefuseClearly()
    {
        using var model = TinyModels.Model();
        Assert.Contains("gradient_checkpointing is not available for model_type deepseek_v3", Assert.Throws<R1SharpException>(() => model.GradientCheckpointing = true).Message);
    }
}
