using System.Text.Json.Nodes;

namespace R1Sharp.Tokenization;

/// The `pre_tokenizer` of a tokenizer.json: splits text into the pieces BPE sees (as ranges of the text).
/// Supported: Sequence, Split (regex or string; Isolated, Removed, MergedWithPrevious, MergedWithNext),
/// ByteLevel (with or without GPT-2's regex), Digits, and none.
public sealed class PreTokenizer
{
    private const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
    private readonly List<SplitStep> _steps = [];

    private sealed record SplitStep(CodePointRegex Regex, string Behavior);

    /// Whether a space is prepended to the text before splitting (ByteLevel add_prefix_space).
    public bool AddPrefixSpace { get; private set; }

    public static PreTokenizer FromJson(JsonNode? node)
    {
        var result = new PreTokenizer();
        if (node is not null) result.Add(node.AsObject());
        return result;
    }

    private void Add(JsonObject node)
    {
        var type = (string?)node["type"];
        switch (type)
        {
            case "Sequence":
                foreach (var child in node["pretokenizers"]?.AsArray() ?? []) Add(child!.AsObject());
                break;
            case "Split":
                if ((bool?)node["invert"] == true) throw Unsupported("Split with invert: true");
                var pattern = node["pattern"]?["Regex"] is { } regex ? (string)regex!
                    : node["pattern"]?["String"] is { } literal ? System.Text.RegularExpressions.Regex.Escape((string)literal!)
                    : throw Unsupported("Split without a Regex or String pattern");
                var behavior = (string?)node["behavior"] ?? "Isolated";
                if (behavior is not ("Isolated" or "Removed" or "MergedWithPrevious" or "MergedWithNext"))
                    throw Unsupported($"Split behavior {behavior}");
                _steps.Add(new SplitStep(new CodePointRegex(pattern), behavior));
                break;
            case "ByteLevel":
                AddPrefixSpace |= (bool?)node["add_prefix_space"] == true;
                if ((bool?)node["use_regex"] != false) _steps.Add(new SplitStep(new CodePointRegex(Gpt2Pattern), "Isolated"));
                break;
            case "Digits":
                var pattern2 = (bool?)node["individual_digits"] == true ? @"\p{Nd}" : @"\p{Nd}+";
                _steps.Add(new SplitStep(new CodePointRegex(pattern2), "Isolated"));
                break;
            default:
                throw Unsupported($"pre_tokenizer type {type ?? "(none)"}");
        }
    }

    private static R1SharpException Unsupported(string what) => new($"tokenizer.json: {what} is not supported");

    /// The pieces of text[start..start+length), in order.
    public List<(int Start, int Length)> Split(string text, int start, int length)
    {
        var pieces = new List<(int, int)> { (start, length) };
        var matches = new List<(int Start, int Length)>();
        foreach (var split in _steps)
        {
            var next = new List<(int, int)>(pieces.Count * 2);
            foreach (var (s, l) in pieces)
            {
                matches.Clear();
                split.Regex.Matches(text, s, l, matches);
                Apply(split.Behavior, s, l, matches, next);
            }
            pieces = next;
        }
        return pieces;
    }

    /// Hugging Face's SplitDelimiterBehavior over one piece: matches are the delimiters.
    private static void Apply(string behavior, int start, int length, List<(int Start, int Length)> matches, List<(int, int)> output)
    {
        int end = start + length, cursor = start, pendingFrom = -1;
        void Emit(int from, int to) { if (to > from) output.Add((from, to - from)); }
        foreach (var (ms, ml) in matches)
        {
            if (ml == 0) continue;
            switch (behavior)
            {
                case "Isolated":
                    Emit(cursor, ms); Emit(ms, ms + ml);
                    break;
                case "Removed":
                    Emit(cursor, ms);
                    break;
                case "MergedWithPrevious":
                    Emit(cursor, ms + ml);
                    break;
                case "MergedWithNext":
                    Emit(pendingFrom >= 0 ? pendingFrom : cursor, ms);
                    pendingFrom = ms;
                    break;
            }
            cursor = ms + ml;
        }
        if (behavior == "MergedWithNext" && pendingFrom >= 0) Emit(pendingFrom, end);
        else Emit(cursor, end);
    }
}
