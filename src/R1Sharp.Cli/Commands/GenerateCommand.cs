using System.CommandLine;
using System.Text.Json;
using R1Sharp.Checkpoints;
using R1Sharp.Generation;
using R1Sharp.Templates;

namespace R1Sharp.Cli.Commands;

public static class GenerateCommand
{
    public static Command Create()
    {
        var dir = new Argument<string>("DIR") { Description = "Hugging Face model folder" };
        var weights = CommandRunner.WeightsOption();
        var ids = new Option<string?>("--ids") { Description = "prompt token ids, e.g. 3,14,15 (no tokenizer needed; prints ids)" };
        var prompt = new Option<string?>("--prompt") { Description = "prompt text (needs the folder's tokenizer files)" };
        var chat = new Option<bool>("--chat") { Description = "send --prompt as a user message through the chat template" };
        var system = new Option<string?>("--system") { Description = "system message (with --chat)" };
        var json = new Option<bool>("--json") { Description = "print one JSON object at the end instead of streaming" };
        var sampling = new SamplingArguments();
        var adapter = CommandRunner.AdapterOption();
        var command = new Command("generate", "Continue a prompt: stream text (reasoning dimmed) or, with --ids, token ids.") { dir, ids, prompt, chat, system, json, weights, adapter };
        sampling.AddTo(command);
        command.SetAction(parse => CommandRunner.Guard(() =>
        {
            var (idText, promptText) = (parse.GetValue(ids), parse.GetValue(prompt));
            if ((idText is null) == (promptText is null)) throw new R1SharpException("give exactly one of --prompt or --ids");
            if (parse.GetValue(chat) && promptText is null) throw new R1SharpException("--chat needs --prompt");
            var format = CommandRunner.ParseWeights(parse.GetValue(weights)!);
            return idText is not null
                ? FromIds(parse.GetValue(dir)!, CommandRunner.ParseIds(idText), format, parse.GetValue(adapter), parse, sampling, parse.GetValue(json))
                : FromText(parse.GetValue(dir)!, promptText!, parse.GetValue(chat), parse.GetValue(system), format, parse.GetValue(adapter), parse, sampling, parse.GetValue(json));
        }));
        return command;
    }

    private static int FromIds(string dir, long[] prompt, Models.WeightFormat format, string? adapter, ParseResult parse, SamplingArguments sampling, bool json)
    {
        using var model = TextGenerator.LoadWithAdapter(dir, format, adapter);
        var eos = model.Config.EosTokenIds ?? [];
        var options = sampling.Resolve(parse, GenerationConfig.Load(dir).ToSamplingOptions(eos, 32));
        var generated = new List<long>();
        foreach (var token in TokenGenerator.Generate(model, prompt, options))
        {
            generated.Add(token);
            if (!json) Console.Out.Write(token + " ");
        }
        Console.Out.WriteLine(json ? JsonSerializer.Serialize(new { ids = generated }) : "");
        return 0;
    }

    private static int FromText(string dir, string text, bool chat, string? system, Models.WeightFormat format, string? adapter, ParseResult parse, SamplingArguments sampling, bool json)
    {
        if (string.IsNullOrWhiteSpace(text)) throw new R1SharpException("the prompt is empty");
        using var generator = TextGenerator.Load(dir, format, adapter);
        var prompt = chat
            ? generator.RenderChat(system is null ? [new ChatTurn("user", text)] : [new ChatTurn("system", system), new ChatTurn("user", text)])
            : generator.Plain(text);
        var options = sampling.Resolve(parse, generator.DefaultOptions(256));
        var writer = new ReasoningWriter(prompt.OpensReasoning);
        var ids = new List<int>();
        var finish = "stop";
        Stream(generator, prompt, options, chunk =>
        {
            if (chunk.TokenId is int id) ids.Add(id);
            if (chunk.FinishReason is { } f) finish = f;
            writer.Write(chunk.Text, quiet: json);
        });
        writer.Finish(quiet: json);
        if (json)
            Console.Out.WriteLine(JsonSerializer.Serialize(new { reasoning = writer.Reasoning.ToString(), content = writer.Content.ToString(), ids, finish_reason = finish }, CommandRunner.ReadableJson));
        return 0;
    }

    /// Drives the async stream from a synchronous command.
    public static void Stream(TextGenerator generator, Prompt prompt, SamplingOptions options, Action<GeneratedChunk> onChunk)
    {
        async Task Run()
        {
            await foreach (var chunk in generator.StreamAsync(prompt, options)) onChunk(chunk);
        }
        Run().GetAwaiter().GetResult();
    }
}
