using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace R1Sharp.Training.Rl;

/// The tags of a well-formed completion: a reasoning block, then an answer block — or, when
/// `Answer` is null (R1-Distill models), the untagged text after the reasoning. Whitespace
/// between and around the blocks is allowed (real models write newlines there); nothing else is.
/// Config: `"format_tags": {"think": ["<think>", "</think>"], "answer": ["<answer>", "</answer>"] or null}`.
public sealed class FormatTags
{
    [JsonPropertyName("think")] public IReadOnlyList<string> Think { get; init; } = ["<think>", "</think>"];
    [JsonPropertyName("answer")] public IReadOnlyList<string>? Answer { get; init; } = ["<answer>", "</answer>"];

    public static readonly FormatTags R1Zero = new();

    private const int MaxTagLength = 64;

    public void Validate()
    {
        static void Pair(IReadOnlyList<string>? pair, string name)
        {
            if (pair is null || pair.Count != 2 || pair.Any(t => string.IsNullOrWhiteSpace(t) || t.Length > MaxTagLength) || pair[0] == pair[1])
                throw new R1SharpException($"grpo config: format_tags.{name} must be two different non-empty tags of at most {MaxTagLength} characters, like [\"<{name}>\", \"</{name}>\"]");
        }
        Pair(Think, "think");
        if (Answer is not null)
        {
            Pair(Answer, "answer");
            if (Answer.Intersect(Think).Any()) throw new R1SharpException("grpo config: format_tags.answer and format_tags.think must not share a tag");
        }
    }

    private Regex? _full, _opened, _answer;

    /// `thinkOpenedByPrompt`: the prompt already opened the reasoning block, so the completion must
    /// only close it (a second opening tag would let the format reward be earned twice).
    public ParsedCompletion Parse(string completion, bool thinkOpenedByPrompt)
    {
        try
        {
            return Match(completion, thinkOpenedByPrompt);
        }
        catch (RegexMatchTimeoutException)
        {
            return new ParsedCompletion(null, null, false);
        }
    }

    private ParsedCompletion Match(string completion, bool thinkOpenedByPrompt)
    {
        var match = (thinkOpenedByPrompt ? _opened ??= Build(opened: true) : _full ??= Build(opened: false)).Match(completion);
        if (match.Success) return new ParsedCompletion(match.Groups["think"].Value, match.Groups["answer"].Value, true);
        if (Answer is null) return new ParsedCompletion(null, null, false);
        var answers = (_answer ??= new Regex($"{E(Answer[0])}(?<answer>(?:{Without(Answer)})*){E(Answer[1])}", Options, Timeout)).Matches(completion);
        return new ParsedCompletion(null, answers.Count == 1 ? answers[0].Groups["answer"].Value : null, false);
    }

    /// The last answer block's content, or (untagged answers) the text after the last reasoning block.
    public string? LastAnswer(string completion)
    {
        var (open, close) = Answer is null ? (Think[1], (string?)null) : (Answer[0], Answer[1]);
        if (close is null)
        {
            var end = completion.LastIndexOf(open, StringComparison.Ordinal);
            return end < 0 ? null : completion[(end + open.Length)..].Trim();
        }
        var at = completion.LastIndexOf(close, StringComparison.Ordinal);
        if (at < 0) return null;
        var start = completion.LastIndexOf(open, at, StringComparison.Ordinal);
        return start < 0 ? null : completion[(start + open.Length)..at];
    }

    private const RegexOptions Options = RegexOptions.Singleline | RegexOptions.CultureInvariant;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(1);

    private static string E(string tag) => Regex.Escape(tag);

    /// One character that does not start any of the tags.
    private string Without(IEnumerable<string> tags) => "(?!" + string.Join("|", tags.Select(E)) + ").";

    private Regex Build(bool opened)
    {
        var all = Think.Concat(Answer ?? []).ToList();
        var think = $"(?<think>(?:{Without(Think)})+){E(Think[1])}";
        var answer = Answer is null
            ? $"(?<answer>(?:{Without(all)})*?)"
            : $"{E(Answer[0])}(?<answer>(?:{Without(all)})*){E(Answer[1])}";
        return new Regex($@"^\s*{(opened ? "" : E(Think[0]))}{think}\s*{answer}\s*$", Options, Timeout);
    }
}
