using System.Text.Json.Nodes;
using R1Sharp.Checkpoints;
using R1Sharp.Models;
using R1Sharp.Tokenization;
using R1Sharp.Training.Rl;
using R1Sharp.Training.Tasks;

namespace R1Sharp.Tests;

/// GRPO beyond the built-in byte models: a model folder's own tokenizer and chat template, problems
/// from the user's JSONL, the math verifier, an external reward command, TRL's option names.
public class RealModelGrpoTests
{
    private static readonly TaskProblem Four = new("data", "What is 2+2?", "", "4");

    /// A random tiny dense model carrying a real tokenizer and chat template from the test cache.
    /// `std`: the initialisation's spread (a LoRA run trains neither the embeddings nor the norms, so
    /// a random base needs room in its logits, as a pretrained one has).
    public static string TinyModelWithTokenizer(string reference, string modelType = "qwen2", int hidden = 32, double std = 0.02)
    {
        var source = TestPaths.ReferenceTokenizer(reference);
        var tokenizer = PretrainedTokenizer.Load(source);
        var dir = TestPaths.TempDir();
        var config = ModelConfig.Parse(new JsonObject
        {
            ["model_type"] = modelType, ["vocab_size"] = tokenizer.VocabSize, ["hidden_size"] = hidden, ["intermediate_size"] = 2 * hidden,
            ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4, ["num_key_value_heads"] = 2, ["max_position_embeddings"] = 512,
            ["tie_word_embeddings"] = true, ["eos_token_id"] = tokenizer.EosId,
        }.ToJsonString());
        using (var model = ModelIO.Create(config))
        {
            ModelIO.Initialize(model, 3, std);
            ModelIO.Save(model, dir);
        }
        foreach (var file in new[] { "tokenizer.json", "tokenizer_config.json" }) File.Copy(Path.Combine(source, file), Path.Combine(dir, file));
        return dir;
    }

    [Theory]
    [InlineData("qwen2_5", "qwen2", null)]
    [InlineData("qwen3", "qwen3", false)]
    public void PromptsGoThroughTheModelsChatTemplate(string reference, string modelType, bool? thinking)
    {
        var dir = TinyModelWithTokenizer(reference, modelType);
        var config = ModelConfig.Load(dir);
        var format = Assert.IsType<ChatPromptFormat>(PromptFormat.For(dir, config, new ChatPromptOptions(Instruction: "Put the final answer in \\boxed{}.", EnableThinking: thinking)));
        var text = format.Decode(format.Prompt(Four));
        Assert.StartsWith("<|im_start|>", text);
        Assert.Contains("<|im_start|>user\nWhat is 2+2?\nPut the final answer in \\boxed{}.<|im_end|>", text);
        Assert.Contains("<|im_start|>assistant\n", text);
        if (thinking == false) Assert.EndsWith("<think>\n\n</think>\n\n", text);   // Qwen3's template closes thinking when it is off
        Assert.Contains((long)format.Tokenizer.EosId!, format.StopIds);
        // R1Sharp's own byte-level models keep their built-in format.
        var bytes = TestPaths.TempDir();
        using (var model = TinyModels.Model(c => c["vocab_size"] = ByteTokenizer.VocabSize)) ModelIO.Save(model, bytes);
        ByteTokenizer.Instance.Save(bytes);
        Assert.IsType<BytePromptFormat>(PromptFormat.For(bytes, ModelConfig.Load(bytes), new ChatPromptOptions()));
    }

    [Fact]
    public void GrpoRunsOnAModelFolderWithItsTokenizerAndUserData()
    {
        var model = TinyModelWithTokenizer("qwen2_5");
        var dir = TestPaths.TempDir();
        var data = Path.Combine(dir, "problems.jsonl");
        File.WriteAllLines(data, Enumerable.Range(1, 12).Select(i => new JsonObject { ["prompt"] = $"What is {i} + {i}?", ["answer"] = (2 * i).ToString() }.ToJsonString())
            .Append(new JsonObject { ["messages"] = new JsonArray(new JsonObject { ["role"] = "system", ["content"] = "Be brief." }, new JsonObject { ["role"] = "user", ["content"] = "What is 3 * 3?" }), ["answer"] = 9 }.ToJsonString()));
        var config = new JsonObject
        {
            ["init_from"] = model, ["data"] = "problems.jsonl", ["instruction"] = "Put the final answer in \\boxed{}.",
            ["steps"] = 2, ["prompts_per_step"] = 2, ["num_generations"] = 2, ["max_completion_length"] = 6, ["eval_every"] = 2, ["eval_problems"] = 2,
            ["rewards"] = new JsonObject { ["math"] = 1.0, ["external"] = 0.5 }, ["reward_command"] = "while read -r line; do echo 0.25; done",
        };
        File.WriteAllText(Path.Combine(dir, "grpo.json"), config.ToJsonString());
        var run = CliTests.Run("grpo", "--config", Path.Combine(dir, "grpo.json"), "--out", Path.Combine(dir, "run"));
        Assert.True(run.Code == 0, run.Stderr);
        var lines = File.ReadAllLines(Path.Combine(dir, "run", "metrics.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        var steps = lines.Where(l => l["reward"] is not null).ToList();
        Assert.Equal(2, steps.Count);
        // The random model never boxes the right answer: the reward is the external command's 0.25 × 0.5.
        Assert.All(steps, s => Assert.Equal(0.125, (double)s["reward"]!, 6));
        Assert.All(steps, s => Assert.Equal(0, (int)s["external_abstained"]!));
        Assert.Equal(2, lines.Count(l => l["eval_pass1"] is not null));
        Assert.True(File.Exists(Path.Combine(dir, "run", "checkpoints", "step-000002", "model.safetensors")));
    }

    /// The recipe end to end on a random model with a real tokenizer and chat template: SFT through the
    /// template teaches the `\boxed{6|7|8}` answer format (validation loss falls), then GRPO with the math
    /// verifier, where the "right" digit is always 7 (a third of the SFT answers), raises the mean reward.
    [Theory]
    [InlineData("qwen2_5", "qwen2", false)]
    [InlineData("qwen3", "qwen3", false)]
    [InlineData("qwen2_5", "qwen2", true)]
    public void SftThroughTheTemplateThenGrpoWithTheMathVerifierLearns(string reference, string modelType, bool lora)
    {
        // With LoRA: adapters on every projection for SFT, merged into the base (merge-lora), then new adapters for GRPO.
        JsonNode? Lora() => lora ? new JsonObject { ["r"] = 8, ["alpha"] = 16, ["target_modules"] = "all-linear" } : null;
        var model = TinyModelWithTokenizer(reference, modelType, hidden: 64, std: lora ? 0.25 : 0.02);
        var dir = TestPaths.TempDir();
        var random = new Random(0);
        File.WriteAllLines(Path.Combine(dir, "sft.jsonl"), Enumerable.Range(0, 400).Select(_ =>
            new JsonObject { ["prompt"] = "Pick a digit.", ["completion"] = $"\\boxed{{{6 + random.Next(3)}}}" }.ToJsonString()));
        File.WriteAllLines(Path.Combine(dir, "lucky.jsonl"), Enumerable.Range(0, 40).Select(_ => """{"prompt": "Pick a digit.", "answer": "7"}"""));
        var prepare = CliTests.Run("prepare", Path.Combine(dir, "sft.jsonl"), "--tokenizer", model, "--out", Path.Combine(dir, "data"));
        Assert.True(prepare.Code == 0, prepare.Stderr);

        File.WriteAllText(Path.Combine(dir, "sft.json"), new JsonObject
        {
            ["init_from"] = model, ["model"] = Path.Combine(model, "config.json"), ["data"] = new JsonObject { ["a"] = new JsonObject { ["path"] = "data" } },
            ["steps"] = 50, ["batch_size"] = 4, ["seq_len"] = 64, ["lr"] = lora ? 0.02 : 0.01, ["warmup_steps"] = 5, ["eval_every"] = 25, ["eval_batches"] = 2,
            ["checkpoint_every"] = 1000, ["plot_every"] = 1000, ["lora"] = Lora(),
        }.ToJsonString());
        var sft = CliTests.Run("train", "--config", Path.Combine(dir, "sft.json"), "--out", Path.Combine(dir, "sft"));
        Assert.True(sft.Code == 0, sft.Stderr);
        var val = Metrics(Path.Combine(dir, "sft")).Where(l => l["val_loss"] is not null).Select(l => (double)l["val_loss"]!).ToList();
        Assert.True(val[^1] < val[0] - 5, $"validation loss {val[0]} -> {val[^1]}");
        var checkpoint = Path.Combine(dir, "sft", "checkpoints", "step-000050");
        Assert.Equal(File.ReadAllText(Path.Combine(model, "tokenizer.json")), File.ReadAllText(Path.Combine(checkpoint, "tokenizer.json")));
        if (lora)
        {
            Assert.True(File.Exists(Path.Combine(checkpoint, "adapter_model.safetensors")), "a LoRA checkpoint is a PEFT adapter");
            var merge = CliTests.Run("merge-lora", model, checkpoint, "--out", Path.Combine(dir, "merged"));
            Assert.True(merge.Code == 0, merge.Stderr);
            checkpoint = Path.Combine(dir, "merged");
        }

        File.WriteAllText(Path.Combine(dir, "grpo.json"), new JsonObject
        {
            ["init_from"] = checkpoint, ["data"] = "lucky.jsonl", ["steps"] = 20, ["prompts_per_step"] = 2, ["num_generations"] = 8,
            ["max_completion_length"] = 16, ["lr"] = lora ? 0.01 : 0.001, ["beta"] = 0.04, ["rewards"] = new JsonObject { ["math"] = 1.0 },
            ["eval_every"] = 100, ["eval_problems"] = 4, ["checkpoint_every"] = 100,
            // Qwen3 with thinking off: its template writes the empty think block into the prompt, as its users run it.
            ["enable_thinking"] = modelType == "qwen3" ? false : null, ["lora"] = Lora(),
        }.ToJsonString());
        var grpo = CliTests.Run("grpo", "--config", Path.Combine(dir, "grpo.json"), "--out", Path.Combine(dir, "grpo"));
        Assert.True(grpo.Code == 0, grpo.Stderr);
        var rewards = Metrics(Path.Combine(dir, "grpo")).Where(l => l["reward"] is not null).Select(l => (double)l["reward"]!).ToList();
        Assert.Equal(20, rewards.Count);
        Assert.True(rewards.TakeLast(5).Average() > rewards.Take(5).Average() + 0.15, "rewards: " + string.Join(", ", rewards));
    }

    [Fact]
    public void GrpoWithLoraTrainsAdaptersAgainstTheBaseAsReference()
    {
        var model = TinyModelWithTokenizer("qwen2_5");
        var dir = TestPaths.TempDir();
        File.WriteAllLines(Path.Combine(dir, "p.jsonl"), Enumerable.Range(0, 10).Select(i => new JsonObject { ["prompt"] = $"{i}+1?", ["answer"] = $"{i + 1}" }.ToJsonString()));
        File.WriteAllText(Path.Combine(dir, "grpo.json"), new JsonObject
        {
            ["init_from"] = model, ["data"] = "p.jsonl", ["steps"] = 2, ["prompts_per_step"] = 2, ["num_generations"] = 4, ["max_completion_length"] = 6,
            ["beta"] = 0.1, ["lr"] = 0.01, ["eval_every"] = 100, ["eval_problems"] = 2, ["checkpoint_every"] = 2, ["mask_truncated_completions"] = false,
            ["rewards"] = new JsonObject { ["external"] = 1.0 }, ["reward_command"] = "n=0; while read -r line; do n=$((n+1)); echo $((n % 2)); done",
            ["lora"] = new JsonObject { ["r"] = 4, ["target_modules"] = new JsonArray("q_proj", "down_proj") },
        }.ToJsonString());
        var run = CliTests.Run("grpo", "--config", Path.Combine(dir, "grpo.json"), "--out", Path.Combine(dir, "run"));
        Assert.True(run.Code == 0, run.Stderr);
        var steps = Metrics(Path.Combine(dir, "run")).Where(l => l["kl"] is not null).ToList();
        Assert.Equal(0, (double)steps[0]["kl"]!, 6);            // before any update the adapters are zero: policy == reference
        Assert.True((double)steps[1]["kl"]! > 0, "after an update the adapted policy differs from the base");
        var checkpoint = Path.Combine(dir, "run", "checkpoints", "step-000002");
        Assert.True(File.Exists(Path.Combine(checkpoint, R1Sharp.Models.LoraAdapter.WeightsFile)));
        Assert.True(File.Exists(Path.Combine(checkpoint, "tokenizer.json")));
        Assert.False(File.Exists(Path.Combine(checkpoint, "model.safetensors")));
    }

    private static List<JsonNode> Metrics(string run) => File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();

    [Fact]
    public void TheExternalRewardScoresAbstainsAndSurvivesBadCommands()
    {
        var items = new List<(TaskProblem, string)> { (Four, "\\boxed{4}"), (Four, "five"), (Four, "\\boxed{3}") };
        // Scores what it reads: 1 when the completion contains the answer the line names.
        var judge = new ExternalReward("""while read -r line; do case "$line" in *'boxed{4}'*) echo 1;; *five*) echo null;; *) echo 0;; esac; done""", TimeSpan.FromSeconds(20), Path.GetTempPath());
        Assert.Equal([1.0, null, 0.0], judge.ScoreAll(items));
        Assert.Equal(1, judge.Abstained);

        foreach (var (command, problem) in new[]
        {
            ("while read -r line; do echo hello; done", "line 1 is not JSON"),
            ("while read -r line; do echo '[1]'; done", "line 1 is not a number or null"),
            ("exit 3", "exit code 3"),
            ("read -r line; echo 1", "printed 1 lines for 3 completions"),
            ("sleep 30", "no answer within 1 s"),
            ("/nonexistent/reward-program", "exit code 127"),
        })
        {
            var reward = new ExternalReward(command, TimeSpan.FromSeconds(1), Path.GetTempPath());
            var scores = reward.ScoreAll(items);
            Assert.Contains(problem, reward.LastProblem);
            Assert.True(reward.Abstained >= 2, command);
            Assert.Equal(command.StartsWith("read") ? 1.0 : null, scores[0]);
        }

        // A command that leaves a background child holding its output: its scores count, the child is named.
        var leaky = new ExternalReward("(sleep 60 &); while read -r line; do echo 1; done", TimeSpan.FromSeconds(10), Path.GetTempPath());
        var watch = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal([1.0, 1.0, 1.0], leaky.ScoreAll(items));
        Assert.Contains("background process", leaky.LastProblem);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), $"took {watch.Elapsed}: it waited for the background child");
    }

    [Theory]
    [InlineData("{\"prompt\": \"a\", \"answer\": \"1\"}\nnot json", ":2: not JSON")]
    [InlineData("{\"prompt\": \"a\"}", ":1: needs \"answer\"")]
    [InlineData("{\"answer\": 3}", ":1: needs \"prompt\"")]
    [InlineData("{\"messages\": [{\"role\": \"system\", \"content\": \"x\"}], \"answer\": 3}", ":1: \"messages\" has no user message")]
    [InlineData("{\"messages\": [{\"role\": \"wizard\", \"content\": \"x\"}], \"answer\": 3}", ":1: unknown role 'wizard'")]
    [InlineData("\n\n", "no problems")]
    public void BadDataLinesAreNamedByFileAndLine(string content, string message)
    {
        var path = Path.Combine(TestPaths.TempDir(), "data.jsonl");
        File.WriteAllText(path, content);
        var e = Assert.Throws<R1SharpException>(() => DatasetTask.Read(path));
        Assert.Contains(message, e.Message);
        Assert.StartsWith(path, e.Message);
    }

    [Fact]
    public void ModelFoldersAreReadAsTheirToolsWriteThem()
    {
        // transformers' recent layout: the template in chat_template.jinja; a base model whose eos is not the turn end.
        var model = TinyModelWithTokenizer("qwen2_5");
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(model, "tokenizer_config.json")))!.AsObject();
        File.WriteAllText(Path.Combine(model, "chat_template.jinja"), (string)config["chat_template"]!);
        config.Remove("chat_template");
        config["eos_token"] = "<|endoftext|>";
        File.WriteAllText(Path.Combine(model, "tokenizer_config.json"), config.ToJsonString());
        var tokenizer = PretrainedTokenizer.Load(model);
        Assert.Contains("<|im_start|>", tokenizer.ChatTemplate);
        using (var m = ModelIO.Load(model))
        {
            var format = PromptFormat.For(model, m.Config, new ChatPromptOptions());
            Assert.Contains((long)tokenizer.TokenToId("<|im_end|>")!, format.StopIds);                 // the template's turn end stops generation
            Assert.Equal("ab", format.Decode([tokenizer.TokenToId("a")!.Value, tokenizer.VocabSize + 5, tokenizer.TokenToId("b")!.Value]));   // a model row past the tokenizer adds nothing
        }

        // Only a sentencepiece model: refused, not run with the byte tokenizer.
        var sentencepiece = TestPaths.TempDir();
        foreach (var f in new[] { "config.json", "model.safetensors" }) File.Copy(Path.Combine(model, f), Path.Combine(sentencepiece, f));
        File.WriteAllText(Path.Combine(sentencepiece, "tokenizer.model"), "not read");
        using (var m = ModelIO.Load(sentencepiece))
            Assert.Contains("has tokenizer.model but no tokenizer.json", Assert.Throws<R1SharpException>(() => PromptFormat.For(sentencepiece, m.Config, new ChatPromptOptions())).Message);

        // A prompt too long for the context is found before the run folder is made; three problems hold one out.
        var dir = TestPaths.TempDir();
        File.WriteAllLines(Path.Combine(dir, "long.jsonl"), [new JsonObject { ["prompt"] = "1 + 1?", ["answer"] = 2 }.ToJsonString(), new JsonObject { ["prompt"] = string.Join(" ", Enumerable.Repeat("word", 600)), ["answer"] = 1 }.ToJsonString()]);
        File.WriteAllText(Path.Combine(dir, "grpo.json"), new JsonObject { ["init_from"] = model, ["data"] = "long.jsonl", ["steps"] = 1, ["max_completion_length"] = 8 }.ToJsonString());
        var run = CliTests.Run("grpo", "--config", Path.Combine(dir, "grpo.json"), "--out", Path.Combine(dir, "run"));
        Assert.Equal(2, run.Code);
        Assert.Contains("long.jsonl:2: the prompt has", run.Stderr);
        Assert.False(Directory.Exists(Path.Combine(dir, "run")), "a run that failed before its first step leaves no folder");
        File.WriteAllLines(Path.Combine(dir, "three.jsonl"), Enumerable.Range(1, 3).Select(i => new JsonObject { ["prompt"] = $"{i} + {i}?", ["answer"] = 2 * i }.ToJsonString()));
        var task = DatasetTask.Load(Path.Combine(dir, "three.jsonl"), null, 200, 0);
        Assert.Equal((2, 1), (task.Train.Count, task.Test.Count));
    }

    [Fact]
    public void TrlOptionNamesAreAliases()
    {
        var dir = TestPaths.TempDir();
        var path = Path.Combine(dir, "grpo.json");
        File.WriteAllText(path, """{"init_from": "m", "num_generations": 4, "loss_type": "dr_grpo", "scale_rewards": false, "num_iterations": 2, "mask_truncated_completions": false}""");
        var (c, _) = GrpoConfig.Load(path, []);
        Assert.Equal((4, "dr_grpo", "none", 2, false), (c.GroupSize, c.LossAggregation, c.RewardScaling, c.Iterations, c.MaskTruncated));
        File.WriteAllText(path, """{"init_from": "m", "num_generations": 4, "group_size": 8}""");
        Assert.Contains("num_generations (4) and group_size (8) disagree", Assert.Throws<R1SharpException>(() => GrpoConfig.Load(path, [])).Message);
        // An override by either name replaces the file's value by either name.
        File.WriteAllText(path, """{"init_from": "m", "num_generations": 8, "scale_rewards": true}""");
        Assert.Equal(4, GrpoConfig.Load(path, ["group_size=4"]).Config.GroupSize);
        Assert.Equal(2, GrpoConfig.Load(path, ["num_generations=2"]).Config.GroupSize);
        Assert.Equal("none", GrpoConfig.Load(path, ["scale_rewards=false"]).Config.RewardScaling);
        File.WriteAllText(path, """{"init_from": "m", "rewards": {"external": 1}}""");
        Assert.Contains("the external reward needs reward_command", Assert.Throws<R1SharpException>(() => GrpoConfig.Load(path, [])).Message);

        // GSPO and bnpo by TRL's names; a misspelt or unsupported option is refused, not silently ignored.
        File.WriteAllText(path, """{"init_from": "m", "loss_type": "bnpo", "importance_sampling_level": "sequence", "epsilon": 3e-4, "epsilon_high": 4e-4, "format_tags": {"answer": null}}""");
        (c, _) = GrpoConfig.Load(path, []);
        Assert.Equal(("bnpo", "sequence", null), (c.LossAggregation, c.ImportanceSamplingLevel, c.FormatTags.Answer));
        foreach (var (json, message) in new[]
        {
            ("""{"init_from": "m", "num_generation": 4}""", "grpo.json: unknown key 'num_generation'"),
            ("""{"init_from": "m", "lora": {"rank": 4}}""", "unknown key 'rank' (in lora)"),
            ("""{"init_from": "m", "format_tags": {"thinking": ["<t>", "</t>"]}}""", "unknown key 'thinking' (in format_tags)"),
        })
        {
            File.WriteAllText(path, json);
            Assert.Contains(message, Assert.Throws<R1SharpException>(() => GrpoConfig.Load(path, [])).Message);
        }
    }
}
