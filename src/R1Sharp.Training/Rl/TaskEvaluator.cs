using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Tokenization;
using R1Sharp.Training.Data;
using R1Sharp.Training.Tasks;

namespace R1Sharp.Training.Rl;

/// pass@1 (greedy) and pass@k (k samples at a temperature) on held-out problems, with 95% intervals.
public static class TaskEvaluator
{
    public sealed record Result(int N, int Correct, double Pass1, double Low, double High, double FormatRate, double MeanLength,
        int K, double PassK, double Seconds);

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

    public static long[] Prompt(TaskProblem p) => Document.Prompt(p.Prompt).Select(t => (long)t).ToArray();

    public static Result Evaluate(CausalLM model, IVerifiableTask task, IReadOnlyList<TaskProblem> problems, int maxNewTokens,
        int k = 1, double temperature = 1.0, int seed = 0, int batch = 128)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var correctness = new CorrectnessReward(task);
        var format = new FormatReward();
        int correct = 0, formatted = 0, anyCorrect = 0;
        double length = 0;
        foreach (var chunk in problems.Chunk(batch))
        {
            var prompts = chunk.Select(Prompt).ToList();
            var greedy = BatchGenerator.Generate(model, prompts, SamplingOptions.GreedyDecoding(maxNewTokens) with { StopTokenIds = [ByteTokenizer.Eos] }, ByteTokenizer.Pad);
            var sampledCorrect = new bool[chunk.Length];
            for (int i = 0; i < chunk.Length; i++)
            {
                var text = ByteTokenizer.Instance.Decode(greedy[i].Tokens);
                var ok = correctness.Score(chunk[i], text, greedy[i].Tokens.Length, greedy[i].Truncated) == 1;
                correct += ok ? 1 : 0;
                sampledCorrect[i] = ok;
                formatted += format.Score(chunk[i], text, 0, false) == 1 ? 1 : 0;
                length += greedy[i].Tokens.Length;
            }
            for (int sample = 1; sample < k; sample++)
            {
                var options = new SamplingOptions { Temperature = temperature, MaxNewTokens = maxNewTokens, Seed = seed * 1000 + sample, StopTokenIds = [ByteTokenizer.Eos] };
                var sampled = BatchGenerator.Generate(model, prompts, options, ByteTokenizer.Pad);
                for (int i = 0; i < chunk.Length; i++)
                    sampledCorrect[i] |= correctness.Score(chunk[i], ByteTokenizer.Instance.Decode(sampled[i].Tokens), sampled[i].Tokens.Length, sampled[i].Truncated) == 1;
            }
            anyCorrect += sampledCorrect.Count(c => c);
        }
        var (low, high) = GrpoMath.Wilson(correct, problems.Count);
        return new Result(problems.Count, correct, (double)correct / problems.Count, low, high, (double)formatted / problems.Count,
            length / problems.Count, k, (double)anyCorrect / problems.Count, watch.Elapsed.TotalSeconds);
    }
}
