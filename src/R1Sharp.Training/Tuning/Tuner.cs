using System.Diagnostics;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using R1Sharp.Training.Rl;
using R1Sharp.Training.Training;

namespace R1Sharp.Training.Tuning;

/// `r1sharp tune`: what to search and how.
public sealed record TuneOptions
{
    public required string ConfigPath { get; init; }
    public required string SpacePath { get; init; }
    public required string StudyDir { get; init; }
    /// The `r1sharp` executable (and its leading arguments, e.g. `dotnet r1sharp.dll`) that runs trials.
    public required IReadOnlyList<string> Launcher { get; init; }
    public IReadOnlyList<string> Sets { get; init; } = [];
    public int Trials { get; init; } = 20;
    public TimeSpan? Timeout { get; init; }
    public string? Metric { get; init; }
    public string? Direction { get; init; }
    public string Sampler { get; init; } = "tpe";
    public string Pruner { get; init; } = "median";
    public int Seed { get; init; }
    /// Worker processes sharing this machine: each trial gets its share of the cores.
    public int Workers { get; init; } = 1;
}

/// One worker of a study: claims trials from the study file until it has its number of finished
/// trials (or the timeout passes), running each as its own process. Any number of workers, in this
/// or other processes, may share a study.
public sealed class Tuner
{
    public const int MaxTrials = 100_000;
    private const int MaxFailuresInARow = 3;

    private readonly TuneOptions _options;
    private readonly JsonObject _baseConfig;
    private readonly string _configDir;

    public Tuner(TuneOptions options)
    {
        _options = options;
        if (options.Trials is < 1 or > MaxTrials) throw new R1SharpException($"--trials must be in 1..{MaxTrials}");
        _configDir = Path.GetDirectoryName(Path.GetFullPath(options.ConfigPath))!;
        _baseConfig = TrainConfig.ReadJson(options.ConfigPath, options.Sets);
        Kind = _baseConfig.ContainsKey("data") ? "train" : _baseConfig.ContainsKey("init_from") ? "grpo"
            : throw new R1SharpException($"{options.ConfigPath}: neither a train config (with \"data\") nor a grpo config (with \"init_from\")");
        Space = SearchSpace.Load(options.SpacePath);
        CheckKeys();
        var metric = options.Metric ?? (Kind == "train" ? "val_loss" : "eval_pass1");
        var direction = options.Direction ?? (metric is "val_loss" or "val_ppl" or "loss" or "kl" ? "minimize" : "maximize");
        if (direction is not ("minimize" or "maximize")) throw new R1SharpException($"--direction must be minimize or maximize, not '{direction}'");
        if (options.Sampler is not ("tpe" or "random")) throw new R1SharpException($"--sampler must be tpe or random, not '{options.Sampler}'");
        if (options.Pruner is not ("median" or "asha" or "none")) throw new R1SharpException($"--pruner must be median, asha or none, not '{options.Pruner}'");
        var fingerprint = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(File.ReadAllText(options.ConfigPath) + "\n" + string.Join("\n", options.Sets))));
        Definition = new StudyDefinition(Kind, fingerprint, SpaceText(Space), metric, direction, options.Sampler, options.Pruner, options.Seed);
        using var store = StudyStore.Open(options.StudyDir);
        store.Define(Definition, DefaultParameters());
    }

    /// The base config's own values of the searched keys, when the space admits them (null otherwise).
    private Dictionary<string, JsonNode?>? DefaultParameters()
    {
        var values = new Dictionary<string, JsonNode?>();
        JsonObject? model = null;
        // Through the config record, so options left at their defaults have values too.
        var resolved = Kind == "train"
            ? System.Text.Json.JsonSerializer.SerializeToNode(TrainConfig.Load(_options.ConfigPath, _options.Sets).Config)
            : System.Text.Json.JsonSerializer.SerializeToNode(GrpoConfig.Load(_options.ConfigPath, _options.Sets).Config);
        foreach (var p in Space.Parameters)
        {
            if (!Space.IsActive(p, values)) continue;
            JsonNode? node;
            if (Kind == "train" && p.Name.StartsWith("model.", StringComparison.Ordinal)) node = (model ??= ModelConfigJson())[p.Name["model.".Length..]];
            else
            {
                node = resolved;
                foreach (var key in p.Name.Split('.')) node = node is JsonObject o ? o[key] : null;
            }
            if (node is null || !p.Contains(node)) return null;
            values[p.Name] = node.DeepClone();
        }
        return values;
    }

    public string Kind { get; }
    public SearchSpace Space { get; }
    public StudyDefinition Definition { get; }
    public string TrialsDir => Path.Combine(_options.StudyDir, "trials");

    private static string SpaceText(SearchSpace space) => string.Join(";", space.Parameters.Select(p =>
        $"{p.Name}:{p.Kind}:{p.Low:R}:{p.High:R}:{p.Log}:{p.Step:R}:{string.Join(",", p.Choices.Select(c => c?.ToJsonString() ?? "null"))}:{p.When?.Key}"));

    /// Every searched key must be an option of the run (or, `model.*`, a key of its model config file).
    private void CheckKeys()
    {
        var options = (Kind == "train" ? typeof(TrainConfig) : typeof(GrpoConfig)).GetProperties()
            .Select(p => p.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name).OfType<string>().ToHashSet();
        foreach (var p in Space.Parameters)
        {
            var top = p.Name.Split('.')[0];
            if (top == "model" && Kind == "train" && p.Name.Contains('.'))
            {
                var model = ModelConfigJson();
                if (model[p.Name["model.".Length..]] is null)
                    throw new R1SharpException($"{_options.SpacePath}: {p.Name}: '{p.Name["model.".Length..]}' is not a key of the model config {_baseConfig["model"]}");
            }
            else if (!options.Contains(top))
                throw new R1SharpException($"{_options.SpacePath}: '{p.Name}' is not an option of a {Kind} config");
        }
    }

    private JsonObject ModelConfigJson()
    {
        var model = Str(_baseConfig["model"]) ?? throw new R1SharpException($"{_options.ConfigPath}: \"model\" must name a model config file");
        return TrainConfig.ReadJson(Path.GetFullPath(Path.Combine(_configDir, model)), []);
    }

    private ISampler Sampler => _options.Sampler == "random" ? new RandomSampler() : new TpeSampler();

    private IPruner? Pruner => _options.Pruner switch { "median" => new MedianPruner(), "asha" => new SuccessiveHalvingPruner(), _ => null };

    /// Runs trials until the study has `Trials` finished ones, nothing is left to claim, or the timeout passes.
    public void RunWorker(Action<string> log, CancellationToken cancel)
    {
        var watch = Stopwatch.StartNew();
        int failures = 0;
        using var store = StudyStore.Open(_options.StudyDir);
        while (!cancel.IsCancellationRequested && (_options.Timeout is not { } t || watch.Elapsed < t))
        {
            var claim = store.Claim(WorkerIdentity.Current, _options.Trials,
                (trials, number) => Sampler.Sample(Space, trials, Definition.Sign, new Random(unchecked(_options.Seed * 1_000_003 + number))));
            if (claim is not { } trial) break;
            var described = string.Join(", ", trial.Params.Select(kv => $"{kv.Key}={kv.Value?.ToJsonString() ?? "null"}"));
            log($"trial {trial.Number} started: {described}");
            var result = RunTrial(trial.Number, trial.Params, store, cancel);
            if (result.State == TrialState.Running)   // cancelled: left for the next worker to retry
            {
                log($"trial {trial.Number} interrupted; a resumed study retries it");
                break;
            }
            store.Finish(trial.Number, result.State, result.Value, result.Message);
            log($"trial {trial.Number} {result.State.ToString().ToLowerInvariant()}" + (result.Value is { } v ? $": {Definition.Metric} {v:G6}" : "") + (result.Message is { } m ? $" ({m})" : ""));
            failures = result.State == TrialState.Fail ? failures + 1 : 0;
            if (failures >= MaxFailuresInARow)
                throw new R1SharpException($"{MaxFailuresInARow} trials in a row failed; the last: {result.Message}");
        }
    }

    private TrialResult RunTrial(int number, Dictionary<string, JsonNode?> parameters, StudyStore store, CancellationToken cancel)
    {
        var dir = Path.Combine(TrialsDir, number.ToString("D4"));
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);   // a number is claimed once; anything here is debris
        Directory.CreateDirectory(dir);
        List<string> sets;
        try
        {
            sets = TrialSets(parameters, dir);
            var modelConfig = Path.Combine(dir, "model_config.json");
            if (File.Exists(modelConfig)) R1Sharp.Models.ModelConfig.Load(modelConfig);
            if (Kind == "train") TrainConfig.Load(_options.ConfigPath, sets);
            else GrpoConfig.Load(_options.ConfigPath, sets);
        }
        catch (R1SharpException e)
        {
            return new TrialResult(TrialState.Fail, null, "invalid config: " + e.Message);
        }
        var command = _options.Launcher.Concat([Kind, "--config", Path.GetFullPath(_options.ConfigPath), "--out", dir])
            .Concat(sets.SelectMany(s => new[] { "--set", s })).ToList();
        File.WriteAllText(Path.Combine(dir, "command.txt"), string.Join(" ", command.Select(a => a.Contains(' ') ? $"'{a}'" : a)) + "\n");
        return TrialProcess.Run(command, dir, Definition.Metric, number, parameters, store, Pruner, Definition.Sign, TrialEnvironment(), cancel);
    }

    /// With K workers each trial's libtorch and kernel threads get 1/K of the cores (unless the user chose).
    private Dictionary<string, string> TrialEnvironment()
    {
        var threads = Math.Max(1, Environment.ProcessorCount / _options.Workers).ToString();
        var env = new Dictionary<string, string>();
        if (_options.Workers > 1)
            foreach (var key in new[] { "OMP_NUM_THREADS", "DOTNET_PROCESSOR_COUNT" })
                if (Environment.GetEnvironmentVariable(key) is null) env[key] = threads;
        return env;
    }

    /// The `--set` overrides of a trial: its parameters over the tune's own; `model.*` keys go into a
    /// copy of the model config in the trial folder, which the run then names as its model.
    private List<string> TrialSets(IReadOnlyDictionary<string, JsonNode?> parameters, string dir)
    {
        var sets = new List<string>(_options.Sets);
        sets.AddRange(RunSets(parameters));
        if (ModelWith(parameters) is { } model)
        {
            var path = Path.Combine(dir, "model_config.json");
            AtomicFile.WriteAllText(path, model.ToJsonString(Indented) + "\n");
            sets.Add($"model={path}");
        }
        return sets;
    }

    private IEnumerable<string> RunSets(IReadOnlyDictionary<string, JsonNode?> parameters) =>
        parameters.Where(kv => !IsModelKey(kv.Key)).Select(kv => $"{kv.Key}={kv.Value?.ToJsonString() ?? "null"}");

    private bool IsModelKey(string name) => Kind == "train" && name.StartsWith("model.", StringComparison.Ordinal);

    /// The model config with the `model.*` parameters applied; null when there are none.
    private JsonObject? ModelWith(IReadOnlyDictionary<string, JsonNode?> parameters)
    {
        JsonObject? model = null;
        foreach (var (name, value) in parameters.Where(kv => IsModelKey(kv.Key)))
            (model ??= ModelConfigJson())[name["model.".Length..]] = value?.DeepClone();
        return model;
    }

    private static readonly System.Text.Json.JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// The base config with a trial's parameters applied, its paths made relative to `dir`: a config ready to run from there.
    public JsonObject ConfigFor(IReadOnlyDictionary<string, JsonNode?> parameters, string dir, string modelFileName)
    {
        var config = TrainConfig.ReadJson(_options.ConfigPath, [.. _options.Sets, .. RunSets(parameters)]);
        string Rebase(string p) => Path.GetRelativePath(dir, Path.GetFullPath(Path.Combine(_configDir, p)));
        if (Str(config["init_from"]) is { } init) config["init_from"] = Rebase(init);
        if (config["data"] is JsonObject data)
            foreach (var (_, source) in data)
                if (source is JsonObject s && Str(s["path"]) is { } path) s["path"] = Rebase(path);
        if (ModelWith(parameters) is { } model)
        {
            AtomicFile.WriteAllText(Path.Combine(dir, modelFileName), model.ToJsonString(Indented) + "\n");
            config["model"] = modelFileName;
        }
        else if (Str(config["model"]) is { } m) config["model"] = Rebase(m);
        return config;
    }

    private static string? Str(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}
