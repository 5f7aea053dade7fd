namespace R1Sharp.Generation;

/// Separates streamed answer text from the tool calls after it: text is passed on until the format's
/// opening marker appears (a possible beginning of it is held back), everything from the marker on is
/// kept and parsed when generation ends. `forced`: the text the prompt was continued with to make the
/// model call a tool, which the calls begin with.
public sealed class ToolCallStream(ToolCallFormat format, string forced = "")
{
    private string _held = forced;
    private bool _inCalls = forced.Length > 0;

    /// The answer text that is safe to pass on.
    public string Add(string text)
    {
        _held += text;
        if (_inCalls) return "";
        var at = _held.IndexOf(format.Start, StringComparison.Ordinal);
        if (at >= 0)
        {
            _inCalls = true;
            var before = _held[..at];
            _held = _held[at..];
            return before;
        }
        var keep = 0;
        for (int k = Math.Min(format.Start.Length - 1, _held.Length); k > 0; k--)
            if (_held.AsSpan(_held.Length - k).SequenceEqual(format.Start.AsSpan(0, k))) { keep = k; break; }
        var safe = _held[..^keep];
        _held = _held[^keep..];
        return safe;
    }

    /// At the end: the rest of the answer text and the calls (none when what followed the marker does not parse: it is answer text then).
    public (string Content, IReadOnlyList<ToolCall> Calls) Finish()
    {
        var held = _held;
        _held = "";
        return _inCalls ? format.Parse(held) : (held, []);
    }
}
