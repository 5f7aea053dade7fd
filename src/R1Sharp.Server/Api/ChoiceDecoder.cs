using R1Sharp.Generation;
using R1Sharp.Tokenization;

namespace R1Sharp.Server.Api;

/// Turns one choice's tokens into deltas: the visible text (stop strings applied) and, for chat, its
/// split into `<think>…</think>` reasoning and the answer.
public sealed class ChoiceDecoder(PretrainedTokenizer tokenizer, IReadOnlyList<string> stops, ReasoningParser? reasoning)
{
    private readonly OutputText _text = new(tokenizer, stops);

    public int Tokens { get; private set; }
    public bool StopStringSeen => _text.Stopped;

    public (string Reasoning, string Content) Add(int token)
    {
        Tokens++;
        return Split(_text.Add(token));
    }

    public (string Reasoning, string Content) Flush()
    {
        var (r1, c1) = Split(_text.Flush());
        if (reasoning is null) return (r1, c1);
        var (r2, c2) = reasoning.Flush();
        return (r1 + r2, c1 + c2);
    }

    private (string, string) Split(string text) => reasoning is null ? ("", text) : reasoning.Add(text);
}
