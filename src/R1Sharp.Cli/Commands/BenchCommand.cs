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
        var forward = new Command("forward", "JSON figures: prefill and cached-decode tokens/s, and the MoE overhead ratio.") { dir, tokens, steps };
        forward.SetAction(parse => CommandRunner.Guard(() =>
        {
            var n = parse.GetValue(tokens);
            if (n < 1) throw new R1SharpException("--tokens must be >= 1");
            using var model = ModelIO.Load(parse.GetValue(dir)!);
            if (model is not DeepSeekForCausalLM deepSeek) throw new R1SharpException("bench forward needs a DeepSeek model");
            var decodeSteps = parse.GetValue(steps);
            if (n + decodeSteps + 1 > model.Config.MaxPositionEmbeddings)
                throw new R1SharpException($"--tokens + --decode-steps exceed max_position_embeddings {model.Config.MaxPositionEmbeddings}");
            var r = ForwardBenchmark.Run(deepSeek, n, decodeSteps);
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
                moe_overhead_ratio = Math.Round(r.MoeOverheadRatioPrefill, 3),
                moe_overhead_ratio_decode = Math.Round(r.MoeOverheadRatioDecode, 3),
                moe_layer_ms = Math.Round(r.MoeSecondsPrefill * 1000, 3),
                dense_equivalent_ms = Math.Round(r.DenseSecondsPrefill * 1000, 3),
            }));
            return 0;
        }));
        var command = new Command("bench", "Benchmarks that print JSON figures.") { forward };
        return command;
    }
}
