using System.Buffers;
using System.Text.Json.Nodes;

namespace R1Sharp.Tokenization;

/// An entry of tokenizer.json's `added_tokens`: matched in the raw text before BPE, never split.
public sealed record AddedToken(int Id, string Content, bool Special, bool LeftStrip = false, bool RightStrip = false, bool SingleWord = false)
{
    public static AddedToken FromJson(JsonNode node) => new(
        (int)node["id"]!, (string)node["content"]!, (bool?)node["special"] ?? false,
        (bool?)node["lstrip"] ?? false, (bool?)node["rstrip"] ?? false, (bool?)node["single_word"] ?? false);
}

/// Finds added tokens in text as Hugging Face does: leftmost match first, the longest one at that
/// position, with lstrip/rstrip taking in neighbouring whitespace and single_word requiring word edges.
public sealed class AddedTokenMatcher
{
    private readonly Dictionary<char, AddedToken[]> _byFirstChar;
    private readonly SearchValues<char> _firstChars;

    public AddedTokenMatcher(IEnumerable<AddedToken> tokens)
    {
        _byFirstChar = tokens.Where(t => t.Content.Length > 0).GroupBy(t => t.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ToArray());
        _firstChars = SearchValues.Create(_byFirstChar.Keys.ToArray());
    }

    /// Splits text into segments: (start, length, token) where token is null for ordinary text.
    public List<(int Start, int Length, AddedToken? Token)> Split(string text)
    {
        var segments = new List<(int, int, AddedToken?)>();
        int cursor = 0, searchFrom = 0;
        while (searchFrom < text.Length)
        {
            var offset = text.AsSpan(searchFrom).IndexOfAny(_firstChars);
            if (offset < 0) break;
            int at = searchFrom + offset;
            var token = MatchAt(text, at);
            if (token is null) { searchFrom = at + 1; continue; }
            int from = at, to = at + token.Content.Length;
            if (token.LeftStrip) while (from > cursor && char.IsWhiteSpace(text[from - 1])) from--;
            if (token.RightStrip) while (to < text.Length && char.IsWhiteSpace(text[to])) to++;
            if (from > cursor) segments.Add((cursor, from - cursor, null));
            segments.Add((from, to - from, token));
            cursor = searchFrom = to;
        }
        if (cursor < text.Length) segments.Add((cursor, text.Length - cursor, null));
        return segments;
    }

    private AddedToken? MatchAt(string text, int at)
    {
        foreach (var token in _byFirstChar[text[at]])
        {
            if (!text.AsSpan(at).StartsWith(token.Content, StringComparison.Ordinal)) continue;
            if (token.SingleWord && !(IsEdge(text, at - 1) && IsEdge(text, at + token.Content.Length))) continue;
            return token;
        }
        return null;
    }

    private static bool IsEdge(string text, int index) => index < 0 || index >= text.Length || !char.IsLetterOrDigit(text[index]) && text[index] != '_';
}
