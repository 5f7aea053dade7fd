using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Tokenization;
using R1Sharp.Training.Data;
using R1Sharp.Training.Tasks;

namespace R1Sharp.Training.Rl;

/// Held-out evaluation as the DeepSeek-R1 paper reports it: pass@1 is the mean correctness of k
/// samples per problem at temperature 0.6 and top-p 0.95, with a 95% interval over problems; greedy
/// accuracy and pass@k (any of the k samples correct) are reported beside it.
public static class TaskEvaluator
{
    public sealed record Protocol(int Samples = 4, double Temperature = 0.6, double TopP = 0.95, int Seed = 0);

    public sealed record Result(int N, double Pass1, double Low, double High, double Greedy, double PassK, int K,
        double FormatRate, double MeanLength, double Seconds);

    /// Held-out problems: drawn from their own seed and never equal to a prompt in `exclude`.
    public static List<TaskProblem> TestProblems(IVerifiableTask task, int n, int seed, IReadOnlySet<string>? exclude = null)
    {
        var random = new Random(seed);
        var seen = new HashSet<string>();
        var problems = new List<TaskProblem>();
        for (int attempts = 0; problems.Count < n && attempts < n * 50; attempts++)
        {
            var p = task.Generate(random);
            if ((exclude?.Contains(p.Prompt) ?? false) || !seen.Add(p.Prompt)) continue;
            problems.Add(p);
        }
        return problems;
    }

    /// `judge` scores 1 for a correct completion (the task's correctness reward, or the math verifier).
    public static Result Evaluate(CausalLM model, PromptFormat format, IRewardFunction judge, IReadOnlyList<TaskProblem> problems, int maxNewTokens,
        Protocol? protocol = null, int batch = 128, FormatTags? tags = null)
    {
        protocol ??= new Protocol();
        if (protocol.Samples < 1) throw new R1SharpException("evaluation needs at least one sample per problem");
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var formatReward = new FormatReward(format.ThinkOpenedByPrompt, tags);
        var perProblem = new List<double>();
        int greedyCorrect = 0, anyCorrect = 0, formatted = 0, completions = 0;
        double length = 0;
        foreach (var chunk in problems.Chunk(batch))
        {
            var prompts = chunk.Select(format.Prompt).ToList();
            bool Correct(TaskProblem p, BatchCompletion c) => judge.Score(p, format.Decode(c.Tokens), c.Tokens.Length, c.Truncated) == 1;
            var greedy = BatchGenerator.Generate(model, prompts, SamplingOptions.GreedyDecoding(maxNewTokens) with { StopTokenIds = format.StopIds });
            greedyCorrect += chunk.Where((p, i) => Correct(p, greedy[i])).Count();
            var hits = new int[chunk.Length];
            for (int s = 0; s < protocol.Samples; s++)
            {
                var options = new SamplingOptions
                {
                    Temperature = protocol.Temperature, TopP = protocol.TopP, MaxNewTokens = maxNewTokens,
                    Seed = protocol.Seed * 7919 + s + 1, StopTokenIds = format.StopIds,
                };
                var sampled = BatchGenerator.Generate(model, prompts, options);
                for (int i = 0; i < chunk.Length; i++)
                {
                    hits[i] += Correct(chunk[i], sampled[i]) ? 1 : 0;
                    formatted += formatReward.Score(chunk[i], format.Decode(sampled[i].Tokens), 0, false) == 1 ? 1 : 0;
                    length += sampled[i].Tokens.Length;
                    completions++;
                }
            }
            perProblem.AddRange(hits.Select(h => (double)h / protocol.Samples));
            anyCorrect += hits.Count(h => h > 0);
        }
        var n = problems.Count;
        var pass1 = perProblem.Average();
        var (low, high) = protocol.Samples == 1
            ? GrpoMath.Wilson((int)Math.Round(pass1 * n), n)
            : NormalInterval(perProblem);
        return new Result(n, pass1, low, high, (double)greedyCorrect / n, (double)anyCorrect / n, protocol.Samples,
            (double)formatted / completions, length / completions, watch.Elapsed.TotalSeconds);
    }

    /// mean +- 1.96 standard errors of per-problem scores, clipped to [0, 1].
    private static (double Low, double High) NormalInterval(List<double> values)
    {
        var mean = values.Average();
        var variance = values.Sum(v => (v - mean) * (v - mean)) / Math.Max(1, values.Count - 1);
        var half = 1.959964 * Math.Sqrt(variance / values.Count);
        return (Math.Max(0, mean - half), Math.Min(1, mean + half));
    }
}
