using System.CommandLine;
using System.Text.Json;
using R1Sharp.Checkpoints;
using R1Sharp.Diagnostics;
using R1Sharp.Models;

namespace R1Sharp.Cli.Commands;

public static class BenchCommand
{
    public static Command Create()
    {
        var dir = new Argument<string>("DIR") { Description = "Hugging Face model folder" };
        var tokens = new Option<int>("--tokens") { Description = "prefill length", DefaultValueFactory = _ => 128 };
        var steps = new Option<int>("--decode-steps") { Description = "cached decode steps", DefaultValueFactory = _ => 32 };
        var weights = CommandRunner.WeightsOption();
        var forward = new Command("forward", "JSON figures: prefill tokens/s, decode tokens/s with and without the KV cache, and (MoE models) the MoE overhead ratio.") { dir, tokens, steps, weights };
        forward.SetAction(parse => CommandRunner.Guard(() =>
        {
            var n = parse.GetValue(tokens);
            if (n < 1) throw new R1SharpException("--tokens must be >= 1");
            using var model = ModelIO.Load(parse.GetValue(dir)!, CommandRunner.ParseWeights(parse.GetValue(weights)!));
            var decodeSteps = parse.GetValue(steps);
            if (n + decodeSteps + 1 > model.Config.MaxPositionEmbeddings)
                throw new R1SharpException($"--tokens + --decode-steps exceed max_position_embeddings {model.Config.MaxPositionEmbeddings}");
            var r = ForwardBenchmark.Run(model, n, decodeSteps);
            var summary = ModelSummary.Of(model);
            Console.Out.WriteLine(JsonSerializer.Serialize(new
            {
                model = parse.GetValue(dir),
                parameters = summary.TotalParameters,
                active_parameters = summary.ActiveParameters,
                threads = r.Threads,
                prefill_tokens = r.PrefillTokens,
                prefill_tokens_per_s = Math.Round(r.PrefillTokensPerSecond, 1),
                decode_steps = r.DecodeSteps,
                decode_tokens_per_s = Math.Round(r.DecodeTokensPerSecond, 2),
                decode_tokens_per_s_without_cache = Math.Round(r.UncachedDecodeTokensPerSecond, 2),
                cache_speedup = Math.Round(r.DecodeTokensPerSecond / r.UncachedDecodeTokensPerSecond, 2),
                moe_overhead_ratio = Nullable(r.MoeOverheadRatioPrefill, 3),
                moe_overhead_ratio_decode = Nullable(r.MoeOverheadRatioDecode, 3),
                moe_layer_ms = Nullable(r.MoeSecondsPrefill * 1000, 3),
                dense_equivalent_ms = Nullable(r.DenseSecondsPrefill * 1000, 3),
                moe_layer_decode_ms = Nullable(r.MoeSecondsDecode * 1000, 4),
                dense_equivalent_decode_ms = Nullable(r.DenseSecondsDecode * 1000, 4),
            }));
            return 0;
        }));
        var command = new Command("bench", "Benchmarks that print JSON figures.") { forward, Quant(), Train(), Tokenizer(), Serve(), Long(), Tune() };
        return command;
    }

    private static double? Nullable(double value, int digits) => double.IsNaN(value) ? null : Math.Round(value, digits);

    private static Command Quant()
    {
        var dir = new Argument<string>("DIR") { Description = "Hugging Face model folder (the float32 reference)" };
        var data = new Option<string?>("--data") { Description = "evaluation token ids: JSONL {\"ids\":[…]} or one comma-separated line per sequence (default: 8 seeded random sequences of 64 tokens)" };
        var formats = new Option<string>("--formats") { Description = "formats to compare, the first is the reference", DefaultValueFactory = _ => "f32,bf16,fp8,int8,int4" };
        var steps = new Option<int>("--decode-steps") { DefaultValueFactory = _ => 32 };
        var command = new Command("quant", "JSON per weight format: weight memory, process peak, decode tokens/s, |Δlogit| and perplexity change.") { dir, data, formats, steps };
        command.SetAction(parse => CommandRunner.Guard(() =>
        {
            var path = parse.GetValue(dir)!;
            var config = ModelConfig.Load(path);
            var chosen = parse.GetValue(formats)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(f => Enum.TryParse<WeightFormat>(f, true, out var w) ? w : throw new R1SharpException($"--formats: unknown format '{f}' (f32, bf16, fp8, int8, int4)")).ToList();
            var sequences = parse.GetValue(data) is { } file ? EvaluationData.Read(file) : EvaluationData.Random(config.VocabSize, Math.Min(64, config.MaxPositionEmbeddings), 8);
            foreach (var s in sequences)
                foreach (var id in s)
                    if (id < 0 || id >= config.VocabSize) throw new R1SharpException($"--data: token id {id} is outside the vocabulary (0..{config.VocabSize - 1})");
            var rows = QuantBenchmark.Run(path, sequences, chosen, parse.GetValue(steps));
            var reference = rows[0].WeightBytes;
            Console.Out.WriteLine(JsonSerializer.Serialize(new
            {
                model = path,
                eval_sequences = sequences.Count,
                eval_tokens = sequences.Sum(s => s.Length),
                reference = rows[0].Format,
                formats = rows.Select(r => new
                {
                    format = r.Format,
                    weight_bytes = r.WeightBytes,
                    weight_ratio = Math.Round((double)r.WeightBytes / reference, 4),
                    process_peak_bytes = r.ProcessPeakBytes,
                    decode_tokens_per_s = Math.Round(r.DecodeTokensPerSecond, 2),
                    max_abs_logit_diff = r.MaxAbsLogitDiff,
                    mean_abs_logit_diff = r.MeanAbsLogitDiff,
                    perplexity = Math.Round(r.Perplexity, 4),
                    perplexity_change = Math.Round(r.PerplexityChange, 4),
                }),
            }));
            return 0;
        }));
        return command;
    }

    private static Command Tokenizer()
    {
        var dir = new Argument<string>("DIR") { Description = "folder with tokenizer.json" };
        var file = new Option<string?>("--file") { Description = "UTF-8 text to encode (default: a built-in ~4 MB multilingual text)" };
        var command = new Command("tokenizer", "JSON: encode MB/s (single thread, first pass and warm) and decode tokens/s.") { dir, file };
        command.SetAction(parse => CommandRunner.Guard(() =>
        {
            var tokenizer = R1Sharp.Tokenization.PretrainedTokenizer.Load(parse.GetValue(dir)!);
            var text = parse.GetValue(file) is { } path
                ? (File.Exists(path) ? File.ReadAllText(path) : throw new R1SharpException($"--file: not found: {path}"))
                : TokenizerBenchmark.BuiltInText();
            var r = TokenizerBenchmark.Run(tokenizer, text);
            Console.Out.WriteLine(JsonSerializer.Serialize(new
            {
                tokenizer = parse.GetValue(dir),
                bytes = r.Bytes,
                tokens = r.Tokens,
                encode_mb_per_s_first_pass = Math.Round(r.ColdMegabytesPerSecond, 2),
                encode_mb_per_s = Math.Round(r.WarmMegabytesPerSecond, 2),
                decode_tokens_per_s = Math.Round(r.DecodeTokensPerSecond),
            }));
            return 0;
        }));
        return command;
    }

    private static Command Serve()
    {
        var dir = new Argument<string>("DIR") { Description = "model folder with tokenizer files" };
        var levels = new Option<string>("--concurrency") { Description = "concurrent streaming clients per level", DefaultValueFactory = _ => "1,4,16" };
        var requests = new Option<int>("--requests") { Description = "requests per client at each level", DefaultValueFactory = _ => 3 };
        var maxTokens = new Option<int>("--max-tokens") { Description = "tokens generated per request (eos ignored)", DefaultValueFactory = _ => 64 };
        var weights = CommandRunner.WeightsOption();
        var command = new Command("serve", "JSON per concurrency: aggregate tokens/s, p50/p99 time to first token and inter-token latency, through the HTTP server.") { dir, levels, requests, maxTokens, weights };
        command.SetAction(parse => CommandRunner.Guard(() =>
        {
            var concurrency = CommandRunner.ParseIds(parse.GetValue(levels)!, "--concurrency").Select(c => c is >= 1 and <= 256 ? (int)c : throw new R1SharpException("--concurrency values must be in 1..256")).ToList();
            if (parse.GetValue(requests) < 1 || parse.GetValue(maxTokens) < 1) throw new R1SharpException("--requests and --max-tokens must be >= 1");
            var options = new R1Sharp.Server.ServerOptions { ModelDir = parse.GetValue(dir)!, Weights = parse.GetValue(weights)!, MaxQueue = 1024 };
            options.Validate();
            using var generator = R1Sharp.Generation.TextGenerator.Load(options.ModelDir, CommandRunner.ParseWeights(options.Weights));
            const string prompt = "Reasoning models think before they answer: they write out the steps, check them, and only then commit to a final answer.";
            var results = R1Sharp.Server.ServeBenchmark.RunAsync(generator, options, concurrency, parse.GetValue(requests), parse.GetValue(maxTokens), prompt).GetAwaiter().GetResult();
            var single = results.FirstOrDefault(r => r.Concurrency == 1)?.TokensPerSecond;
            Console.Out.WriteLine(JsonSerializer.Serialize(new
            {
                model = options.ModelDir,
                parameters = generator.Model.parameters().Sum(p => p.NumberOfElements),
                prompt_tokens = generator.Plain(prompt).Ids.Length,
                max_tokens = parse.GetValue(maxTokens),
                threads = TorchSharp.torch.get_num_threads(),
                levels = results.Select(r => new
                {
                    concurrency = r.Concurrency,
                    requests = r.Requests,
                    completion_tokens = r.CompletionTokens,
                    seconds = Math.Round(r.Seconds, 2),
                    tokens_per_s = Math.Round(r.TokensPerSecond, 1),
                    speedup_vs_1 = single is double s ? Math.Round(r.TokensPerSecond / s, 2) : (double?)null,
                    ttft_p50_ms = Math.Round(r.TtftP50Ms, 1),
                    ttft_p99_ms = Math.Round(r.TtftP99Ms, 1),
                    itl_p50_ms = Math.Round(r.ItlP50Ms, 2),
                    itl_p99_ms = Math.Round(r.ItlP99Ms, 2),
                }),
            }));
            return 0;
        }));
        return command;
    }

    private static Command Long()
    {
        var dir = new Argument<string>("DIR") { Description = "model folder (its weights, run with full, sliding-window and local+global attention)" };
        var lengths = new Option<string>("--lengths") { Description = "sequence lengths (k = 1024)", DefaultValueFactory = _ => "1k,4k,16k" };
        var window = new Option<int>("--window") { Description = "sliding window of local layers", DefaultValueFactory = _ => 512 };
        var sinks = new Option<int>("--sinks") { Description = "attention-sink tokens local layers always see", DefaultValueFactory = _ => 4 };
        var steps = new Option<int>("--decode-steps") { Description = "decode steps after the prefill (tokens/s from the median step)", DefaultValueFactory = _ => 64 };
        var chunk = new Option<int>("--chunk") { Description = "prefill chunk (tokens per forward)", DefaultValueFactory = _ => 512 };
        var command = new Command("long", "JSON: prefill and decode tokens/s and KV-cache bytes for full, sliding-window and local+global attention at each length.") { dir, lengths, window, sinks, steps, chunk };
        command.SetAction(parse => CommandRunner.Guard(() =>
        {
            var parsed = parse.GetValue(lengths)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(ParseLength).ToList();
            if (parsed.Count == 0) throw new R1SharpException("--lengths needs at least one length, e.g. 1k,4k,16k");
            if (parse.GetValue(window) < 1 || parse.GetValue(sinks) < 0 || parse.GetValue(steps) < 1 || parse.GetValue(chunk) < 1)
                throw new R1SharpException("--window, --decode-steps and --chunk must be >= 1, --sinks >= 0");
            var rows = LongContextBenchmark.Run(parse.GetValue(dir)!, parsed, parse.GetValue(window), parse.GetValue(sinks), parse.GetValue(steps), parse.GetValue(chunk));
            Console.Out.WriteLine(JsonSerializer.Serialize(new
            {
                model = parse.GetValue(dir),
                window = parse.GetValue(window),
                sinks = parse.GetValue(sinks),
                threads = TorchSharp.torch.get_num_threads(),
                rows = rows.Select(r => new
                {
                    variant = r.Variant,
                    length = r.Length,
                    prefill_tokens_per_s = Math.Round(r.PrefillTokensPerSecond, 1),
                    decode_tokens_per_s = Math.Round(r.DecodeTokensPerSecond, 1),
                    cache_bytes = r.CacheBytes,
                    local_layer_cache_bytes = r.LocalLayerCacheBytes,
                    global_layer_cache_bytes = r.GlobalLayerCacheBytes,
                }),
            }));
            return 0;
        }));
        return command;
    }

    private static int ParseLength(string text)
    {
        var k = text.EndsWith('k') || text.EndsWith('K');
        if (!int.TryParse(k ? text[..^1] : text, out var n) || n < 1) throw new R1SharpException($"--lengths: '{text}' is not a length (e.g. 4k or 4096)");
        return k ? n * 1024 : n;
    }

    private static Command Train()
    {
        var config = new Option<string>("--config") { Description = "training config JSON", Required = true };
        var set = new Option<string[]>("--set") { Description = "override a config key (key=value)" };
        var steps = new Option<int>("--steps") { Description = "timed steps (after 2 warm-up steps)", DefaultValueFactory = _ => 5 };
        var command = new Command("train", "JSON: training tokens/s, model FLOPs per token, and MFU against this machine's measured float32 matmul rate.") { config, set, steps };
        command.SetAction(parse => CommandRunner.Guard(() =>
        {
            var path = Path.GetFullPath(parse.GetValue(config)!);
            var (trainConfig, resolved) = R1Sharp.Training.Training.TrainConfig.Load(path, parse.GetValue(set) ?? []);
            if (parse.GetValue(steps) < 1) throw new R1SharpException("--steps must be >= 1");
            var r = R1Sharp.Training.Training.TrainBenchmark.Run(trainConfig, resolved, Path.GetDirectoryName(path)!, parse.GetValue(steps));
            Console.Out.WriteLine(JsonSerializer.Serialize(new
            {
                config = path,
                tokens_per_step = r.TokensPerStep,
                measured_steps = r.MeasuredSteps,
                tokens_per_s = Math.Round(r.TokensPerSecond, 1),
                active_matmul_parameters = r.ActiveMatmulParameters,
                flops_per_token = r.FlopsPerToken,
                achieved_gflops = Math.Round(r.AchievedFlops / 1e9, 2),
                matmul_gflops = Math.Round(r.MatmulFlops / 1e9, 2),
                mfu = Math.Round(r.Mfu, 4),
                threads = TorchSharp.torch.get_num_threads(),
                peak_rss_bytes = R1Sharp.Diagnostics.QuantBenchmark.PeakResidentBytes(),
                gradient_checkpointing = trainConfig.GradientCheckpointing,
                lora = trainConfig.Lora is { } lora ? new { r = lora.R, target_modules = lora.TargetModules?.ToJsonString() } : null,
                trained_parameters = r.TrainedParameters,
            }));
            return 0;
        }));
        return command;
    }

    private static Command Tune()
    {
        var budget = new Option<int>("--budget") { Description = "evaluations per run", DefaultValueFactory = _ => 60 };
        var seeds = new Option<int>("--seeds") { Description = "runs per sampler and function (seeds 0..N-1)", DefaultValueFactory = _ => 20 };
        var functions = new Option<string>("--functions") { Description = "test functions", DefaultValueFactory = _ => string.Join(",", R1Sharp.Training.Tuning.TuneBenchmark.Functions.Select(f => f.Name)) };
        var samplers = new Option<string>("--samplers") { DefaultValueFactory = _ => "tpe,random" };
        var command = new Command("tune", "JSON per function and sampler: the median (and quartiles) over seeds of the best value found within the budget; bench/optuna_tune.py runs Optuna on the same functions.") { budget, seeds, functions, samplers };
        command.SetAction(parse => CommandRunner.Guard(() =>
        {
            int b = parse.GetValue(budget), n = parse.GetValue(seeds);
            if (b is < 1 or > 10_000 || n is < 1 or > 10_000) throw new R1SharpException("--budget and --seeds must be in 1..10000");
            var known = R1Sharp.Training.Tuning.TuneBenchmark.Functions.ToDictionary(f => f.Name);
            foreach (var name in parse.GetValue(functions)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var f = known.GetValueOrDefault(name) ?? throw new R1SharpException($"unknown function '{name}' ({string.Join(", ", known.Keys)})");
                foreach (var sampler in parse.GetValue(samplers)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    if (sampler is not ("tpe" or "random")) throw new R1SharpException($"unknown sampler '{sampler}' (tpe, random)");
                    var r = R1Sharp.Training.Tuning.TuneBenchmark.Run(f, sampler, b, n);
                    Console.Out.WriteLine(JsonSerializer.Serialize(new
                    {
                        function = r.Function, sampler = "r1sharp-" + r.Sampler, budget = r.Budget, seeds = r.Seeds, optimum = r.Optimum,
                        median_best = Math.Round(r.Median, 6), q25 = Math.Round(r.Q25, 6), q75 = Math.Round(r.Q75, 6), seconds_per_run = Math.Round(r.SecondsPerRun, 4),
                    }));
                }
            }
            return 0;
        }));
        return command;
    }
}
