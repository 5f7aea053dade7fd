using System.Diagnostics;
using System.Runtime.Intrinsics;
using System.Text.Json.Nodes;
using R1Sharp.Checkpoints;
using R1Sharp.Generation;
using R1Sharp.Gguf;
using R1Sharp.Models;

namespace R1Sharp.Benchmarks;

/// R1Sharp and llama.cpp decoding the same weights on this machine, alternating in one run: for each
/// format pair (f32 / f32, int8 or fp8 / q8_0, int4 / q4_0) the folder is exported to GGUF, both run a
/// prompt then greedy decode steps, and the median step gives tokens/s. The memory bandwidth measured
/// in the same run, over the bytes of weights each reads per token, gives each one's bound.
public static class DecodeSideBySide
{
    public sealed record Options(string ModelDir, string[] Formats, string EightBit, int Prompt, int Steps, int Rounds, int Threads, string Build);

    public static JsonObject Run(Options o)
    {
        var bandwidth = MemoryBandwidth.Measure(o.Threads);
        var config = ModelConfig.Load(o.ModelDir);
        var prompt = Enumerable.Range(0, o.Prompt).Select(i => (int)((i * 7919L + 17) % config.VocabSize)).ToArray();
        var work = Path.Combine(Path.GetTempPath(), "r1sharp-bench", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(work);
        var rows = new JsonArray();
        try
        {
            foreach (var name in o.Formats)
            {
                var (format, type) = name switch
                {
                    "f32" => (WeightFormat.F32, GgmlType.F32),
                    "8bit" => (o.EightBit == "fp8" ? WeightFormat.Fp8 : WeightFormat.Int8, GgmlType.Q8_0),
                    "4bit" => (WeightFormat.Int4, GgmlType.Q4_0),
                    _ => throw new R1SharpException($"--formats: unknown '{name}' (f32, 8bit, 4bit)"),
                };
                var gguf = Path.Combine(work, $"{name}.gguf");
                GgufExport.Export(o.ModelDir, gguf, type);
                using var model = ModelIO.Load(o.ModelDir, format);
                using var llama = new LlamaCpp(gguf, o.Threads, (uint)(o.Prompt + o.Steps + 8));
                var ours = new List<(double Prefill, double Decode)>();
                var theirs = new List<(double Prefill, double Decode)>();
                Ours(model, prompt, 4);
                Theirs(llama, prompt, 4);
                for (int round = 0; round < o.Rounds; round++)
                {
                    ours.Add(Ours(model, prompt, o.Steps));
                    theirs.Add(Theirs(llama, prompt, o.Steps));
                }
                var (oursPrefill, oursDecode) = (Median(ours.Select(r => r.Prefill)), Median(ours.Select(r => r.Decode)));
                var (theirsPrefill, theirsDecode) = (Median(theirs.Select(r => r.Prefill)), Median(theirs.Select(r => r.Decode)));
                var (ourBytes, theirBytes) = BytesPerToken(model, type);
                rows.Add(new JsonObject
                {
                    ["format"] = name, ["r1sharp_weights"] = format.ToString().ToLowerInvariant(), ["llama_cpp_type"] = type.ToString().ToLowerInvariant(),
                    ["r1sharp_weight_bytes"] = (long)model.MemoryBytes, ["gguf_bytes"] = new FileInfo(gguf).Length,
                    ["r1sharp_prefill_tokens_per_s"] = Math.Round(oursPrefill, 1), ["llama_cpp_prefill_tokens_per_s"] = Math.Round(theirsPrefill, 1),
                    ["r1sharp_decode_tokens_per_s"] = Math.Round(oursDecode, 2), ["llama_cpp_decode_tokens_per_s"] = Math.Round(theirsDecode, 2),
                    ["decode_ratio_r1sharp_over_llama_cpp"] = Math.Round(oursDecode / theirsDecode, 3),
                    ["prefill_ratio_r1sharp_over_llama_cpp"] = Math.Round(oursPrefill / theirsPrefill, 3),
                    ["r1sharp_bytes_per_token"] = ourBytes, ["llama_cpp_bytes_per_token"] = theirBytes,
                    ["r1sharp_fraction_of_bandwidth_bound"] = Math.Round(oursDecode * ourBytes / bandwidth, 3),
                    ["llama_cpp_fraction_of_bandwidth_bound"] = Math.Round(theirsDecode * theirBytes / bandwidth, 3),
                    ["r1sharp_decode_rounds"] = new JsonArray(ours.Select(r => (JsonNode)Math.Round(r.Decode, 2)).ToArray()),
                    ["llama_cpp_decode_rounds"] = new JsonArray(theirs.Select(r => (JsonNode)Math.Round(r.Decode, 2)).ToArray()),
                });
            }
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
        return new JsonObject
        {
            ["model"] = o.ModelDir, ["model_type"] = config.ModelType, ["parameters"] = ModelParameters(o.ModelDir),
            ["threads"] = o.Threads, ["llama_cpp_build"] = o.Build, ["avx512_on_this_machine"] = Vector512.IsHardwareAccelerated,
            ["prompt_tokens"] = o.Prompt, ["decode_steps"] = o.Steps, ["rounds"] = o.Rounds,
            ["memory_bandwidth_gb_per_s"] = Math.Round(bandwidth / 1e9, 2), ["formats"] = rows,
        };
    }

    private static long ModelParameters(string dir)
    {
        using var model = ModelIO.Load(dir);
        return model.parameters().Sum(p => p.NumberOfElements);
    }

    /// Prefill tokens/s and the median decode step's tokens/s, through the decode engine.
    private static (double Prefill, double Decode) Ours(CausalLM model, int[] prompt, int steps)
    {
        using var engine = new DecodeEngine(model, 1, prompt.Length + steps + 1);
        var sequence = new DecodeSequence(prompt.Select(i => (long)i).ToArray(), SamplingOptions.GreedyDecoding(steps), steps, ignoreEos: true);
        engine.Admit(sequence);
        var watch = Stopwatch.StartNew();
        engine.Step(new StepPlan([(sequence, prompt.Length)], []));
        var prefill = prompt.Length / watch.Elapsed.TotalSeconds;
        var times = new List<double>();
        while (!sequence.Finished)
        {
            watch.Restart();
            engine.Step(new StepPlan([], [sequence]));
            times.Add(watch.Elapsed.TotalSeconds);
        }
        return (prefill, 1 / Median(times));
    }

    private static (double Prefill, double Decode) Theirs(LlamaCpp llama, int[] prompt, int steps)
    {
        llama.Reset();
        var watch = Stopwatch.StartNew();
        var logits = llama.Evaluate(prompt, allLogits: false)[0];
        var prefill = prompt.Length / watch.Elapsed.TotalSeconds;
        var times = new List<double>();
        for (int step = 0; step < steps; step++)
        {
            var next = Array.IndexOf(logits, logits.Max());
            watch.Restart();
            logits = llama.Evaluate([next], allLogits: false)[0];
            times.Add(watch.Elapsed.TotalSeconds);
        }
        return (prefill, 1 / Median(times));
    }

    /// Bytes of weights a decode step reads: every matrix but the embedding table (one row of it is
    /// read; a tied head reads it all), routed experts at k/E. For llama.cpp the same tensors in the
    /// types the export gives them.
    private static (long Ours, long Theirs) BytesPerToken(CausalLM model, GgmlType type)
    {
        var config = model.Config;
        var routedShare = config is DeepSeekConfig { RoutedExperts: > 0 } d ? (double)d.NumExpertsPerTok!.Value / d.RoutedExperts : 1;
        double ours = 0, theirs = 0;
        foreach (var (name, t) in model.state_dict())
        {
            if (name.StartsWith("model.layers.") && int.Parse(name.Split('.')[2]) >= config.NumHiddenLayers) continue;   // MTP
            var share = name.Contains(".mlp.experts.") ? routedShare : name == "model.embed_tokens.weight" && !config.TieWordEmbeddings ? 0 : 1;
            ours += share * t.NumberOfElements * t.ElementSize;
            if (name.EndsWith("_scale") || name.EndsWith("_scale_inv")) continue;
            var logical = name.EndsWith(".weight") && t.dim() == 2 && model.named_modules().FirstOrDefault(m => m.name + ".weight" == name).module is Quantization.QuantizedLinear q ? q.LogicalShape : t.shape;
            var elements = logical.Aggregate(1L, (a, b) => a * b);
            var ggufName = name switch
            {
                "model.embed_tokens.weight" => "token_embd.weight",
                "lm_head.weight" => "output.weight",
                _ when name.Contains("mlp.gate.") => "ffn_gate_inp.weight",
                _ when name.Contains("norm") => "x_norm.weight",
                _ => "x.weight",
            };
            var ggml = GgufExport.TypeFor(ggufName, logical, type);
            theirs += share * GgufWriter.Bytes([elements], ggml);
        }
        return ((long)ours, (long)theirs);
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }
}
