using R1Sharp.Generation;
using Spectre.Console;

namespace R1Sharp.Cli;

/// Streams generated text to the terminal: reasoning dimmed, the answer plain.
public sealed class ReasoningWriter(bool startsInReasoning)
{
    private readonly ReasoningParser _parser = new(startsInReasoning);
    private bool _inReasoning;

    public System.Text.StringBuilder Reasoning { get; } = new();
    public System.Text.StringBuilder Content { get; } = new();

    public void Write(string text, bool quiet = false) => Show(_parser.Add(text), quiet);

    public void Finish(bool quiet = false)
    {
        Show(_parser.Flush(), quiet);
        if (!quiet) Console.Out.WriteLine();
    }

    private void Show((string Reasoning, string Content) delta, bool quiet)
    {
        Reasoning.Append(delta.Reasoning);
        Content.Append(delta.Content);
        if (quiet) return;
        if (delta.Reasoning.Length > 0)
        {
            _inReasoning = true;
            AnsiConsole.Markup($"[dim]{Markup.Escape(delta.Reasoning)}[/]");
        }
        if (delta.Content.Length > 0)
        {
            if (_inReasoning) { Console.Out.WriteLine(); _inReasoning = false; }
            Console.Out.Write(delta.Content);
        }
        Console.Out.Flush();
    }
}
