using System.CommandLine;
using R1Sharp.Checkpoints;
using R1Sharp.Models;

namespace R1Sharp.Cli.Commands;

public static class MergeLoraCommand
{
    public static Command Create()
    {
        var baseDir = new Argument<string>("BASE") { Description = "the base model folder" };
        var adapter = new Argument<string>("ADAPTER") { Description = "a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors)" };
        var output = new Option<string>("--out") { Description = "folder for the merged model", Required = true };
        var command = new Command("merge-lora", "Fold a LoRA adapter into its base model's weights (W += alpha/r · B A): a plain Hugging Face model folder.") { baseDir, adapter, output };
        command.SetAction(parse => CommandRunner.Guard(() =>
        {
            var (from, lora, to) = (parse.GetValue(baseDir)!, parse.GetValue(adapter)!, Path.GetFullPath(parse.GetValue(output)!));
            if (Directory.Exists(to)) throw new R1SharpException($"{to} exists; choose a new --out");
            LoraAdapter.ReadConfig(lora);
            using var model = ModelIO.Load(from);
            var layers = LoraAdapter.Merge(model, lora);
            var temp = to + ".tmp-" + Environment.ProcessId;
            try
            {
                ModelIO.Save(model, temp);
                R1Sharp.Tokenization.PretrainedTokenizer.CopyFolderFiles(from, temp);
                Directory.Move(temp, to);
            }
            finally
            {
                if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            }
            Console.Error.WriteLine($"merged {layers} adapted layers into {to}");
            return 0;
        }));
        return command;
    }
}
