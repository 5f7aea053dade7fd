using System.CommandLine;
using R1Sharp.Gguf;

namespace R1Sharp.Cli.Commands;

public static class ExportGgufCommand
{
    public static Command Create()
    {
        var dir = new Argument<string>("DIR") { Description = "Hugging Face model folder (qwen2, qwen3, llama, deepseek_v2/v3)" };
        var output = new Option<string>("--out") { Description = "GGUF file to write", Required = true };
        var type = new Option<string>("--type") { Description = "tensor type: f32, f16, q8_0 or q4_0 (norms and the router stay f32)", DefaultValueFactory = _ => "f32" };
        type.AcceptOnlyFromAmong("f32", "f16", "q8_0", "q4_0");
        var command = new Command("export-gguf", "Write the model as GGUF for llama.cpp, Ollama and LM Studio (llama.cpp's tensor names, metadata and tokenizer).") { dir, output, type };
        command.SetAction(parse => CommandRunner.Guard(() =>
        {
            var ggml = parse.GetValue(type) switch { "f16" => GgmlType.F16, "q8_0" => GgmlType.Q8_0, "q4_0" => GgmlType.Q4_0, _ => GgmlType.F32 };
            var summary = GgufExport.Export(parse.GetValue(dir)!, Path.GetFullPath(parse.GetValue(output)!), ggml);
            Console.Error.WriteLine($"wrote {summary.Architecture} GGUF, {summary.Tensors} tensors, {summary.Bytes / (1024.0 * 1024):F1} MiB"
                + (summary.Tokenizer ? "" : " (no tokenizer.json in the folder: placeholder tokens, run it on token ids)"));
            return 0;
        }));
        return command;
    }
}
