using System.CommandLine;
using System.Text.Json;
using R1Sharp.Checkpoints;
using R1Sharp.Training.Data;
using R1Sharp.Training.Training;

namespace R1Sharp.Cli.Commands;

public static class EvalCommand
{
    public static Command Create()
    {
        var dir = new Argument<string>("DIR") { Description = "Hugging Face model folder (a run's checkpoint)" };
        var data = new Option<string>("--data") { Description = "a folder made by `prepare`", Required = true };
        var split = new Option<string>("--split") { DefaultValueFactory = _ => "val" };
        split.AcceptOnlyFromAmong("train", "val");
        var seqLen = new Option<int>("--seq-len") { DefaultValueFactory = _ => 128 };
        var batches = new Option<int>("--batches") { DefaultValueFactory = _ => 16 };
        var command = new Command("eval", "Validation loss and perplexity of a model on prepared data (JSON).") { dir, data, split, seqLen, batches };
        command.SetAction(parse => CommandRunner.Guard(() =>
        {
            using var model = ModelIO.Load(parse.GetValue(dir)!);
            using var dataset = TokenDataset.Open(parse.GetValue(data)!, parse.GetValue(split)!);
            var length = parse.GetValue(seqLen);
            if (length < 1 || length + 1 > model.Config.MaxPositionEmbeddings) throw new R1SharpException($"--seq-len must be in 1..{model.Config.MaxPositionEmbeddings - 1}");
            var (sum, count) = Trainer.LossOver(model, dataset, 8, length, parse.GetValue(batches));
            if (count == 0) throw new R1SharpException("no evaluation tokens (the split is shorter than --seq-len + 1 or has no loss tokens)");
            Console.Out.WriteLine(JsonSerializer.Serialize(new { loss = sum / count, perplexity = Math.Exp(sum / count), tokens = (long)count }));
            return 0;
        }));
        return command;
    }
}
