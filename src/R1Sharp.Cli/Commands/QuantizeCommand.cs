using System.CommandLine;
using R1Sharp.Checkpoints;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Cli.Commands;

public static class QuantizeCommand
{
    public static Command Create()
    {
        var dir = new Argument<string>("DIR") { Description = "Hugging Face model folder" };
        var to = new Option<string>("--to") { Description = "fp8 (DeepSeek's E4M3 + 128x128 block scales), int8 (per-channel) or int4 (per group of 32)", Required = true };
        to.AcceptOnlyFromAmong("fp8", "int8", "int4");
        var output = new Option<string>("--out") { Description = "folder to write", Required = true };
        var command = new Command("quantize", "Write an 8- or 4-bit copy of a model; norms and the router stay F32, embeddings and lm_head BF16 (fp8) or INT8 per row (int8, int4).") { dir, to, output };
        command.SetAction(parse => CommandRunner.Guard(() =>
        {
            var format = CommandRunner.ParseWeights(parse.GetValue(to)!);
            var source = Path.GetFullPath(parse.GetValue(dir)!);
            var target = Path.GetFullPath(parse.GetValue(output)!);
            if (source == target) throw new R1SharpException("--out must differ from DIR");
            using var model = ModelIO.Load(source, format);
            ModelIO.Save(model, target, ScalarType.BFloat16);
            var bytes = Directory.GetFiles(target, "*.safetensors").Sum(f => new FileInfo(f).Length);
            Console.Error.WriteLine($"wrote {parse.GetValue(to)} model to {target} ({bytes / (1024.0 * 1024):F1} MiB of weights)");
            return 0;
        }));
        return command;
    }
}
