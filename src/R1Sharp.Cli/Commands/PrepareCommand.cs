using System.CommandLine;
using System.Text.Json.Nodes;
using R1Sharp.Training.Data;

namespace R1Sharp.Cli.Commands;

public static class PrepareCommand
{
    public static Command Create()
    {
        var inputs = new Argument<string[]>("FILES") { Description = "text files, JSONL {\"text\":…}, chat JSONL {\"messages\":[…]} or {\"prompt\":…,\"completion\":…}", Arity = ArgumentArity.ZeroOrMore };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "a model folder whose tokenizer.json and chat template tokenise the data (default: R1Sharp's byte tokenizer); chat data learns only the assistant turns" };
        var builtin = new Option<string?>("--builtin") { Description = "generate a built-in task instead: arithmetic or countdown" };
        var examples = new Option<int>("--examples") { Description = "built-in examples to generate", DefaultValueFactory = _ => 20000 };
        var difficulty = new Option<int>("--difficulty") { Description = "built-in difficulty (digits / numbers)", DefaultValueFactory = _ => 3 };
        var output = new Option<string>("--out") { Description = "folder for the shards", Required = true };
        var validation = new Option<double>("--val-fraction") { DefaultValueFactory = _ => 0.05 };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 0 };
        var command = new Command("prepare", "Tokenise documents into shards (int32 tokens, uint8 loss mask, document index) with a train/validation split.")
            { inputs, builtin, examples, difficulty, output, validation, seed, tokenizer };
        command.SetAction(parse => CommandRunner.Guard(() =>
        {
            var files = parse.GetValue(inputs) ?? [];
            var task = parse.GetValue(builtin);
            if ((files.Length == 0) == (task is null)) throw new R1SharpException("give input FILES or --builtin TASK (not both)");
            var encoder = parse.GetValue(tokenizer) is { } dir ? DocumentEncoder.For(Path.GetFullPath(dir)) : DocumentEncoder.Byte;
            var documents = task is not null
                ? DatasetPreparer.Builtin(task, parse.GetValue(examples), parse.GetValue(difficulty), parse.GetValue(seed), encoder)
                : files.SelectMany(f => DatasetPreparer.ReadFile(f, encoder));
            var sources = task is not null
                ? new JsonObject { ["builtin"] = task, ["examples"] = parse.GetValue(examples), ["difficulty"] = parse.GetValue(difficulty) }
                : new JsonObject { ["files"] = new JsonArray(files.Select(f => (JsonNode)Path.GetFullPath(f)).ToArray()) };
            var index = DatasetPreparer.Write(documents, parse.GetValue(output)!, parse.GetValue(validation), parse.GetValue(seed), encoder, sources);
            Console.Out.WriteLine(index["splits"]!.ToJsonString());
            return 0;
        }));
        return command;
    }
}
