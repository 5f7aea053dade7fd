namespace R1Sharp.Generation;

/// Cuts streamed text at the first stop string. Text that might be the start of a stop string is
/// held back until the next piece shows whether it is, so nothing of a stop string is ever emitted.
public sealed class StopStringMatcher(IReadOnlyList<string> stops)
{
    private string _held = "";

    public bool Stopped { get; private set; }

    /// The text that is safe to emit after appending `text` (empty once stopped).
    public string Add(string text)
    {
        if (Stopped) return "";
        var buffer = _held + text;
        var cut = -1;
        foreach (var stop in stops)
        {
            var at = buffer.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (cut < 0 || at < cut)) cut = at;
        }
        if (cut >= 0)
        {
            Stopped = true;
            _held = "";
            return buffer[..cut];
        }
        var keep = 0;
        foreach (var stop in stops)
            for (int k = Math.Min(stop.Length - 1, buffer.Length); k > keep; k--)
                if (buffer.AsSpan(buffer.Length - k).SequenceEqual(stop.AsSpan(0, k))) { keep = k; break; }
        _held = buffer[^keep..];
        return buffer[..^keep];
    }

    /// What was held back when generation ends without a stop string.
    public string Flush()
    {
        var rest = Stopped ? "" : _held;
        _held = "";
        return rest;
    }
}
