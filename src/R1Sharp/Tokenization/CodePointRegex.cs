using System.Globalization;
using System.Text.RegularExpressions;

namespace R1Sharp.Tokenization;

/// A Hugging Face (Oniguruma) split pattern run with .NET's regex engine on code points. .NET sees a
/// character outside the BMP as two surrogates that match no \p{L}/\p{S}/...; so before matching, each
/// such character is replaced by one BMP character of the same Unicode category, and match offsets
/// are mapped back to the original text. A pattern from a file may backtrack catastrophically, so
/// every match has a time limit.
public sealed class CodePointRegex
{
    private static readonly TimeSpan MatchTimeout = TimeSpan.FromSeconds(1);
    private static readonly char[] StandIns = BuildStandIns();
    private readonly Regex _regex;
    private readonly string _pattern;

    public CodePointRegex(string pattern)
    {
        _pattern = pattern;
        try
        {
            _regex = new Regex(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant, MatchTimeout);
        }
        catch (ArgumentException e)
        {
            throw new R1SharpException($"tokenizer.json: split pattern '{pattern}' is not a valid regex ({e.Message})");
        }
    }

    /// Appends the (start, length) of every match inside text[start..start+length) to `matches`.
    public void Matches(string text, int start, int length, List<(int Start, int Length)> matches)
    {
        try
        {
            Collect(text, start, length, matches);
        }
        catch (RegexMatchTimeoutException)
        {
            throw new R1SharpException($"tokenizer.json: split pattern '{_pattern}' took over {MatchTimeout.TotalSeconds:0} s on a {length}-character piece (catastrophic backtracking)");
        }
    }

    private void Collect(string text, int start, int length, List<(int Start, int Length)> matches)
    {
        var span = text.AsSpan(start, length);
        if (span.IndexOfAnyInRange('\uD800', '\uDFFF') < 0)
        {
            foreach (var m in _regex.EnumerateMatches(span)) matches.Add((start + m.Index, m.Length));
            return;
        }
        var (mapped, origin) = Map(span);
        foreach (var m in _regex.EnumerateMatches(mapped))
        {
            var from = origin[m.Index];
            matches.Add((start + from, origin[m.Index + m.Length] - from));
        }
    }

    /// One char per code point; origin[i] is where mapped char i starts in the span (plus the end).
    private static (string Mapped, int[] Origin) Map(ReadOnlySpan<char> span)
    {
        var mapped = new char[span.Length];
        var origin = new int[span.Length + 1];
        int n = 0;
        for (int i = 0; i < span.Length; i++, n++)
        {
            origin[n] = i;
            if (char.IsHighSurrogate(span[i]) && i + 1 < span.Length && char.IsLowSurrogate(span[i + 1]))
            {
                var category = CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(span[i], span[i + 1]));
                mapped[n] = StandIns[(int)category];
                i++;
            }
            else
            {
                mapped[n] = span[i];
            }
        }
        origin[n] = span.Length;
        return (new string(mapped, 0, n), origin);
    }

    /// For each Unicode category, a BMP character of it from outside the ranges tokenizers name
    /// literally (ASCII, CJK ideographs, kana).
    private static char[] BuildStandIns()
    {
        var standIns = new char[Enum.GetValues<UnicodeCategory>().Length];
        Array.Fill(standIns, '\uFFFD');
        var found = new bool[standIns.Length];
        foreach (var range in new[] { (0xA000, 0xFFFF), (0x0100, 0x2FFF) })
            for (int c = range.Item1; c <= range.Item2; c++)
            {
                if (c is >= 0xD800 and <= 0xDFFF) continue;
                var category = (int)CharUnicodeInfo.GetUnicodeCategory((char)c);
                if (!found[category]) (standIns[category], found[category]) = ((char)c, true);
            }
        return standIns;
    }
}
