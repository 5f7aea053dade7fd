using System.Text.Json.Nodes;
using R1Sharp.Checkpoints;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Tests;

/// LoRA adapters in PEFT's layout: attach, save, load, merge, and what training touches.
public class LoraTests
{
    private static string Qwen2 => Path.Combine(TestPaths.Fixtures, "dense", "qwen2");
    private static readonly long[] Ids = [3, 14, 15, 9, 26, 5, 35, 8];

    private static Tensor Logits(CausalLM model)
    {
        using var noGrad = no_grad();
        return model.Forward(tensor(Ids).unsqueeze(0))[0].clone();
    }

    /// An adapter with random (non-zero) B, so it changes the model.
    private static string TrainedLookingAdapter(string[] targets, int r = 4)
    {
        using var model = ModelIO.Load(Qwen2);
        var config = new LoraConfig { R = r, Alpha = 8, TargetModules = new JsonArray(targets.Select(t => (JsonNode)t).ToArray()), BaseModel = Qwen2 };
        var adapters = LoraAdapter.Attach(model, config, seed: 5);
        using (no_grad())
            foreach (var (_, w) in adapters) w.B.normal_(0, 0.3, generator: new Generator(7));
        var dir = TestPaths.TempDir();
        LoraAdapter.Save(dir, config, adapters);
        return dir;
    }

    [Fact]
    public void MergedLogitsEqualBasePlusAdapterLogits()
    {
        var adapter = TrainedLookingAdapter(["q_proj", "v_proj", "down_proj"]);
        using var attached = ModelIO.Load(Qwen2);
        using var baseline = Logits(attached);
        LoraAdapter.Load(attached, adapter, trainable: false);
        using var withAdapter = Logits(attached);
        Assert.True((withAdapter - baseline).abs().max().item<float>() > 1e-2, "the adapter changes nothing");

        // Reference in float64: each adapted weight W + (alpha / r) · B A, computed directly.
        using var merged = ModelIO.Load(Qwen2);
        Assert.Equal(6, LoraAdapter.Merge(merged, adapter));   // 2 layers × 3 targets
        Numerics.AssertClose(withAdapter, Logits(merged), 1e-4, "merged vs attached");
        using var file = SafeTensorsFile.Open(Path.Combine(adapter, LoraAdapter.WeightsFile));
        using var original = ModelIO.Load(Qwen2);
        var name = "model.layers.1.self_attn.v_proj";
        var expected = original.state_dict()[name + ".weight"].to_type(ScalarType.Float64)
            + 2.0 * file.Read($"base_model.model.{name}.lora_B.weight").to_type(ScalarType.Float64).matmul(file.Read($"base_model.model.{name}.lora_A.weight").to_type(ScalarType.Float64));
        Numerics.AssertClose(expected, merged.state_dict()[name + ".weight"], 1e-6, "W + scale B A");

        // The command line: merge-lora writes a plain model; generate --adapter gives the merged model's tokens.
        var output = Path.Combine(TestPaths.TempDir(), "merged");
        var merge = CliTests.Run("merge-lora", Qwen2, adapter, "--out", output);
        Assert.True(merge.Code == 0, merge.Stderr);
        using (var reloaded = ModelIO.Load(output)) Numerics.AssertClose(withAdapter, Logits(reloaded), 1e-4, "merge-lora output");
        var viaAdapter = CliTests.Run("generate", Qwen2, "--ids", "3,14,15", "--adapter", adapter, "--greedy", "--max-new-tokens", "6", "--json");
        var viaMerged = CliTests.Run("generate", output, "--ids", "3,14,15", "--greedy", "--max-new-tokens", "6", "--json");
        Assert.True(viaAdapter.Code == 0, viaAdapter.Stderr);
        Assert.Equal(viaMerged.Stdout, viaAdapter.Stdout);
    }

    /// Attached (unmerged) adapters must reach every path that reads weights directly: the fused SwiGLU
    /// and MoE kernels of decoding, MLA's absorbed attention. Attached equals merged, decoding and prefill.
    [Theory]
    [InlineData("dense", "gate_proj")]
    [InlineData("dense", "down_proj")]
    [InlineData("dense", "q_proj")]
    [InlineData("moe", "up_proj")]
    [InlineData("moe", "kv_b_proj")]
    [InlineData("moe", "all-linear")]
    public void AttachedAdaptersEqualMergedOnEveryPath(string family, string target)
    {
        var dir = Qwen2;
        if (family == "moe")
        {
            dir = TestPaths.TempDir();
            using var m = TinyModels.Model();
            ModelIO.Save(m, dir);
        }
        using var attached = ModelIO.Load(dir);
        var config = new LoraConfig { R = 4, Alpha = 8, TargetModules = target == "all-linear" ? JsonValue.Create(target) : new JsonArray(target), BaseModel = dir };
        var adapters = LoraAdapter.Attach(attached, config, seed: 5);
        using (no_grad())
            foreach (var (_, w) in adapters) w.B.normal_(0, 0.3, generator: new Generator(7));
        var adapter = TestPaths.TempDir();
        LoraAdapter.Save(adapter, config, adapters);
        using var merged = ModelIO.Load(dir);
        LoraAdapter.Merge(merged, adapter);
        using var noGrad = no_grad();
        foreach (var length in new[] { 1, 5, 24 })   // few rows take the kernels, many take libtorch
        {
            var ids = tensor(Enumerable.Range(0, length).Select(i => (long)(3 + 7 * i % 60)).ToArray()).unsqueeze(0);
            Numerics.AssertClose(merged.Forward(ids), attached.Forward(ids), 1e-4, $"{family} {target}, {length} tokens");
        }
        LoraAdapter.SetEnabled(attached, false);
        using var plain = ModelIO.Load(dir);
        var one = tensor(new long[] { 3, 14 }).unsqueeze(0);
        Numerics.AssertClose(plain.Forward(one), attached.Forward(one), 1e-5, "adapters switched off: the base");
    }

    [Fact]
    public void AnAdapterWrittenAsPeftWritesItLoads()
    {
        // PEFT's own adapter_config.json keys (more than R1Sharp writes) and tensor names, built here by hand.
        var dir = TestPaths.TempDir();
        File.WriteAllText(Path.Combine(dir, LoraAdapter.ConfigFile), """
            {"alpha_pattern": {}, "auto_mapping": null, "base_model_name_or_path": "Qwen/Qwen2.5-0.5B-Instruct", "bias": "none",
             "fan_in_fan_out": false, "inference_mode": true, "init_lora_weights": true, "layers_pattern": null, "layers_to_transform": null,
             "lora_alpha": 16, "lora_dropout": 0.05, "modules_to_save": null, "peft_type": "LORA", "r": 2, "rank_pattern": {},
             "revision": null, "target_modules": ["k_proj", "o_proj"], "task_type": "CAUSAL_LM", "use_dora": false, "use_rslora": false}
            """);
        var rng = new Generator(3);
        var tensors = new List<(string, Tensor)>();
        foreach (var layer in new[] { 0, 1 })
        {
            tensors.Add(($"base_model.model.model.layers.{layer}.self_attn.k_proj.lora_A.weight", randn(2, 32, generator: rng)));
            tensors.Add(($"base_model.model.model.layers.{layer}.self_attn.k_proj.lora_B.weight", randn(16, 2, generator: rng)));
            tensors.Add(($"base_model.model.model.layers.{layer}.self_attn.o_proj.lora_A.weight", randn(2, 32, generator: rng)));
            tensors.Add(($"base_model.model.model.layers.{layer}.self_attn.o_proj.lora_B.weight", randn(32, 2, generator: rng)));
        }
        SafeTensorsWriter.Write(Path.Combine(dir, LoraAdapter.WeightsFile), tensors);
        using var model = ModelIO.Load(Qwen2);
        Assert.Equal(4, LoraAdapter.Load(model, dir, trainable: false).Count);
        Assert.Equal(8.0, LoraAdapter.ReadConfig(dir).Scale);

        // Shapes that do not fit the base, names the model lacks, targets that match nothing: one clear error each.
        tensors[1] = (tensors[1].Item1, randn(15, 2));
        SafeTensorsWriter.Write(Path.Combine(dir, LoraAdapter.WeightsFile), tensors);
        using var other = ModelIO.Load(Qwen2);
        Assert.Contains("do not fit the base layer [16, 32] with r 2", Assert.Throws<R1SharpException>(() => LoraAdapter.Load(other, dir, false)).Message);
        tensors[1] = (tensors[1].Item1, randn(16, 2));
        tensors.Add(("base_model.model.model.layers.9.mlp.up_proj.lora_A.weight", randn(2, 32)));
        SafeTensorsWriter.Write(Path.Combine(dir, LoraAdapter.WeightsFile), tensors);
        Assert.Contains("match no target layer", Assert.Throws<R1SharpException>(() => LoraAdapter.Merge(other, dir)).Message);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, LoraAdapter.ConfigFile)))!.AsObject();
        config["target_modules"] = new JsonArray("c_attn");
        File.WriteAllText(Path.Combine(dir, LoraAdapter.ConfigFile), config.ToJsonString());
        Assert.Contains("match no linear layer", Assert.Throws<R1SharpException>(() => LoraAdapter.Merge(other, dir)).Message);
        // PEFT's string form of target_modules is a regular expression over the whole module name.
        tensors.RemoveAt(tensors.Count - 1);
        SafeTensorsWriter.Write(Path.Combine(dir, LoraAdapter.WeightsFile), tensors);
        config["target_modules"] = @"model\.layers\.\d+\.self_attn\.(k|o)_proj";
        File.WriteAllText(Path.Combine(dir, LoraAdapter.ConfigFile), config.ToJsonString());
        Assert.Equal(4, LoraAdapter.Merge(other, dir));
        config["target_modules"] = @"model\.layers\.1\.self_attn\.(k|o)_proj";
        File.WriteAllText(Path.Combine(dir, LoraAdapter.ConfigFile), config.ToJsonString());
        Assert.Contains("match no target layer", Assert.Throws<R1SharpException>(() => LoraAdapter.Merge(other, dir)).Message);   // layer 0's tensors are left over
        // Variations that would change the merge are refused rather than ignored.
        foreach (var (key, value, message) in new (string, JsonNode, string)[]
        {
            ("use_dora", true, "DoRA"), ("rank_pattern", new JsonObject { ["k_proj"] = 4 }, "rank_pattern"), ("layers_to_transform", new JsonArray(0), "layers_to_transform"),
        })
        {
            var variant = config.DeepClone().AsObject();
            variant[key] = value;
            File.WriteAllText(Path.Combine(dir, LoraAdapter.ConfigFile), variant.ToJsonString());
            Assert.Contains(message, Assert.Throws<R1SharpException>(() => LoraAdapter.ReadConfig(dir)).Message);
        }
        config["peft_type"] = "IA3";
        File.WriteAllText(Path.Combine(dir, LoraAdapter.ConfigFile), config.ToJsonString());
        var cli = CliTests.Run("generate", Qwen2, "--ids", "3", "--adapter", dir);
        Assert.Equal(2, cli.Code);
        Assert.Contains("peft_type 'IA3' is not LORA", cli.Stderr);
    }

    [Fact]
    public void LoraTrainingTouchesOnlyTheAdapters()
    {
        var dir = TestPaths.TempDir();
        var config = new JsonObject
        {
            ["model"] = "", ["init_from"] = "",
            ["data"] = new JsonObject { ["a"] = new JsonObject { ["builtin"] = "arithmetic", ["examples"] = 200, ["difficulty"] = 1 } },
            ["steps"] = 3, ["batch_size"] = 2, ["seq_len"] = 32, ["eval_every"] = 3, ["eval_batches"] = 1, ["checkpoint_every"] = 3,
            ["lora"] = new JsonObject { ["r"] = 4, ["alpha"] = 8, ["target_modules"] = new JsonArray("q_proj", "up_proj") },
        };
        // The fixture's vocabulary (96) is smaller than the byte tokenizer's: give the run a model that fits it.
        var model = Path.Combine(dir, "base");
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(Qwen2, "config.json")))!.AsObject();
        json["vocab_size"] = R1Sharp.Tokenization.ByteTokenizer.VocabSize;
        using (var m = ModelIO.Create(ModelConfig.Parse(json.ToJsonString())))
        {
            ModelIO.Initialize(m, 3);
            ModelIO.Save(m, model);
        }
        config["model"] = Path.Combine(model, "config.json");
        config["init_from"] = model;
        var path = Path.Combine(dir, "train.json");
        File.WriteAllText(path, config.ToJsonString());
        var (trainConfig, resolved) = R1Sharp.Training.Training.TrainConfig.Load(path, []);
        using var before = ModelIO.Load(model);
        using (var trainer = new R1Sharp.Training.Training.Trainer(trainConfig, resolved, dir, Path.Combine(dir, "run")))
        {
            trainer.Run(false);
            foreach (var (name, p) in trainer.Model.named_parameters())
            {
                Assert.False(p.requires_grad, name);
                Assert.True(p.grad is null, $"{name} has a gradient");
                Numerics.AssertClose(before.state_dict()[name], p, 0, $"{name} changed");
            }
        }
        var checkpoint = Path.Combine(dir, "run", "checkpoints", "step-000003");
        Assert.True(File.Exists(Path.Combine(checkpoint, LoraAdapter.WeightsFile)));
        Assert.False(File.Exists(Path.Combine(checkpoint, "model.safetensors")), "a LoRA checkpoint does not copy the frozen base");
        var adapterBytes = new FileInfo(Path.Combine(checkpoint, LoraAdapter.WeightsFile)).Length;
        // Adam keeps two moments per trained value: of the adapters only (a full model's would be far larger).
        Assert.InRange(new FileInfo(Path.Combine(checkpoint, "optimizer.bin")).Length, adapterBytes, 3 * adapterBytes + 65536);
        Assert.Equal(["q_proj", "up_proj"], LoraAdapter.ReadConfig(checkpoint).Targets);
        // The adapter moved: merged into the base it changes the logits.
        using var merged = ModelIO.Load(model);
        LoraAdapter.Merge(merged, checkpoint);
        Assert.True((Logits(merged) - Logits(before)).abs().max().item<float>() > 0);
    }
}
