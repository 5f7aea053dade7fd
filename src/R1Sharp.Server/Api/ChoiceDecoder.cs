using R1Sharp.Generation;
using R1Sharp.Tokenization;

namespace R1Sharp.Server.Api;

/// Turns one choice's tokens into text deltas: UTF-8-safe detokenization, stop strings, and (for
/// chat) the split of `<think>…</think>` reasoning from the answer.
public sealed class ChoiceDecoder(PretrainedTokenizer tokenizer, IReadOnlyList<string> stops, ReasoningParser? reasoning)
{
    private readonly StreamingDetokenizer _detokenizer = new(tokenizer);
    private readonly StopStringMatcher _stops = new(stops);

    public int Tokens { get; private set; }
    public bool StopStringSeen => _stops.Stopped;

    public (string Reasoning, string Content) Add(int token)
    {
        Tokens++;
        return Split(_stops.Add(_detokenizer.Add(token)));
    }

    public (string Reasoning, string Content) Flush()
    {
        var (r1, c1) = Split(_stops.Add(_detokenizer.Flush()) + _stops.Flush());
        if (reasoning is null) return (r1, c1);
        var (r2, c2) = reasoning.Flush();
        return (r1 + r2, c1 + c2);
    }

    private (string, string) Split(string text) => reasoning is null ? ("", text) : reasoning.Add(text);
}
