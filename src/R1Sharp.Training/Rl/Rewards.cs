using System.Text.RegularExpressions;
using R1Sharp.Training.Tasks;

namespace R1Sharp.Training.Rl;

/// A completion split into its reasoning and answer, as far as its tags allow (`FormatTags.Parse`).
public sealed record ParsedCompletion(string? Reasoning, string? Answer, bool WellFormed);

/// A rule-based reward; null means the function abstains for this completion.
public interface IRewardFunction
{
    string Name { get; }
    double? Score(TaskProblem problem, string completion, int completionTokens, bool truncated);
}

/// 1 when the completion is exactly a reasoning block and a non-empty answer (`<think>…</think><answer>…</answer>` by default).
public sealed class FormatReward(bool thinkOpenedByPrompt = false, FormatTags? tags = null) : IRewardFunction
{
    public string Name => "format";

    public double? Score(TaskProblem problem, string completion, int completionTokens, bool truncated)
    {
        var parsed = (tags ?? FormatTags.R1Zero).Parse(completion, thinkOpenedByPrompt);
        return parsed.WellFormed && !string.IsNullOrWhiteSpace(parsed.Answer) ? 1 : 0;
    }
}

/// 1 when the tagged answer passes the task's verifier. Guards: an empty answer, an answer copied
/// from the prompt, or (countdown) a bare number scores 0.
public sealed class CorrectnessReward(IVerifiableTask task, bool thinkOpenedByPrompt = false, FormatTags? tags = null) : IRewardFunction
{
    public string Name => "correctness";

    public double? Score(TaskProblem problem, string completion, int completionTokens, bool truncated)
    {
        var answer = (tags ?? FormatTags.R1Zero).Parse(completion, thinkOpenedByPrompt).Answer?.Trim();
        if (string.IsNullOrEmpty(answer)) return 0;
        if (problem.Prompt.Contains(answer) && (task is CountdownTask || answer.Length > 12)) return 0;
        if (task is CountdownTask && !answer.Any(c => c is '+' or '-' or '*' or '/')) return 0;
        return task.Verify(problem, answer) ? 1 : 0;
    }
}

/// 1 when the final answer (the last `\boxed{}`, else the last answer block) equals the reference by
/// `MathAnswer`'s exact comparison; 0 without a final answer.
public sealed class MathReward(FormatTags? tags = null) : IRewardFunction
{
    public string Name => "math";

    public double? Score(TaskProblem problem, string completion, int completionTokens, bool truncated) =>
        MathAnswer.Extract(completion, tags) is { } answer && MathAnswer.Equivalent(answer, problem.Answer) ? 1 : 0;
}

/// DAPO's soft overlong penalty: 0 up to (max - buffer) tokens, then falling linearly to -1 at max.
public sealed class LengthPenalty(int maxTokens, int buffer) : IRewardFunction
{
    public string Name => "length";

    public double? Score(TaskProblem problem, string completion, int completionTokens, bool truncated)
    {
        var start = maxTokens - buffer;
        if (truncated) return -1;
        return completionTokens <= start ? 0 : -Math.Min(1.0, (double)(completionTokens - start) / Math.Max(1, buffer));
    }
}

/// Weighted sum of the functions that did not abstain.
public sealed class RewardSet(IReadOnlyList<(IRewardFunction Function, double Weight)> functions)
{
    public IReadOnlyList<(IRewardFunction Function, double Weight)> Functions => functions;

    public (double Total, Dictionary<string, double?> Parts) Score(TaskProblem problem, string completion, int tokens, bool truncated) =>
        ScoreAll([(problem, completion, tokens, truncated)])[0];

    /// A batch at once: an external command runs once for all of it.
    public List<(double Total, Dictionary<string, double?> Parts)> ScoreAll(IReadOnlyList<(TaskProblem Problem, string Completion, int Tokens, bool Truncated)> items)
    {
        var columns = functions.Select(f => f.Function is ExternalReward external
            ? external.ScoreAll(items.Select(i => (i.Problem, i.Completion)).ToList())
            : items.Select(i => f.Function.Score(i.Problem, i.Completion, i.Tokens, i.Truncated)).ToArray()).ToList();
        return items.Select((_, row) =>
        {
            var parts = new Dictionary<string, double?>();
            double total = 0;
            for (int f = 0; f < functions.Count; f++)
            {
                parts[functions[f].Function.Name] = columns[f][row];
                if (columns[f][row] is { } v) total += v * functions[f].Weight;
            }
            return (total, parts);
        }).ToList();
    }
}
