namespace R1Sharp.Generation;

/// Splits R1-style output into reasoning (inside `<think>…</think>`) and the answer, also while it
/// streams. R1 chat templates open `<think>\n` in the generation prompt, so the output may only
/// close it: pass `startsInReasoning` then. Tags split across pieces are held back, never leaked.
public sealed class ReasoningParser(bool startsInReasoning = false, string open = "<think>", string close = "</think>")
{
    private enum State { Start, Reasoning, Content }

    private State _state = startsInReasoning ? State.Reasoning : State.Start;
    private string _held = "";
    private bool _contentStarted;

    /// Whether a rendered prompt ends inside an opened reasoning block.
    public static bool PromptOpensReasoning(string prompt, string open = "<think>", string close = "</think>")
    {
        var lastOpen = prompt.LastIndexOf(open, StringComparison.Ordinal);
        return lastOpen >= 0 && prompt.IndexOf(close, lastOpen, StringComparison.Ordinal) < 0;
    }

    public (string Reasoning, string Content) Add(string text)
    {
        var buffer = _held + text;
        _held = "";
        string reasoning = "", content = "";
        while (buffer.Length > 0)
        {
            switch (_state)
            {
                case State.Start:
                    var trimmed = buffer.TrimStart();
                    if (trimmed.StartsWith(open, StringComparison.Ordinal)) { _state = State.Reasoning; buffer = trimmed[open.Length..]; }
                    else if (open.StartsWith(trimmed, StringComparison.Ordinal)) { _held = buffer; return (reasoning, content); }
                    else _state = State.Content;
                    break;
                case State.Reasoning:
                    var end = buffer.IndexOf(close, StringComparison.Ordinal);
                    if (end >= 0)
                    {
                        reasoning += buffer[..end];
                        buffer = buffer[(end + close.Length)..];
                        _state = State.Content;
                        break;
                    }
                    var keep = PartialSuffix(buffer, close);
                    reasoning += buffer[..^keep];
                    _held = buffer[^keep..];
                    return (reasoning, content);
                case State.Content:
                    if (!_contentStarted)
                    {
                        buffer = buffer.TrimStart('\n', '\r');
                        if (buffer.Length == 0) return (reasoning, content);
                        _contentStarted = true;
                    }
                    content += buffer;
                    return (reasoning, content);
            }
        }
        return (reasoning, content);
    }

    /// Whatever was held back at the end of the stream.
    public (string Reasoning, string Content) Flush()
    {
        var rest = _held;
        _held = "";
        return _state == State.Reasoning ? (rest, "") : ("", _contentStarted ? rest : rest.TrimStart('\n', '\r'));
    }

    /// Length of the longest suffix of `text` that is a proper prefix of `tag`.
    private static int PartialSuffix(string text, string tag)
    {
        for (int k = Math.Min(tag.Length - 1, text.Length); k > 0; k--)
            if (text.AsSpan(text.Length - k).SequenceEqual(tag.AsSpan(0, k))) return k;
        return 0;
    }

    /// Splits a complete output at once.
    public static (string Reasoning, string Content) Split(string output, bool startsInReasoning = false)
    {
        var parser = new ReasoningParser(startsInReasoning);
        var (r, c) = parser.Add(output);
        var (r2, c2) = parser.Flush();
        return (r + r2, c + c2);
    }
}
