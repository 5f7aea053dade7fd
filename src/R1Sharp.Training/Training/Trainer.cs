using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Checkpoints;
using R1Sharp.Models;
using R1Sharp.Tokenization;
using R1Sharp.Training.Data;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace R1Sharp.Training.Training;

/// What the trainer reports after each step (the CLI renders it as a progress bar).
public sealed record TrainProgress(int Step, int TotalSteps, double Loss, double TokensPerSecond, double Lr, double? ValLoss, string Stage);

public sealed record TrainSummary(string RunDir, int Steps, double? FirstValLoss, double? LastValLoss, double TokensPerSecond, string? LastCheckpoint);

/// Trains a model of any family (DeepSeek MoE, Qwen2/Qwen3/Llama dense): next-token loss on packed
/// windows plus the configured balance and z- terms (where there are experts), contrastive and MTP
/// terms (DeepSeek with an MTP module); the run's tokenizer is the starting model's own, else that of
/// its prepared data, else R1Sharp's byte tokenizer, and every checkpoint carries it; AdamW with decay on matrices only; warmup + cosine; clipping;
/// accumulation; stages; atomic checkpoints with exact resume; metrics, plots and a manifest.
public sealed class Trainer : IDisposable
{
    private readonly TrainConfig _config;
    private readonly JsonObject _resolved;
    private readonly string _configDir, _runDir;
    private readonly Dictionary<string, (TokenDataset Train, TokenDataset? Val)> _data = [];
    private readonly List<string> _inputs = [];
    private CausalLM _model = null!;
    private DocumentEncoder _encoder = DocumentEncoder.Byte;
    private (LoraConfig Config, IReadOnlyList<(string Name, LoraWeights Weights)> Adapters)? _lora;
    private AdamW _optimizer = null!;
    private List<Parameter> _trained = null!;
    private MetricsHistory _history = new();
    private RunFolder? _folder;

    public Trainer(TrainConfig config, JsonObject resolved, string configDir, string runDir, string? configFile = null)
    {
        (_config, _resolved, _configDir, _runDir) = (config, resolved, configDir, runDir);
        if (configFile is not null) _inputs.Add(configFile);
    }

    public CausalLM Model => _model;
    public long TrainedParameters => _trained.Sum(p => p.NumberOfElements);
    private DeepSeekForCausalLM? DeepSeek => _model as DeepSeekForCausalLM;
    /// Trains to the configured step count, or stops after `stopAfter` steps (an interruption the run
    /// can be resumed from: it checkpoints there).
    public TrainSummary Run(bool resume, Action<TrainProgress>? progress = null, int? stopAfter = null, CancellationToken cancel = default)
    {
        _folder = RunFolder.Open(_runDir);
        int start;
        try
        {
            AtomicFile.WriteAllText(Path.Combine(_runDir, "train_config.json"), _resolved.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
            _encoder = RunTokenizer();
            OpenData();
            start = BuildModel(resume);
        }
        catch (R1SharpException)
        {
            if (!resume) _folder.Abandon();
            throw;
        }
        _history = MetricsHistory.From(_folder.TruncateMetrics(start));
        double? firstVal = _history.ValLoss.Count > 0 ? _history.ValLoss[0] : null, lastVal = null;
        if (start == 0)
        {
            lastVal = firstVal = Evaluate();
            LogValidation(0, firstVal);
        }
        var watch = Stopwatch.StartNew();
        long tokens = 0;
        int bad = 0;
        string? checkpoint = null;
        var end = Math.Min(_config.TotalSteps, stopAfter ?? int.MaxValue);
        for (int step = start; step < end; step++)
        {
            cancel.ThrowIfCancellationRequested();
            var (stage, stageName) = StageAt(step);
            var stepWatch = Stopwatch.StartNew();
            var line = TrainStep(step, stage, stageName);
            var done = step + 1;
            tokens += (long)_config.BatchSize * _config.GradAccum * (stage.SeqLen ?? _config.SeqLen);
            line["tokens_per_s"] = (double)_config.BatchSize * _config.GradAccum * (stage.SeqLen ?? _config.SeqLen) / stepWatch.Elapsed.TotalSeconds;
            line["elapsed_s"] = watch.Elapsed.TotalSeconds;
            Log(line);
            if (line["skipped"] is { } skipped && (bool)skipped)
            {
                if (++bad >= _config.MaxBadSteps)
                    throw new R1SharpException($"stopping at step {done}: {bad} steps in a row had a non-finite loss or gradient (lower lr or enable grad_clip)");
            }
            else bad = 0;

            double? val = null;
            if (done % _config.EvalEvery == 0 || done == _config.TotalSteps)
            {
                lastVal = val = Evaluate();
                LogValidation(done, val);
            }
            if (done % _config.PlotEvery == 0 || done == _config.TotalSteps) TrainingPlots.Write(Path.Combine(_runDir, "plots"), _history);
            if (done % _config.CheckpointEvery == 0 || done == end)
                checkpoint = RunCheckpoints.Save(_runDir, done, _model, _optimizer, new JsonObject { ["seed"] = _config.Seed, ["stage"] = stageName }, _config.KeepCheckpoints, _encoder, _lora);
            progress?.Invoke(new TrainProgress(done, _config.TotalSteps, MetricsHistory.Num(line["loss"]!), tokens / watch.Elapsed.TotalSeconds, MetricsHistory.Num(line["lr"]!), val, stageName));
        }
        Manifest.Write(_runDir, _inputs, _config.Seed);
        return new TrainSummary(_runDir, end, firstVal, lastVal, tokens / Math.Max(1e-9, watch.Elapsed.TotalSeconds), checkpoint);
    }

    private JsonObject TrainStep(int step, Stage stage, string stageName)
    {
        var seqLen = stage.SeqLen ?? _config.SeqLen;
        var lr = LearningRateSchedule.At(step, _config.TotalSteps, _config.Lr, _config.WarmupSteps, _config.MinLrRatio) * stage.LrScale;
        foreach (var group in _optimizer.ParamGroups) group.LearningRate = lr;
        Optimization.ClearGradients(_trained);
        _model.train();
        if (DeepSeek is { } d) d.AttentionMode = AttentionMode.Naive;   // per-head K/V: the cheaper path when there is no cache

        double loss = 0, ce = 0, aux = 0, z = 0, mtp = 0, contrastive = 0;
        var c = DeepSeek?.DeepSeek;
        var loads = new Dictionary<int, Tensor>();
        for (int micro = 0; micro < _config.GradAccum; micro++)
        {
            using var scope = NewDisposeScope();
            var (inputs, targets, mask, generator) = Batch(step, micro, stage, seqLen);
            using var trace = new ForwardTrace { KeepGraph = true };
            using var autocast = Autocast.Bf16(_config.Precision == "bf16");
            var corrupted = _config.Augment.Replace > 0 || _config.Augment.SpanMask > 0 ? Augmenter.Corrupt(inputs, _config.Augment, generator, _encoder.AugmentationIds) : inputs;
            var logits = _model.Forward(corrupted, trace: trace);
            var ceLoss = MaskedCrossEntropy(logits, targets, mask);
            var total = ceLoss;
            var routings = trace.Router.Select(r => r.Routing).ToList();
            if (_config.AuxLossWeight > 0 && routings.Count > 0)
            {
                var a = MoeBalance.SequenceAuxLoss(routings, inputs.shape[0], inputs.shape[1], c!.RoutedExperts, c.NumExpertsPerTok!.Value);
                total = total + a * _config.AuxLossWeight;
                aux += a.item<float>() / _config.GradAccum;
            }
            if (_config.ZLossWeight > 0 && routings.Count > 0)
            {
                var zl = MoeBalance.ZLoss(routings);
                total = total + zl * _config.ZLossWeight;
                z += zl.item<float>() / _config.GradAccum;
            }
            if (_config.MtpWeight > 0)
            {
                // MTP depth 1: from the hidden state at t and token t+1, predict token t+2.
                var mtpLogits = DeepSeek!.MtpLogits(trace.Hidden[^2], targets);
                var m = MaskedCrossEntropy(mtpLogits.narrow(1, 0, seqLen - 1), targets.narrow(1, 1, seqLen - 1), mask.narrow(1, 1, seqLen - 1));
                total = total + m * _config.MtpWeight;
                mtp += m.item<float>() / _config.GradAccum;
            }
            if (_config.ContrastiveWeight > 0)
            {
                using var second = new ForwardTrace { KeepGraph = true };
                _model.Forward(Augmenter.Corrupt(inputs, _config.Augment, generator, _encoder.AugmentationIds), trace: second);
                var info = MoeBalance.InfoNce(trace.Hidden[^1].mean([1L]), second.Hidden[^1].mean([1L]), _config.ContrastiveTemperature);
                total = total + info * _config.ContrastiveWeight;
                contrastive += info.item<float>() / _config.GradAccum;
            }
            (total / _config.GradAccum).backward();
            loss += total.item<float>() / _config.GradAccum;
            ce += ceLoss.item<float>() / _config.GradAccum;
            foreach (var (layer, routing) in trace.Router)
            {
                var l = MoeBalance.Load(routing, c!.RoutedExperts);
                loads[layer] = loads.TryGetValue(layer, out var sum) ? (sum + l).DetachFromDisposeScope() : l.DetachFromDisposeScope();
                if (sum is not null) sum.Dispose();
            }
        }

        var gradNorm = nn.utils.clip_grad_norm_(_trained, _config.GradClip > 0 ? _config.GradClip : double.PositiveInfinity);
        var line = new JsonObject
        {
            ["step"] = step + 1, ["stage"] = stageName, ["lr"] = lr, ["loss"] = loss, ["ce"] = ce,
            ["grad_norm"] = double.IsFinite(gradNorm) ? gradNorm : -1,
        };
        if (_config.AuxLossWeight > 0) line["aux"] = aux;
        if (_config.ZLossWeight > 0) line["z"] = z;
        if (_config.MtpWeight > 0) line["mtp"] = mtp;
        if (_config.ContrastiveWeight > 0) line["contrastive"] = contrastive;
        if (!double.IsFinite(loss) || !double.IsFinite(gradNorm))
        {
            Optimization.ClearGradients(_trained);
            line["skipped"] = true;
            line["loss"] = -1;
            foreach (var l in loads.Values) l.Dispose();
            return line;
        }
        _optimizer.step();

        var gates = DeepSeek?.Layers.Where(l => l.Moe is not null).ToDictionary(l => l.Index, l => l.Moe!) ?? [];
        var loadRows = new JsonArray();
        var imbalances = new List<double>();
        foreach (var (layer, sum) in loads.OrderBy(p => p.Key))
        {
            using var load = sum / _config.GradAccum;
            if (_config.BiasUpdateSpeed > 0) MoeBalance.UpdateCorrectionBias(gates[layer].Gate, load, _config.BiasUpdateSpeed);
            if (_config.RenormalizeExperts) MoeBalance.RenormalizeExperts(gates[layer]);
            loadRows.Add(new JsonArray(load.data<float>().ToArray().Select(v => (JsonNode)Math.Round(v, 5)).ToArray()));
            imbalances.Add(MoeBalance.Imbalance(load));
            sum.Dispose();
        }
        if (imbalances.Count > 0)
        {
            line["expert_load"] = loadRows;
            line["imbalance"] = new JsonArray(imbalances.Select(v => (JsonNode)Math.Round(v, 4)).ToArray());
            line["imbalance_mean"] = imbalances.Average();
        }
        return line;
    }

    /// Inputs [B, L], targets [B, L], loss mask [B, L] for (step, micro): fully determined by the seed.
    private (Tensor Inputs, Tensor Targets, Tensor Mask, torch.Generator Generator) Batch(int step, int micro, Stage stage, int seqLen)
    {
        var seed = StepSeed.Of(_config.Seed, step, micro);
        var random = new Random(seed);
        var generator = new torch.Generator((ulong)seed);
        var mixture = stage.Mixture ?? _config.Mixture ?? _data.Keys.ToDictionary(k => k, _ => 1.0);
        var names = mixture.Keys.Order(StringComparer.Ordinal).ToList();
        var weights = names.Select(n => mixture[n]).ToArray();
        var window = seqLen + 1 + Augmenter.Slack(_config.Augment, seqLen + 1);
        var rows = new List<(Tensor, Tensor)>();
        for (int r = 0; r < _config.BatchSize; r++)
            rows.Add(_data[Pick(names, weights, random)].Train.Sample(1, window, random));
        var tokens = cat(rows.Select(p => p.Item1).ToList(), 0);
        var mask = cat(rows.Select(p => p.Item2).ToList(), 0);
        if (_config.Augment.Delete > 0) (tokens, mask) = Augmenter.Delete(tokens, mask, seqLen + 1, _config.Augment, generator);
        return (tokens.narrow(1, 0, seqLen), tokens.narrow(1, 1, seqLen), mask.narrow(1, 1, seqLen).to_type(ScalarType.Float32), generator);
    }

    private static string Pick(List<string> names, double[] weights, Random random)
    {
        var x = random.NextDouble() * weights.Sum();
        for (int i = 0; i < names.Count; i++) if ((x -= weights[i]) < 0) return names[i];
        return names[^1];
    }

    public static Tensor MaskedCrossEntropy(Tensor logits, Tensor targets, Tensor mask)
    {
        using var scope = NewDisposeScope();
        var losses = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), targets.reshape(-1), reduction: nn.Reduction.None);
        var flatMask = mask.reshape(-1);
        return ((losses * flatMask).sum() / flatMask.sum().clamp(min: 1)).MoveToOuterDisposeScope();
    }

    private void LogValidation(int step, double? loss)
    {
        if (loss is { } l) Log(new JsonObject { ["step"] = step, ["val_loss"] = l, ["val_ppl"] = Math.Exp(Math.Min(l, 700)) });
    }

    /// Mean masked next-token loss over the validation windows of every source (null without any).
    public double? Evaluate()
    {
        _model.eval();
        double sum = 0, count = 0;
        foreach (var (_, val) in _data.Values)
        {
            if (val is null) continue;
            var (s, n) = LossOver(_model, val, _config.BatchSize, _config.SeqLen, _config.EvalBatches);
            (sum, count) = (sum + s, count + n);
        }
        return count == 0 ? null : sum / count;
    }

    /// Summed masked next-token loss and the number of loss tokens over up to `batches` consecutive
    /// windows of `seqLen + 1` tokens of a split.
    public static (double Sum, double Tokens) LossOver(CausalLM model, TokenDataset data, int rows, int seqLen, int batches)
    {
        using var noGrad = no_grad();
        double sum = 0, count = 0;
        foreach (var (tokens, mask) in data.Sequential(rows, seqLen + 1, batches))
        {
            using var scope = NewDisposeScope();
            if (tokens.max().item<long>() >= model.Config.VocabSize) throw new R1SharpException($"{data.Directory}: token ids outside the model's vocabulary");
            var m = mask.narrow(1, 1, seqLen).to_type(ScalarType.Float32);
            var n = m.sum().item<float>();
            sum += MaskedCrossEntropy(model.Forward(tokens.narrow(1, 0, seqLen)), tokens.narrow(1, 1, seqLen), m).item<float>() * n;
            count += n;
        }
        return (sum, count);
    }

    private (Stage Stage, string Name) StageAt(int step)
    {
        int end = 0;
        var stages = _config.ResolvedStages;
        for (int i = 0; i < stages.Count; i++)
        {
            end += stages[i].Steps;
            if (step < end) return (stages[i], stages[i].Name ?? $"stage{i + 1}");
        }
        return (stages[^1], stages[^1].Name ?? $"stage{stages.Count}");
    }

    private void OpenData()
    {
        foreach (var (name, source) in _config.Data.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            string dir;
            if (source.Builtin is { } task)
            {
                dir = Path.Combine(_runDir, "data", name);
                if (!File.Exists(Path.Combine(dir, DatasetPreparer.IndexFile)))
                    DatasetPreparer.Write(DatasetPreparer.Builtin(task, source.Examples, source.Difficulty, _config.Seed, _encoder), dir, _config.ValFraction, _config.Seed, _encoder,
                        new JsonObject { ["builtin"] = task, ["examples"] = source.Examples, ["difficulty"] = source.Difficulty });
            }
            else dir = Path.GetFullPath(Path.Combine(_configDir, source.Path!));
            var index = TokenDataset.ReadIndex(dir);
            var identity = (string?)index["tokenizer"] ?? "byte-level";
            if (identity != _encoder.Identity)
                throw new R1SharpException($"{dir}: prepared with another tokenizer ({Short(identity)}) than the run's ({Short(_encoder.Identity)}); prepare it with --tokenizer {_tokenizerSource ?? "(none: the byte tokenizer)"}");
            var hasVal = (long?)index["splits"]?["val"]?["tokens"] > 0;
            _data[name] = (TokenDataset.Open(dir, "train"), hasVal ? TokenDataset.Open(dir, "val") : null);
            _inputs.AddRange(new[] { "train.tokens", "train.mask", "val.tokens", "val.mask", DatasetPreparer.IndexFile }.Select(f => Path.Combine(dir, f)));
        }
    }

    /// Returns the step to start from.
    private int BuildModel(bool resume)
    {
        var modelConfigPath = Path.GetFullPath(Path.Combine(_configDir, _config.Model));
        _inputs.Add(modelConfigPath);
        var latest = resume ? RunCheckpoints.Latest(_runDir) : null;
        if (resume && latest is null) throw new R1SharpException($"--resume: no checkpoint in {RunCheckpoints.Folder(_runDir)}");
        int start = 0;
        if (latest is not null) start = (int)RunCheckpoints.ReadState(latest)["step"]!;
        if (latest is not null && _config.Lora is null) _model = ModelIO.Load(latest);
        else if (_config.InitFrom is { } from)
        {
            _model = ModelIO.Load(Path.GetFullPath(Path.Combine(_configDir, from)));
        }
        else
        {
            var config = ModelConfig.Load(modelConfigPath);
            _model = ModelIO.Create(config);
            ModelIO.Initialize(_model, _config.Seed);
        }
        _model.GradientCheckpointing = _config.GradientCheckpointing;
        if (_model.Config.VocabSize < _encoder.VocabSize)
            throw new R1SharpException($"the model's vocab_size {_model.Config.VocabSize} is smaller than its tokenizer's {_encoder.VocabSize} tokens");
        var c = DeepSeek?.DeepSeek;
        if (_config.MtpWeight > 0 && (c?.NumNextnPredictLayers ?? 0) == 0) throw new R1SharpException("mtp_weight > 0 needs a DeepSeek model with num_nextn_predict_layers > 0");
        if (_config.BiasUpdateSpeed > 0 && c?.HasCorrectionBias != true) throw new R1SharpException("bias_update_speed > 0 needs topk_method noaux_tc (a correction bias) in the model config");

        if (_config.Lora is { } lora)
        {
            // The base (init_from, or the seeded initialisation) stays frozen; a resumed run reloads its adapters.
            var config = lora.ToConfig(_config.InitFrom is { } b ? Path.GetFullPath(Path.Combine(_configDir, b)) : modelConfigPath);
            var adapters = latest is not null ? LoraAdapter.Load(_model, latest, trainable: true) : LoraAdapter.Attach(_model, config, _config.Seed);
            _lora = (config, adapters);
            _trained = adapters.SelectMany(a => new[] { a.Weights.A, a.Weights.B }).ToList();
        }
        else _trained = _model.parameters().Where(p => p.requires_grad).ToList();
        _optimizer = Optimization.AdamW(_trained, _config.Lr, _config.Beta1, _config.Beta2, _config.WeightDecay);
        if (latest is not null) _optimizer.load_state_dict(Path.Combine(latest, RunCheckpoints.OptimizerFile));
        return start;
    }

    private string? _tokenizerSource;

    private static string Short(string identity) => identity.Length > 16 ? identity[..12] + "…" : identity;

    /// The starting model's tokenizer, else the `tokenizer` folder, else the first prepared data folder's; the byte tokenizer without any.
    private DocumentEncoder RunTokenizer()
    {
        var candidates = new List<string>();
        if (_config.InitFrom is { } from) candidates.Add(Path.GetFullPath(Path.Combine(_configDir, from)));
        if (_config.Tokenizer is { } t)
        {
            var dir = Path.GetFullPath(Path.Combine(_configDir, t));
            if (!File.Exists(Path.Combine(dir, "tokenizer.json"))) throw new R1SharpException($"tokenizer: {dir} has no tokenizer.json");
            candidates.Add(dir);
        }
        candidates.AddRange(_config.Data.Values.Where(d => d.Path is not null).Select(d => Path.GetFullPath(Path.Combine(_configDir, d.Path!))));
        _tokenizerSource = candidates.FirstOrDefault(PretrainedTokenizer.InFolder);
        if (_tokenizerSource is null) return DocumentEncoder.Byte;
        _inputs.Add(Path.Combine(_tokenizerSource, "tokenizer.json"));
        return DocumentEncoder.For(_tokenizerSource);
    }

    private void Log(JsonObject line)
    {
        _folder!.AppendMetrics(line);
        _history.Add(line);
    }

    public void Dispose()
    {
        foreach (var (train, val) in _data.Values) { train.Dispose(); val?.Dispose(); }
        _optimizer?.Dispose();
        _model?.Dispose();
        _folder?.Dispose();
    }
}
