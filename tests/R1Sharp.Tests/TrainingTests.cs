using System.Text.Json.Nodes;
using R1Sharp.Models;
using R1Sharp.Tokenization;
using R1Sharp.Training.Data;
using R1Sharp.Training.Tasks;
using R1Sharp.Training.Training;
using static TorchSharp.torch;

namespace R1Sharp.Tests;

public class TrainingTests
{
    /// A tiny MoE training setup in a temp folder: model config, one data source, train config.
    private static (string ConfigPath, string Dir) Setup(Action<JsonObject>? change = null, string? builtin = "arithmetic")
    {
        var dir = TestPaths.TempDir();
        var model = TinyModels.ConfigJson(c =>
        {
            c["vocab_size"] = ByteTokenizer.VocabSize; c["max_position_embeddings"] = 256; c["bos_token_id"] = 1; c["eos_token_id"] = 2;
        });
        File.WriteAllText(Path.Combine(dir, "model.json"), model.ToJsonString());
        var config = new JsonObject
        {
            ["name"] = "test", ["model"] = "model.json",
            ["data"] = new JsonObject { ["main"] = new JsonObject { ["builtin"] = builtin, ["examples"] = 400, ["difficulty"] = 2 } },
            ["seed"] = 3, ["steps"] = 8, ["batch_size"] = 4, ["seq_len"] = 48, ["lr"] = 0.003, ["warmup_steps"] = 2,
            ["eval_every"] = 4, ["eval_batches"] = 2, ["checkpoint_every"] = 4, ["keep_checkpoints"] = 3, ["plot_every"] = 4,
            ["bias_update_speed"] = 0.001, ["aux_loss_weight"] = 0.001, ["z_loss_weight"] = 0.0001,
        };
        change?.Invoke(config);
        var path = Path.Combine(dir, "train.json");
        File.WriteAllText(path, config.ToJsonString());
        return (path, dir);
    }

    private static List<JsonObject> TrainLines(string runDir) =>
        File.ReadLines(Path.Combine(runDir, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject()).Where(l => l["loss"] is not null).ToList();

    private static TrainSummary Train(string configPath, string runDir, bool resume = false, int? stopAfter = null, params string[] overrides)
    {
        var (config, resolved) = TrainConfig.Load(configPath, overrides);
        using var trainer = new Trainer(config, resolved, Path.GetDirectoryName(configPath)!, runDir, configPath);
        return trainer.Run(resume, stopAfter: stopAfter);
    }

    [Fact]
    public void ResumedRunGivesTheSameLossesAsAnUninterruptedOne()
    {
        var (config, dir) = Setup(c => c["augment"] = new JsonObject { ["replace"] = 0.05, ["delete"] = 0.05, ["span_mask"] = 0.05 });
        var straight = Path.Combine(dir, "straight");
        Train(config, straight);
        var resumed = Path.Combine(dir, "resumed");
        Train(config, resumed, stopAfter: 3);   // interrupted after 3 of 8 steps (checkpoints every 4, and at the stop)
        Train(config, resumed, resume: true);
        var a = TrainLines(straight);
        var b = TrainLines(resumed);
        Assert.Equal(8, a.Count);
        Assert.Equal(a.Select(l => (int)l["step"]!), b.Select(l => (int)l["step"]!));
        for (int i = 0; i < a.Count; i++)
            Assert.Equal((double)a[i]["loss"]!, (double)b[i]["loss"]!, 4);   // equal up to float reduction order (parallel tests share libtorch threads)
        Assert.Equal(["step-000003", "step-000004", "step-000008"], RunCheckpoints.Completed(resumed).Select(Path.GetFileName));
    }

    [Fact]
    public void TrainingOnTheBuiltinCorpusLowersValidationLossAndWritesTheRun()
    {
        var (config, dir) = Setup();
        var run = Path.Combine(dir, "run");
        var summary = Train(config, run, false, null, "steps=60", "eval_every=30", "plot_every=30", "checkpoint_every=30", "keep_checkpoints=1");
        Assert.True(summary.LastValLoss < summary.FirstValLoss * 0.6, $"validation loss {summary.FirstValLoss} -> {summary.LastValLoss}");
        foreach (var plot in new[] { "loss.png", "lr.png", "grad_norm.png", "expert_load.png", "expert_imbalance.png" })
            Assert.True(new FileInfo(Path.Combine(run, "plots", plot)).Length > 1000, plot);
        Assert.Single(RunCheckpoints.Completed(run));
        var checkpoint = RunCheckpoints.Latest(run)!;
        foreach (var file in new[] { "config.json", "model.safetensors", "tokenizer.json", "optimizer.bin", "trainer_state.json" })
            Assert.True(File.Exists(Path.Combine(checkpoint, file)), file);
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "manifest.json")))!;
        Assert.Contains(manifest["outputs"]!.AsObject(), p => p.Key.EndsWith("model.safetensors") && ((string)p.Value!).Length == 64);
        Assert.Contains(manifest["inputs"]!.AsObject(), p => p.Key.EndsWith("train.json"));
        var line = TrainLines(run)[^1];
        Assert.Equal(2, line["expert_load"]!.AsArray().Count);                         // two MoE layers
        Assert.Equal(1.0, line["expert_load"]![0]!.AsArray().Sum(v => (double)v!), 3);
    }

    [Fact]
    public void EveryObjectiveTermAndBf16MatmulsTrainTogether()
    {
        var (config, dir) = Setup(c =>
        {
            c["precision"] = "bf16"; c["mtp_weight"] = 0.3; c["contrastive_weight"] = 0.1; c["renormalize_experts"] = true;
            c["augment"] = new JsonObject { ["replace"] = 0.1, ["span_mask"] = 0.1 };
            c["stages"] = new JsonArray(
                new JsonObject { ["name"] = "short", ["steps"] = 2, ["seq_len"] = 24 },
                new JsonObject { ["name"] = "long", ["steps"] = 2, ["seq_len"] = 48, ["lr_scale"] = 0.5 });
        });
        var modelPath = Path.Combine(dir, "model.json");
        var model = JsonNode.Parse(File.ReadAllText(modelPath))!.AsObject();
        model["num_nextn_predict_layers"] = 1;
        File.WriteAllText(modelPath, model.ToJsonString());
        var run = Path.Combine(dir, "run");
        Train(config, run);
        var lines = TrainLines(run);
        Assert.Equal(["short", "short", "long", "long"], lines.Select(l => (string)l["stage"]!));
        Assert.All(lines, l => Assert.True((double)l["mtp"]! > 0 && (double)l["contrastive"]! > 0 && (double)l["aux"]! > 0));
        Assert.True((double)lines[2]["lr"]! < (double)lines[1]["lr"]!);
    }

    [Fact]
    public void MaskedTokensGetNoGradient()
    {
        var logits = randn([1, 6, 10], requires_grad: true);
        var targets = tensor(new long[] { 1, 2, 3, 4, 5, 6 }).view(1, 6);
        var mask = tensor(new float[] { 0, 0, 0, 1, 1, 1 }).view(1, 6);
        Trainer.MaskedCrossEntropy(logits, targets, mask).backward();
        var grad = logits.grad!;
        Assert.Equal(0f, grad.narrow(1, 0, 3).abs().sum().item<float>());
        Assert.True(grad.narrow(1, 3, 3).abs().sum().item<float>() > 0);
    }

    [Fact]
    public void ChatDocumentsLearnOnlyTheAssistantTurn()
    {
        var doc = Document.FromMessages([("user", "2+2="), ("assistant", "<answer>4</answer>")]);
        var text = ByteTokenizer.Instance.Decode(doc.Tokens.Select(t => (long)t));
        Assert.Equal("<|bos|><|user|>2+2=<|assistant|><answer>4</answer><|eos|>", text);
        var learned = ByteTokenizer.Instance.Decode(doc.Tokens.Where((_, i) => doc.LossMask[i] == 1).Select(t => (long)t));
        Assert.Equal("<answer>4</answer><|eos|>", learned);
    }

    [Fact]
    public void PrepareSplitsDeterministicallyAndRoundTripsText()
    {
        var dir = TestPaths.TempDir();
        var jsonl = Path.Combine(dir, "a.jsonl");
        File.WriteAllLines(jsonl, Enumerable.Range(0, 40).Select(i => $"{{\"text\":\"doc {i} 你好 🙂\"}}"));
        var first = DatasetPreparer.Write(DatasetPreparer.ReadFile(jsonl, DocumentEncoder.Byte), Path.Combine(dir, "one"), 0.1, 5, DocumentEncoder.Byte);
        DatasetPreparer.Write(DatasetPreparer.ReadFile(jsonl, DocumentEncoder.Byte), Path.Combine(dir, "two"), 0.1, 5, DocumentEncoder.Byte);
        Assert.Equal(4, (int)first["splits"]!["val"]!["documents"]!);
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "one", "val.tokens")), File.ReadAllBytes(Path.Combine(dir, "two", "val.tokens")));
        using var val = TokenDataset.Open(Path.Combine(dir, "one"), "val");
        var (tokens, _) = val.Read(0, (int)val.Length);
        var text = ByteTokenizer.Instance.Decode(tokens.Select(t => (long)t));
        Assert.Matches(@"^(<\|bos\|>doc \d+ 你好 🙂<\|eos\|>){4}$", text);

        File.WriteAllText(jsonl, "{\"text\":\"fine\"}\n{\"oops\":1}\n");
        var error = Assert.Throws<R1SharpException>(() => DatasetPreparer.Write(DatasetPreparer.ReadFile(jsonl, DocumentEncoder.Byte), Path.Combine(dir, "bad"), 0.1, 5, DocumentEncoder.Byte));
        Assert.Contains("a.jsonl:2", error.Message);
    }

    [Fact]
    public void LearningRateWarmsUpThenFollowsACosineToTheFloor()
    {
        Assert.Equal(0.1, LearningRateSchedule.At(0, 100, 1.0, 10, 0.1), 9);
        Assert.Equal(1.0, LearningRateSchedule.At(9, 100, 1.0, 10, 0.1), 9);
        Assert.Equal(1.0, LearningRateSchedule.At(10, 100, 1.0, 10, 0.1), 9);
        Assert.Equal(0.55, LearningRateSchedule.At(10 + 89 / 2.0 is var mid ? (int)mid : 0, 100, 1.0, 10, 0.1), 1);
        Assert.Equal(0.1, LearningRateSchedule.At(99, 100, 1.0, 10, 0.1), 9);
    }

    [Fact]
    public void LossFreeBalancingMovesBiasTowardsUnderloadedExperts()
    {
        using var model = TinyModels.Model();
        var gate = model.Layers[1].Moe!.Gate;
        var before = gate.CorrectionBias!.clone();
        var load = tensor(new float[] { 0.5f, 0.1f, 0.1f, 0.1f, 0.05f, 0.05f, 0.05f, 0.05f });
        MoeBalance.UpdateCorrectionBias(gate, load, 0.01);
        var change = (gate.CorrectionBias! - before).data<float>().ToArray();
        Assert.Equal(-0.01f, change[0], 6);    // over-loaded: lowered
        Assert.Equal(0.01f, change[7], 6);     // under-loaded: raised
    }

    [Fact]
    public void SequenceAuxLossIsOneWhenBalancedAndLargerWhenNot()
    {
        // 2 experts, k = 1, T = 4: balanced routing with uniform scores gives exactly 1.
        var scores = full(4, 2, 0.5f);
        var balanced = new Routing(ones(4, 1), tensor(new long[] { 0, 1, 0, 1 }).view(4, 1), zeros(4, 2), scores);
        Assert.Equal(1.0f, MoeBalance.SequenceAuxLoss([balanced], 1, 4, 2, 1).item<float>(), 5);
        var skewedScores = tensor(new float[] { 0.9f, 0.1f, 0.9f, 0.1f, 0.9f, 0.1f, 0.9f, 0.1f }).view(4, 2);
        var skewed = new Routing(ones(4, 1), zeros(4, 1, dtype: ScalarType.Int64), zeros(4, 2), skewedScores);
        Assert.True(MoeBalance.SequenceAuxLoss([skewed], 1, 4, 2, 1).item<float>() > 1.5f);
    }

    [Fact]
    public void DeletionKeepsOrderAndCorruptionOnlyTouchesInputs()
    {
        var a = new Augmentation { Delete = 0.3, Replace = 0.2, SpanMask = 0.2, SpanLength = 3 };
        var tokens = arange(100, 160, dtype: ScalarType.Int64).unsqueeze(0);
        var (kept, mask) = Augmenter.Delete(tokens, ones_like(tokens, dtype: ScalarType.Byte), 40, a, new Generator(1));
        var values = kept.data<long>().ToArray();
        Assert.Equal(40, values.Length);
        Assert.True(values.Zip(values.Skip(1)).All(p => p.First < p.Second), "deletion keeps order");
        Assert.True(values[^1] > 140, "deleted tokens were replaced by later ones");
        var corrupted = Augmenter.Corrupt(kept, a, new Generator(2), DocumentEncoder.Byte.AugmentationIds);
        var changed = (corrupted != kept).sum().item<long>();
        Assert.InRange(changed, 4, 30);
        Assert.True((corrupted == ByteTokenizer.Pad).sum().item<long>() > 0, "span masking writes <|pad|>");
    }

    [Fact]
    public void CountdownVerifierAcceptsEveryCorrectFormAndRejectsTheRest()
    {
        var task = new CountdownTask(4);
        var p = new TaskProblem("countdown", "", "", "", [25, 5, 3, 4], 64);
        foreach (var ok in new[] { "(25-5)*3+4", "4+(25-5)*3", "3*(25-5)+4", " ( 25 - 5 ) * 3 + 4 ", "4 + 3 × (25 − 5)".Replace('−', '-'), "(25-5)*3+4" })
            Assert.True(task.Verify(p, ok), ok);
        foreach (var bad in new[] { "(25-5)*3+5", "25*3-5-4-2", "(25-5)*3+4+0", "64", "(25-5)*3+", "25-5)*3+4", "", "(25-5)*(3+4)", "25/4*3", "4+4+4+4*25/5*3" })
            Assert.False(task.Verify(p, bad), bad);
        var random = new Random(1);
        for (int i = 0; i < 200; i++)
        {
            var generated = task.Generate(random);
            Assert.True(task.Verify(generated, generated.Answer), $"{generated.Prompt} -> {generated.Answer}");
        }
    }

    [Fact]
    public void ArithmeticProblemsCarryTheirOwnAnswers()
    {
        var task = new ArithmeticTask(4);
        var random = new Random(2);
        for (int i = 0; i < 200; i++)
        {
            var p = task.Generate(random);
            var parts = p.Prompt.TrimEnd('=', ' ').Split(' ');
            var expected = parts[1] == "+" ? long.Parse(parts[0]) + long.Parse(parts[2]) : long.Parse(parts[0]) - long.Parse(parts[2]);
            Assert.Equal(expected.ToString(), p.Answer);
            Assert.True(task.Verify(p, $" {expected} "));
            Assert.False(task.Verify(p, (expected + 1).ToString()));
        }
    }

    [Fact]
    public void BadTrainConfigsAreClearErrors()
    {
        var (config, _) = Setup(c => c["precision"] = "fp4");
        Assert.Contains("precision 'fp4' is not supported", Assert.Throws<R1SharpException>(() => TrainConfig.Load(config, [])).Message);
        var (other, _) = Setup(c => c["mixture"] = new JsonObject { ["nope"] = 1.0 });
        Assert.Contains("unknown data source 'nope'", Assert.Throws<R1SharpException>(() => TrainConfig.Load(other, [])).Message);
        Assert.Contains("--set expects key=value", Assert.Throws<R1SharpException>(() => TrainConfig.Load(other, ["lr"])).Message);
        Assert.Contains("unknown key 'learning_rat'", Assert.Throws<R1SharpException>(() => TrainConfig.Load(other, ["learning_rat=0.1"])).Message);
    }
}
