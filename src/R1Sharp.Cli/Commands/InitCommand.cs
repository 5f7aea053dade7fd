using System.CommandLine;
using R1Sharp.Checkpoints;
using R1Sharp.Models;

namespace R1Sharp.Cli.Commands;

public static class InitCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config") { Description = "Hugging Face config.json of the architecture", Required = true };
        var output = new Option<string>("--out") { Description = "folder to write (config.json + model.safetensors)", Required = true };
        var seed = new Option<long>("--seed") { Description = "random seed for the weights", DefaultValueFactory = _ => 0 };
        var dtype = new Option<string>("--dtype") { Description = "stored weight type: f32 or bf16", DefaultValueFactory = _ => "f32" };
        dtype.AcceptOnlyFromAmong("f32", "bf16");
        var tokenizer = new Option<bool>("--byte-tokenizer") { Description = "also write R1Sharp's byte-level tokenizer files (with its chat template), so text commands and the server work" };
        var from = new Option<string?>("--tokenizer") { Description = "copy this folder's tokenizer files (tokenizer.json, tokenizer_config.json, …) into the model, e.g. a real model's" };
        var command = new Command("init", "Create a randomly initialised model in Hugging Face layout.") { config, output, seed, dtype, tokenizer, from };
        command.SetAction(parse => CommandRunner.Guard(() =>
        {
            var modelConfig = ModelConfig.Load(parse.GetValue(config)!);
            var source = parse.GetValue(from) is { } f ? Path.GetFullPath(f) : null;
            if (source is not null && parse.GetValue(tokenizer)) throw new R1SharpException("give --byte-tokenizer or --tokenizer, not both");
            if (source is not null && R1Sharp.Tokenization.PretrainedTokenizer.Load(source) is var t && t.VocabSize > modelConfig.VocabSize)
                throw new R1SharpException($"{source}: the tokenizer has {t.VocabSize} tokens but the config's vocab_size is {modelConfig.VocabSize}");
            using var model = ModelIO.Create(modelConfig);
            ModelIO.Initialize(model, parse.GetValue(seed));
            if (parse.GetValue(tokenizer) && modelConfig.VocabSize < R1Sharp.Tokenization.ByteTokenizer.VocabSize)
                throw new R1SharpException($"--byte-tokenizer needs vocab_size >= {R1Sharp.Tokenization.ByteTokenizer.VocabSize}, the config has {modelConfig.VocabSize}");
            ModelIO.Save(model, parse.GetValue(output)!, SafeTensorsDType.Parse(parse.GetValue(dtype)!));
            if (parse.GetValue(tokenizer)) R1Sharp.Tokenization.ByteTokenizer.Instance.Save(parse.GetValue(output)!);
            if (source is not null) R1Sharp.Tokenization.PretrainedTokenizer.CopyFolderFiles(source, parse.GetValue(output)!);
            Console.Error.WriteLine($"wrote {modelConfig.ModelType} model ({model.parameters().Sum(p => p.NumberOfElements):N0} parameters) to {parse.GetValue(output)}");
            return 0;
        }));
        return command;
    }
}
