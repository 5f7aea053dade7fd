using System.CommandLine;
using System.Text.Json;
using R1Sharp.Checkpoints;
using R1Sharp.Generation;

namespace R1Sharp.Cli.Commands;

public static class GenerateCommand
{
    public static Command Create()
    {
        var dir = new Argument<string>("DIR") { Description = "Hugging Face model folder" };
        var weights = CommandRunner.WeightsOption();
        var ids = new Option<string>("--ids") { Description = "prompt token ids, e.g. 3,14,15", Required = true };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "tokens to generate", DefaultValueFactory = _ => 32 };
        var greedy = new Option<bool>("--greedy") { Description = "argmax decoding (ignores temperature and seed)" };
        var temperature = new Option<double>("--temperature") { DefaultValueFactory = _ => 1.0 };
        var topK = new Option<int>("--top-k") { DefaultValueFactory = _ => 0 };
        var topP = new Option<double>("--top-p") { DefaultValueFactory = _ => 1.0 };
        var seed = new Option<long?>("--seed") { Description = "sampling seed" };
        var json = new Option<bool>("--json") { Description = "print {\"ids\":[…]} with only the new tokens" };
        var command = new Command("generate", "Continue a prompt of token ids.") { dir, ids, maxNew, greedy, temperature, topK, topP, seed, json, weights };
        command.SetAction(parse => CommandRunner.Guard(() =>
        {
            var prompt = CommandRunner.ParseIds(parse.GetValue(ids)!);
            using var model = ModelIO.Load(parse.GetValue(dir)!, CommandRunner.ParseWeights(parse.GetValue(weights)!));
            var options = new SamplingOptions
            {
                Temperature = parse.GetValue(greedy) ? 0 : parse.GetValue(temperature),
                TopK = parse.GetValue(topK),
                TopP = parse.GetValue(topP),
                Seed = parse.GetValue(seed),
                MaxNewTokens = parse.GetValue(maxNew),
                StopTokenIds = model.Config.EosTokenIds?.Select(i => (long)i).ToArray() ?? [],
            };
            var generated = new List<long>();
            foreach (var token in TokenGenerator.Generate(model, prompt, options))
            {
                generated.Add(token);
                if (!parse.GetValue(json)) Console.Out.Write(token + " ");
            }
            Console.Out.WriteLine(parse.GetValue(json) ? JsonSerializer.Serialize(new { ids = generated }) : "");
            return 0;
        }));
        return command;
    }
}
