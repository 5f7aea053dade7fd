using System.CommandLine;
using System.Text;
using R1Sharp.Checkpoints;
using static TorchSharp.torch;

namespace R1Sharp.Cli.Commands;

public static class LogitsCommand
{
    public static Command Create()
    {
        var dir = new Argument<string>("DIR") { Description = "Hugging Face model folder" };
        var weights = CommandRunner.WeightsOption();
        var ids = new Option<string>("--ids") { Description = "comma-separated token ids, e.g. 3,14,15", Required = true };
        var output = new Option<string?>("--out") { Description = "write the JSON here instead of stdout" };
        var command = new Command("logits", "Print {\"ids\":[…],\"logits\":[[…],…]}: one float32 row of vocab_size per position.") { dir, ids, output, weights };
        command.SetAction(parse => CommandRunner.Guard(() =>
        {
            var tokens = CommandRunner.ParseIds(parse.GetValue(ids)!);
            using var model = ModelIO.Load(parse.GetValue(dir)!, CommandRunner.ParseWeights(parse.GetValue(weights)!));
            model.CheckTokenIds(tokens);
            if (tokens.Length > model.Config.MaxPositionEmbeddings)
                throw new R1SharpException($"{tokens.Length} ids exceed max_position_embeddings {model.Config.MaxPositionEmbeddings}");
            float[] values;
            long vocab;
            using (no_grad())
            using (var scope = NewDisposeScope())
            {
                var logits = model.Forward(tensor(tokens).unsqueeze(0))[0].contiguous();
                vocab = logits.shape[1];
                values = logits.data<float>().ToArray();
            }
            var json = new StringBuilder("{\"ids\":[").AppendJoin(',', tokens).Append("],\"logits\":[");
            for (long t = 0; t < tokens.Length; t++)
            {
                if (t > 0) json.Append(',');
                json.Append('[').AppendJoin(',', values.Skip((int)(t * vocab)).Take((int)vocab).Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture))).Append(']');
            }
            json.Append("]}");
            var path = parse.GetValue(output);
            if (path is null) Console.Out.WriteLine(json);
            else AtomicFile.WriteAllText(path, json.Append('\n').ToString());
            return 0;
        }));
        return command;
    }
}
