using R1Sharp.Tokenization;

namespace R1Sharp.Generation;

/// Generated ids to the text a user may see: UTF-8-safe detokenization, cut at the first stop string.
public sealed class OutputText(PretrainedTokenizer tokenizer, IReadOnlyList<string> stops)
{
    private readonly StreamingDetokenizer _detokenizer = new(tokenizer);
    private readonly StopStringMatcher _stops = new(stops);

    public bool Stopped => _stops.Stopped;

    /// The text `id` makes safe to emit (empty while a character or a possible stop string is pending).
    public string Add(int id) => _stops.Add(_detokenizer.Add(id));

    /// What is left when generation ends.
    public string Flush() => _stops.Add(_detokenizer.Flush()) + _stops.Flush();
}
