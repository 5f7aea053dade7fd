using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Checkpoints;
using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Tokenization;
using R1Sharp.Training.Tasks;
using R1Sharp.Training.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace R1Sharp.Training.Rl;

public sealed record GrpoSummary(string RunDir, int Steps, TaskEvaluator.Result? LastEval, string? LastCheckpoint, double Seconds);

/// R1-Zero-style reinforcement learning: for each prompt, G sampled completions; rule-based rewards;
/// advantages normalised within the group; the clipped policy-ratio objective plus a k3 KL penalty
/// against the frozen starting model. Same run folder, checkpoints, resume and plots as training.
public sealed class GrpoTrainer : IDisposable
{
    private readonly GrpoConfig _config;
    private readonly JsonObject _resolved;
    private readonly string _configDir, _runDir;
    private readonly List<string> _inputs = [];
    private readonly IVerifiableTask _task;
    private RewardSet _rewards = null!;
    private PromptFormat _format = null!;
    private ExternalReward? _external;
    private CausalLM _policy = null!;
    private CausalLM? _reference;
    private (LoraConfig Config, IReadOnlyList<(string Name, LoraWeights Weights)> Adapters)? _lora;
    private AdamW _optimizer = null!;
    private List<Parameter> _trained = null!;
    private RunFolder? _folder;

    public GrpoTrainer(GrpoConfig config, JsonObject resolved, string configDir, string runDir, string? configFile = null)
    {
        (_config, _resolved, _configDir, _runDir) = (config, resolved, configDir, runDir);
        if (configFile is not null) _inputs.Add(configFile);
        if (config.Data is { } data)
        {
            var path = Path.GetFullPath(Path.Combine(configDir, data));
            var evalPath = config.EvalData is { } e ? Path.GetFullPath(Path.Combine(configDir, e)) : null;
            _task = DatasetTask.Load(path, evalPath, config.EvalProblems, config.Seed);
            _inputs.Add(path);
            if (evalPath is not null) _inputs.Add(evalPath);
        }
        else _task = VerifiableTasks.Create(config.Task, config.Difficulty);
    }

    /// The reward functions, once the prompt format (which may open `<think>` itself) is known.
    private RewardSet Rewards()
    {
        var opened = _config.ThinkOpenedByPrompt || _format.ThinkOpenedByPrompt;
        var functions = new List<(IRewardFunction, double)>();
        foreach (var (name, weight) in _config.Rewards.OrderBy(p => p.Key, StringComparer.Ordinal))
            functions.Add((name switch
            {
                "format" => new FormatReward(opened, _config.FormatTags),
                "correctness" => new CorrectnessReward(_task, opened, _config.FormatTags),
                "math" => new MathReward(_config.FormatTags),
                "external" => _external = new ExternalReward(_config.RewardCommand!, TimeSpan.FromSeconds(_config.RewardTimeout), _configDir),
                _ => (IRewardFunction)new LengthPenalty(_config.MaxNewTokens, _config.LengthBuffer),
            }, weight));
        return new RewardSet(functions);
    }

    /// What counts as correct for accuracy and evaluation: the math verifier when it is a reward, else the task's.
    private IRewardFunction Judge => _config.Rewards.ContainsKey("math") || _task is DatasetTask
        ? new MathReward(_config.FormatTags)
        : new CorrectnessReward(_task, _config.ThinkOpenedByPrompt || _format.ThinkOpenedByPrompt, _config.FormatTags);

    public CausalLM Policy => _policy;

    public GrpoSummary Run(bool resume, Action<string>? progress = null, int? stopAfter = null)
    {
        _folder = RunFolder.Open(_runDir);
        int start;
        try
        {
            AtomicFile.WriteAllText(Path.Combine(_runDir, "grpo_config.json"), _resolved.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
            start = Build(resume);
            _rewards = Rewards();
        }
        catch (R1SharpException)
        {
            if (!resume) _folder.Abandon();
            throw;
        }
        _folder.TruncateMetrics(start);
        var evalProblems = _task is DatasetTask data ? data.Test.Take(_config.EvalProblems).ToList()
            : TaskEvaluator.TestProblems(_task, _config.EvalProblems, _config.Seed + 1_000_003);
        var watch = Stopwatch.StartNew();
        TaskEvaluator.Result? lastEval = null;
        string? checkpoint = null;
        var end = Math.Min(_config.Steps, stopAfter ?? int.MaxValue);
        if (start == 0) lastEval = LogEval(0, evalProblems);
        for (int step = start; step < end; step++)
        {
            var line = Step(step);
            var done = step + 1;
            line["elapsed_s"] = watch.Elapsed.TotalSeconds;
            Log(line);
            if (done % _config.EvalEvery == 0 || done == _config.Steps) lastEval = LogEval(done, evalProblems);
            if (done % _config.CheckpointEvery == 0 || done == end)
                checkpoint = RunCheckpoints.Save(_runDir, done, _policy, _optimizer, new JsonObject { ["seed"] = _config.Seed }, _config.KeepCheckpoints, _format is ChatPromptFormat ? Data.DocumentEncoder.For(_initFrom) : null, _lora);
            progress?.Invoke($"step {done}/{_config.Steps} reward {MetricsHistory.Num(line["reward"]!):F3} acc {MetricsHistory.Num(line["accuracy"]!):F3} len {MetricsHistory.Num(line["length"]!):F1} kl {MetricsHistory.Num(line["kl"]!):F4}" +
                (lastEval is not null && done % _config.EvalEvery == 0 ? $" eval pass@1 {lastEval.Pass1:F3}" : ""));
        }
        GrpoPlots.Write(Path.Combine(_runDir, "plots"), _folder.MetricsPath);
        Manifest.Write(_runDir, _inputs, _config.Seed);
        return new GrpoSummary(_runDir, end, lastEval, checkpoint, watch.Elapsed.TotalSeconds);
    }

    private JsonObject Step(int step)
    {
        int prompts = _config.PromptsPerStep, group = _config.GroupSize, n = prompts * group;
        var random = new Random(StepSeed.Of(_config.Seed, step, 77));
        var problems = Enumerable.Range(0, prompts).Select(_ => _task.Generate(random)).ToList();
        var promptIds = problems.SelectMany(p => Enumerable.Repeat(_format.Prompt(p), group)).ToList();

        _policy.eval();
        var sampling = new SamplingOptions
        {
            Temperature = _config.Temperature, MaxNewTokens = _config.MaxNewTokens, Seed = StepSeed.Of(_config.Seed, step),
            StopTokenIds = _format.StopIds,
        };
        var completions = BatchGenerator.Generate(_policy, promptIds, sampling);

        var rewards = new float[n];
        double correct = 0, formatted = 0, length = 0, truncated = 0;
        var texts = completions.Select(c => _format.Decode(c.Tokens)).ToList();
        var abstainedBefore = _external?.Abstained ?? 0;
        var scored = _rewards.ScoreAll(completions.Select((c, i) => (problems[i / group], texts[i], c.Tokens.Length, c.Truncated)).ToList());
        var judge = Judge;
        for (int i = 0; i < n; i++)
        {
            var (total, parts) = scored[i];
            rewards[i] = (float)total;
            correct += judge.Score(problems[i / group], texts[i], completions[i].Tokens.Length, completions[i].Truncated) ?? 0;
            formatted += parts.GetValueOrDefault("format") ?? 0;
            length += completions[i].Tokens.Length;
            truncated += completions[i].Truncated ? 1 : 0;
        }

        using var scope = NewDisposeScope();
        var rewardTensor = tensor(rewards).view(prompts, group);
        var advantages = GrpoMath.Advantages(rewardTensor, _config.RewardScaling).flatten();
        var spread = rewardTensor.std(1) > 1e-6;                                                 // [P]
        var zeroStd = 1 - spread.to_type(ScalarType.Float32).mean().item<float>();
        var rowKeep = _config.DynamicSampling ? spread.repeat_interleave(group) : ones(n, dtype: ScalarType.Bool);

        var (inputs, targets, mask) = Sequences(promptIds, completions, _format.StopIds[0]);
        if (_config.MaskTruncated) mask = mask * tensor(completions.Select(c => c.Truncated ? 0f : 1f).ToArray()).unsqueeze(1);
        mask = mask * rowKeep.to_type(ScalarType.Float32).unsqueeze(1);
        var line = new JsonObject
        {
            ["step"] = step + 1, ["lr"] = _config.Lr, ["reward"] = (double)rewards.Average(), ["accuracy"] = correct / n, ["format"] = formatted / n,
            ["length"] = length / n, ["truncated"] = truncated / n, ["zero_std_fraction"] = zeroStd,
        };
        if (_external is not null)
        {
            line["external_abstained"] = _external.Abstained - abstainedBefore;
            if (_external.Abstained > abstainedBefore && _external.LastProblem is { } problem) line["external_problem"] = problem;
        }
        if (mask.sum().item<float>() == 0)
        {
            line["kl"] = 0.0; line["clip_fraction"] = 0.0; line["loss"] = 0.0; line["grad_norm"] = 0.0; line["skipped"] = true;
            return line;
        }

        Tensor? reference = null;
        if (_config.Beta > 0)
            using (no_grad()) reference = GrpoMath.TokenLogProbs(ReferenceForward(inputs), targets);
        Tensor? old = null;
        double kl = 0, clip = 0, loss = 0, gradNorm = 0;
        _policy.train();
        if (_policy is DeepSeekForCausalLM d) d.AttentionMode = AttentionMode.Naive;
        for (int iteration = 0; iteration < _config.Iterations; iteration++)
        {
            Optimization.ClearGradients(_trained);
            var logProbs = GrpoMath.TokenLogProbs(_policy.Forward(inputs), targets);
            old ??= logProbs.detach();   // the sampling policy's log-probs: the first pass's, held fixed
            var parts = GrpoMath.PolicyLoss(logProbs, old, reference ?? logProbs.detach(), advantages, mask,
                _config.Epsilon, _config.EpsilonHigh ?? _config.Epsilon, _config.Beta, _config.LossAggregation, _config.MaxNewTokens, _config.ImportanceSamplingLevel);
            parts.Loss.backward();
            gradNorm = nn.utils.clip_grad_norm_(_trained, _config.GradClip > 0 ? _config.GradClip : double.PositiveInfinity);
            if (!double.IsFinite(gradNorm)) { Optimization.ClearGradients(_trained); line["skipped"] = true; break; }
            _optimizer.step();
            (kl, clip, loss) = (parts.Kl, parts.ClipFraction, parts.Loss.item<float>());
        }
        if (_policy is DeepSeekForCausalLM d2) d2.AttentionMode = AttentionMode.Absorbed;
        line["kl"] = kl; line["clip_fraction"] = clip; line["loss"] = loss; line["grad_norm"] = double.IsFinite(gradNorm) ? gradNorm : -1;
        return line;
    }

    /// Prompt + completion (+ the stop token the model emitted; `stop` when a completion does not say which),
    /// right-padded: inputs/targets [N, T-1] and a mask [N, T-1] that is 1 on completion targets only.
    internal static (Tensor Inputs, Tensor Targets, Tensor Mask) Sequences(IReadOnlyList<long[]> prompts, IReadOnlyList<BatchCompletion> completions, long stop)
    {
        var sequences = prompts.Select((p, i) => p.Concat(completions[i].Tokens).Concat(completions[i].Truncated ? [] : new[] { completions[i].Stop ?? stop }).ToArray()).ToList();
        var length = sequences.Max(s => s.Length);
        var tokens = new long[sequences.Count * length];
        var mask = new float[sequences.Count * (length - 1)];
        for (int r = 0; r < sequences.Count; r++)
        {
            Array.Copy(sequences[r], 0, tokens, r * length, sequences[r].Length);
            for (int t = prompts[r].Length - 1; t < sequences[r].Length - 1; t++) mask[r * (length - 1) + t] = 1;   // target t+1 is a completion token
        }
        var all = tensor(tokens).view(sequences.Count, length);
        return (all.narrow(1, 0, length - 1), all.narrow(1, 1, length - 1), tensor(mask).view(sequences.Count, length - 1));
    }

    private TaskEvaluator.Result LogEval(int step, List<TaskProblem> problems)
    {
        var result = TaskEvaluator.Evaluate(_policy, _format, Judge, problems, _config.MaxNewTokens, new TaskEvaluator.Protocol(Samples: 2, Seed: _config.Seed), tags: _config.FormatTags);
        Log(new JsonObject
        {
            ["step"] = step, ["eval_pass1"] = result.Pass1, ["eval_low"] = result.Low, ["eval_high"] = result.High, ["eval_greedy"] = result.Greedy,
            ["eval_format"] = result.FormatRate, ["eval_length"] = result.MeanLength, ["eval_n"] = result.N,
        });
        return result;
    }

    private int Build(bool resume)
    {
        var from = Path.GetFullPath(Path.Combine(_configDir, _config.InitFrom));
        var latest = resume ? RunCheckpoints.Latest(_runDir) : null;
        if (resume && latest is null) throw new R1SharpException($"--resume: no checkpoint in {RunCheckpoints.Folder(_runDir)}");
        _initFrom = from;
        _policy = ModelIO.Load(_config.Lora is null ? latest ?? from : from);
        _format = PromptFormat.For(from, _policy.Config, new ChatPromptOptions(_config.SystemPrompt, _config.Instruction, _config.EnableThinking));
        if (_format is BytePromptFormat && _policy.Config.VocabSize < ByteTokenizer.VocabSize)
            throw new R1SharpException($"{from}: the model's vocabulary is smaller than the byte tokenizer's");
        _inputs.AddRange(Directory.GetFiles(from, "*.safetensors").Append(Path.Combine(from, "config.json")));
        if (_task is DatasetTask data) CheckPromptLengths(data.Train.Concat(data.Test));
        if (_config.GradientCheckpointing && _config.Lora is { Dropout: > 0 }) throw new R1SharpException("grpo config: gradient_checkpointing recomputes each layer: it needs lora.dropout 0");
        _policy.GradientCheckpointing = _config.GradientCheckpointing;
        if (_config.Lora is { } lora)
        {
            // No second copy of the weights: the reference is the policy with its adapters switched off.
            var config = lora.ToConfig(from);
            var adapters = latest is not null ? LoraAdapter.Load(_policy, latest, trainable: true) : LoraAdapter.Attach(_policy, config, _config.Seed);
            _lora = (config, adapters);
            _trained = adapters.SelectMany(a => new[] { a.Weights.A, a.Weights.B }).ToList();
        }
        else
        {
            _reference = ModelIO.Load(from);
            foreach (var p in _reference.parameters()) p.requires_grad = false;
            _trained = _policy.parameters().Where(p => p.requires_grad).ToList();
        }
        _optimizer = Optimization.AdamW(_trained, _config.Lr, beta1: 0.9, beta2: 0.999, _config.WeightDecay);
        if (latest is null) return 0;
        _optimizer.load_state_dict(Path.Combine(latest, RunCheckpoints.OptimizerFile));
        return (int)RunCheckpoints.ReadState(latest)["step"]!;
    }

    /// Every prompt with its completion must fit the model's context: found at the start, not at the step that samples it.
    private void CheckPromptLengths(IEnumerable<TaskProblem> problems)
    {
        var limit = _policy.Config.MaxPositionEmbeddings;
        foreach (var p in problems)
        {
            var length = _format.Prompt(p).Length;
            if (length + _config.MaxNewTokens > limit)
                throw new R1SharpException($"{p.Source}: the prompt has {length} tokens; with max_new_tokens {_config.MaxNewTokens} it exceeds the model's max_position_embeddings ({limit})");
        }
    }

    private Tensor ReferenceForward(Tensor inputs)
    {
        if (_reference is not null) return _reference.Forward(inputs);
        LoraAdapter.SetEnabled(_policy, false);
        try { return _policy.Forward(inputs); }
        finally { LoraAdapter.SetEnabled(_policy, true); }
    }

    private string _initFrom = "";

    private void Log(JsonObject line) => _folder!.AppendMetrics(line);

    public void Dispose()
    {
        _optimizer?.Dispose();
        _policy?.Dispose();
        _reference?.Dispose();
        _folder?.Dispose();
    }
}
