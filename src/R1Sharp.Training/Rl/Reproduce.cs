using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Checkpoints;
using R1Sharp.Tokenization;
using R1Sharp.Training.Data;
using R1Sharp.Training.Tasks;
using R1Sharp.Training.Training;

namespace R1Sharp.Training.Rl;

/// `r1sharp reproduce`: the R1 recipe end to end at laptop scale. A small DeepSeek-style MoE model
/// (MLA, shared + routed experts), or with `--model` a user's model folder through its own tokenizer
/// and chat template, is trained on the built-in task (cold-start SFT on `<think>` traces,
/// or with `zero`, on plain problems and answers), evaluated on held-out problems, improved with GRPO,
/// and evaluated again; report.md and result.json say what happened.
public sealed record ReproduceOptions
{
    public string Name { get; init; } = "reproduce";
    public string Task { get; init; } = "arithmetic";
    public int Difficulty { get; init; } = 3;
    public int Seed { get; init; }
    public bool Zero { get; init; }
    public bool Quick { get; init; }
    public int TestProblems { get; init; } = 500;
    public int? SftSteps { get; init; }
    public int? GrpoSteps { get; init; }
    /// A user's model folder (weights, tokenizer, chat template) instead of the built-in MoE model.
    public string? Model { get; init; }
    /// Sequence length and batch of the SFT steps (the built-in byte model: 160 × 16).
    public int? SftSeqLen { get; init; }
    public int? SftBatch { get; init; }
    public double? SftLr { get; init; }
    public double? GrpoLr { get; init; }
    /// Prompts per GRPO step (default 12); with large vocabularies fewer keep the log-prob pass in memory.
    public int? GrpoPrompts { get; init; }

    public int ResolvedSftSteps => SftSteps ?? (Quick ? 150 : 1000);
    public int ResolvedGrpoSteps => GrpoSteps ?? (Quick ? 20 : 450);
}

public static class Reproduce
{
    /// The built-in model: DeepSeek-V3 architecture in miniature.
    public static JsonObject ModelConfig() => new()
    {
        ["architectures"] = new JsonArray("DeepseekV3ForCausalLM"), ["model_type"] = "deepseek_v3",
        ["vocab_size"] = 272, ["hidden_size"] = 128, ["intermediate_size"] = 320, ["moe_intermediate_size"] = 64,
        ["num_hidden_layers"] = 4, ["first_k_dense_replace"] = 1, ["moe_layer_freq"] = 1,
        ["num_attention_heads"] = 4, ["num_key_value_heads"] = 4,
        ["n_routed_experts"] = 8, ["n_shared_experts"] = 1, ["num_experts_per_tok"] = 2, ["n_group"] = 4, ["topk_group"] = 2,
        ["topk_method"] = "noaux_tc", ["scoring_func"] = "sigmoid", ["norm_topk_prob"] = true, ["routed_scaling_factor"] = 2.5,
        ["q_lora_rank"] = 96, ["kv_lora_rank"] = 48, ["qk_nope_head_dim"] = 24, ["qk_rope_head_dim"] = 8, ["v_head_dim"] = 24,
        ["max_position_embeddings"] = 512, ["rope_theta"] = 10000.0, ["rope_scaling"] = null, ["rms_norm_eps"] = 1e-6,
        ["hidden_act"] = "silu", ["attention_bias"] = false, ["tie_word_embeddings"] = false, ["num_nextn_predict_layers"] = 0,
        ["bos_token_id"] = ByteTokenizer.Bos, ["eos_token_id"] = ByteTokenizer.Eos, ["initializer_range"] = 0.02, ["torch_dtype"] = "float32",
    };

    public static JsonObject Run(ReproduceOptions o, string runDir, Action<string> say)
    {
        Directory.CreateDirectory(runDir);
        StartOrContinue(o, runDir, say);
        var started = DateTime.UtcNow;
        var task = VerifiableTasks.Create(o.Task, o.Difficulty);
        var maxNew = o.Task == "countdown" ? 112 : 96;

        // 1. Cold start (SFT on traces) or, with zero, plain problems and answers.
        var sftDir = Path.Combine(runDir, "sft");
        var userModel = o.Model is { } m ? Path.GetFullPath(m) : null;
        var modelPath = userModel is not null ? Path.Combine(userModel, "config.json") : Path.Combine(runDir, "model_config.json");
        if (userModel is null) AtomicFile.WriteAllText(modelPath, ModelConfig().ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        var encoder = userModel is not null && R1Sharp.Tokenization.PretrainedTokenizer.InFolder(userModel) ? DocumentEncoder.For(userModel) : DocumentEncoder.Byte;
        var isDeepSeek = userModel is null || R1Sharp.Models.ModelConfig.Load(userModel) is R1Sharp.Models.DeepSeekConfig { HasCorrectionBias: true };
        var dataDir = Path.Combine(runDir, "data");
        var sftPrompts = new HashSet<string>();
        var random = new Random(o.Seed);
        var documents = new List<Document>();
        for (int i = 0; i < 20000; i++)
        {
            var p = task.Generate(random);
            sftPrompts.Add(p.Prompt);
            if (o.ResolvedSftSteps > 0) documents.AddRange(encoder.FromPromptCompletion(p.Prompt, o.Zero ? $"<answer>{p.Answer}</answer>" : p.Completion, $"built-in {o.Task}"));
        }
        string sftModel;
        if (o.ResolvedSftSteps == 0)
        {
            if (userModel is null) throw new R1SharpException("--sft-steps 0 needs --model (the built-in model starts untrained)");
            say("1/4 supervised cold start: skipped (--sft-steps 0)");
            sftModel = userModel;
        }
        else
        {
            if (!File.Exists(Path.Combine(dataDir, DatasetPreparer.IndexFile)))
                DatasetPreparer.Write(documents, dataDir, 0.02, o.Seed, encoder, new JsonObject { ["builtin"] = o.Task, ["zero"] = o.Zero });
            var trainJson = new JsonObject
            {
                ["name"] = "sft", ["model"] = modelPath, ["data"] = new JsonObject { [o.Task] = new JsonObject { ["path"] = dataDir } },
                ["seed"] = o.Seed, ["steps"] = o.ResolvedSftSteps, ["batch_size"] = o.SftBatch ?? 16, ["seq_len"] = o.SftSeqLen ?? 160, ["lr"] = o.SftLr ?? 3e-3, ["warmup_steps"] = 20,
                ["min_lr_ratio"] = 0.05, ["bias_update_speed"] = isDeepSeek ? 0.001 : 0.0, ["eval_every"] = 100, ["checkpoint_every"] = 1000, ["keep_checkpoints"] = 1, ["plot_every"] = 100,
            };
            if (userModel is not null) trainJson["init_from"] = userModel;
            var trainConfig = trainJson.Deserialize<TrainConfig>()!;
            trainConfig.Validate();
            say($"1/4 supervised cold start: {o.ResolvedSftSteps} steps on {(o.Zero ? "plain answers (--zero)" : "<think> traces")}");
            using var trainer = new Trainer(trainConfig, trainJson, runDir, sftDir);
            var summary = trainer.Run(RunCheckpoints.Latest(sftDir) is not null, p => { if (p.Step % 50 == 0) say($"   sft step {p.Step}/{p.TotalSteps} loss {p.Loss:F3}"); });
            sftModel = summary.LastCheckpoint ?? RunCheckpoints.Latest(sftDir)!;
        }

        // 2. Held-out evaluation of the SFT model.
        var test = TaskEvaluator.TestProblems(task, o.TestProblems, o.Seed + 1_000_003, sftPrompts);
        say($"2/4 evaluating the SFT model on {test.Count} held-out problems");
        TaskEvaluator.Result before;
        var protocol = new TaskEvaluator.Protocol(Seed: o.Seed);
        // Without a cold start nothing taught a user's model the tags: R1-Zero's instruction asks for them.
        var asked = o.ResolvedSftSteps == 0 ? new ChatPromptOptions(SystemPrompt: R1ZeroInstruction) : new ChatPromptOptions();
        using (var model = ModelIO.Load(sftModel)) before = TaskEvaluator.Evaluate(model, FormatOf(sftModel, model, asked), new CorrectnessReward(task), test, maxNew, protocol);

        // 3. GRPO from the SFT model.
        var grpoJson = new JsonObject
        {
            ["name"] = "grpo", ["init_from"] = sftModel, ["task"] = o.Task, ["difficulty"] = o.Difficulty, ["seed"] = o.Seed,
            ["steps"] = o.ResolvedGrpoSteps, ["prompts_per_step"] = o.GrpoPrompts ?? 12, ["group_size"] = 8, ["max_new_tokens"] = maxNew,
            ["lr"] = o.GrpoLr ?? 1e-4, ["eval_every"] = Math.Max(10, o.ResolvedGrpoSteps / 4), ["eval_problems"] = 200, ["checkpoint_every"] = 50,
            ["system_prompt"] = asked.SystemPrompt,
        };
        var grpoConfig = grpoJson.Deserialize<GrpoConfig>()!;
        grpoConfig.Validate();
        var grpoDir = Path.Combine(runDir, "grpo");
        say($"3/4 GRPO: {o.ResolvedGrpoSteps} steps, {grpoConfig.PromptsPerStep} prompts x {grpoConfig.GroupSize} samples");
        string grpoModel;
        using (var grpo = new GrpoTrainer(grpoConfig, grpoJson, runDir, grpoDir))
        {
            var summary = grpo.Run(RunCheckpoints.Latest(grpoDir) is not null, line => say("   grpo " + line));
            grpoModel = summary.LastCheckpoint ?? RunCheckpoints.Latest(grpoDir)!;
        }

        // 4. Held-out evaluation after RL, and the report.
        say("4/4 evaluating the GRPO model");
        TaskEvaluator.Result after;
        using (var model = ModelIO.Load(grpoModel)) after = TaskEvaluator.Evaluate(model, FormatOf(grpoModel, model, asked), new CorrectnessReward(task), test, maxNew, protocol);
        var seconds = (DateTime.UtcNow - started).TotalSeconds;
        var result = new JsonObject
        {
            ["task"] = o.Task, ["difficulty"] = o.Difficulty, ["seed"] = o.Seed, ["zero"] = o.Zero, ["n_test"] = test.Count,
            ["pass1_before"] = before.Pass1, ["pass1_after"] = after.Pass1,
            ["ci95_before"] = new JsonArray(before.Low, before.High), ["ci95_after"] = new JsonArray(after.Low, after.High),
            ["greedy_before"] = before.Greedy, ["greedy_after"] = after.Greedy,
            ["pass_at_4_before"] = before.PassK, ["pass_at_4_after"] = after.PassK,
            ["eval_protocol"] = "pass@1 = mean correctness of 4 samples per problem at temperature 0.6, top-p 0.95 (as DeepSeek-R1 reports); 95% interval over problems",
            ["format_before"] = before.FormatRate, ["format_after"] = after.FormatRate,
            ["length_before"] = before.MeanLength, ["length_after"] = after.MeanLength,
            ["improved_beyond_intervals"] = after.Low > before.High,
            ["sft_steps"] = o.ResolvedSftSteps, ["grpo_steps"] = o.ResolvedGrpoSteps, ["seconds"] = Math.Round(seconds, 1),
            ["model"] = userModel ?? "built-in", ["sft_model"] = Path.GetRelativePath(runDir, sftModel), ["grpo_model"] = Path.GetRelativePath(runDir, grpoModel),
        };
        AtomicFile.WriteAllText(Path.Combine(runDir, "result.json"), result.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        AtomicFile.WriteAllText(Path.Combine(runDir, "report.md"), Report(o, before, after, seconds));
        Manifest.Write(runDir, [modelPath], o.Seed);
        return result;
    }

    private static PromptFormat FormatOf(string dir, R1Sharp.Models.CausalLM model, ChatPromptOptions asked) => PromptFormat.For(dir, model.Config, asked);

    /// The instruction of DeepSeek-R1-Zero's training template (the R1 paper, table 1), as a system prompt.
    public const string R1ZeroInstruction = "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. " +
        "The assistant first thinks about the reasoning process in the mind and then provides the user with the answer. The reasoning process and " +
        "answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> " +
        "<answer> answer here </answer>.";

    /// The same options continue an interrupted run; different ones start the folder afresh.
    private static void StartOrContinue(ReproduceOptions o, string runDir, Action<string> say)
    {
        var path = Path.Combine(runDir, "reproduce_options.json");
        var options = JsonSerializer.Serialize(o with { SftSteps = o.ResolvedSftSteps, GrpoSteps = o.ResolvedGrpoSteps });
        if (File.Exists(path) && File.ReadAllText(path) != options)
        {
            say($"{runDir} holds a run with other options: starting afresh");
            foreach (var sub in new[] { "sft", "grpo", "data" })
                if (Directory.Exists(Path.Combine(runDir, sub))) Directory.Delete(Path.Combine(runDir, sub), true);
        }
        AtomicFile.WriteAllText(path, options);
    }

    private static string Report(ReproduceOptions o, TaskEvaluator.Result before, TaskEvaluator.Result after, double seconds)
    {
        string P(double v) => v.ToString("P1", CultureInfo.InvariantCulture);
        var text = new StringBuilder();
        text.AppendLine($"# R1-Zero in miniature: {o.Task} (difficulty {o.Difficulty}, seed {o.Seed})");
        text.AppendLine();
        text.AppendLine(o.Model is null
            ? "A DeepSeek-V3-style MoE model (MLA, 1 shared + 8 routed experts, top-2 of 4 groups) was trained with"
            : $"The model `{o.Model}` (its own tokenizer and chat template) was trained with");
        text.AppendLine($"{(o.Zero ? "plain problems and answers (`--zero`)" : "cold-start SFT on `<think>` traces")} for {o.ResolvedSftSteps} steps, then with GRPO for {o.ResolvedGrpoSteps} steps");
        text.AppendLine($"(rule-based rewards: correctness 1.0, format 0.2; 12 prompts x 8 samples per step). Run time {seconds / 60:F1} minutes.");
        text.AppendLine();
        text.AppendLine($"pass@1 is DeepSeek-R1's protocol: the mean correctness of 4 samples per problem at temperature 0.6 and");
        text.AppendLine($"top-p 0.95, on {before.N} held-out problems never seen in training; the interval is a 95% interval over problems.");
        text.AppendLine();
        text.AppendLine("| model | pass@1 | 95% interval | greedy | pass@4 | format rate | mean length |");
        text.AppendLine("| --- | --- | --- | --- | --- | --- | --- |");
        text.AppendLine($"| before RL (SFT) | {P(before.Pass1)} | [{P(before.Low)}, {P(before.High)}] | {P(before.Greedy)} | {P(before.PassK)} | {P(before.FormatRate)} | {before.MeanLength:F1} |");
        text.AppendLine($"| after GRPO | {P(after.Pass1)} | [{P(after.Low)}, {P(after.High)}] | {P(after.Greedy)} | {P(after.PassK)} | {P(after.FormatRate)} | {after.MeanLength:F1} |");
        text.AppendLine();
        text.AppendLine(after.Low > before.High
            ? "GRPO improved held-out pass@1 by more than both 95% intervals."
            : "The improvement is not outside both 95% intervals in this run.");
        text.AppendLine();
        text.AppendLine("## Plots");
        foreach (var (file, caption) in new[] { ("grpo/plots/reward.png", "GRPO: reward, sample accuracy, format rate and held-out pass@1"), ("grpo/plots/length.png", "GRPO: response length"),
            ("grpo/plots/kl.png", "GRPO: KL to the SFT model"), ("grpo/plots/clip_and_spread.png", "GRPO: clip fraction and zero-spread groups"),
            ("sft/plots/loss.png", "SFT: training and validation loss"), ("sft/plots/expert_load.png", "SFT: expert load") })
            text.AppendLine($"![{caption}]({file})");
        text.AppendLine();
        text.AppendLine("Figures for machines: `result.json`. Inputs and outputs with sha256: `manifest.json`.");
        return text.ToString();
    }
}
