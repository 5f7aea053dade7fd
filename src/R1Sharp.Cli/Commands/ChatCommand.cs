using System.CommandLine;
using System.Diagnostics;
using R1Sharp.Generation;
using R1Sharp.Templates;
using Spectre.Console;

namespace R1Sharp.Cli.Commands;

public static class ChatCommand
{
    public static Command Create()
    {
        var dir = new Argument<string>("DIR") { Description = "Hugging Face model folder with tokenizer files and a chat template" };
        var system = new Option<string?>("--system") { Description = "system message for the conversation" };
        var weights = CommandRunner.WeightsOption();
        var adapter = CommandRunner.AdapterOption();
        var sampling = new SamplingArguments();
        var command = new Command("chat", "Interactive multi-turn chat: streams answers (reasoning dimmed); /reset starts over, /exit quits.") { dir, system, weights, adapter };
        sampling.AddTo(command);
        command.SetAction(parse => CommandRunner.Guard(() =>
        {
            using var generator = TextGenerator.Load(parse.GetValue(dir)!, CommandRunner.ParseWeights(parse.GetValue(weights)!), parse.GetValue(adapter));
            var options = sampling.Resolve(parse, generator.DefaultOptions(512));
            var systemMessage = parse.GetValue(system);
            var turns = new List<ChatTurn>();
            void Reset() { turns.Clear(); if (systemMessage is not null) turns.Add(new ChatTurn("system", systemMessage)); }
            Reset();
            generator.RenderChat([new ChatTurn("user", "check")]);   // fail now, not at the first message, if the template is broken
            AnsiConsole.MarkupLine($"[bold]r1sharp chat[/] [dim]{Markup.Escape(parse.GetValue(dir)!)} · /reset clears the conversation · /exit quits[/]");
            while (true)
            {
                AnsiConsole.Markup("[bold green]you>[/] ");
                var line = Console.In.ReadLine();
                if (line is null) { Console.Out.WriteLine(); break; }
                line = line.Trim();
                if (line.Length == 0) continue;
                if (line == "/exit") break;
                if (line == "/reset") { Reset(); AnsiConsole.MarkupLine("[dim](conversation cleared)[/]"); continue; }
                if (line.StartsWith('/')) { AnsiConsole.MarkupLine("[yellow]commands: /reset, /exit[/]"); continue; }
                turns.Add(new ChatTurn("user", line));
                Prompt prompt;
                try
                {
                    prompt = generator.RenderChat(turns);
                    if (prompt.Ids.Length >= generator.ContextLength)
                        throw new R1SharpException($"the conversation has {prompt.Ids.Length} tokens, the model's context is {generator.ContextLength}; /reset to start over");
                }
                catch (R1SharpException e)
                {
                    turns.RemoveAt(turns.Count - 1);
                    AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(e.Message)}");
                    continue;
                }
                AnsiConsole.Markup("[bold blue]r1>[/] ");
                var writer = new ReasoningWriter(prompt.OpensReasoning);
                var raw = new System.Text.StringBuilder();
                var tokens = 0;
                var watch = Stopwatch.StartNew();
                GenerateCommand.Stream(generator, prompt, options, chunk =>
                {
                    if (chunk.TokenId is not null) tokens++;
                    raw.Append(chunk.Text);
                    writer.Write(chunk.Text);
                });
                writer.Finish();
                AnsiConsole.MarkupLine($"[dim]({tokens} tokens, {tokens / Math.Max(watch.Elapsed.TotalSeconds, 1e-9):F1} tokens/s)[/]");
                // The raw output (reasoning included) goes back in; R1-style templates drop earlier reasoning themselves.
                turns.Add(new ChatTurn("assistant", raw.ToString()));
            }
            return 0;
        }));
        return command;
    }
}
