using System.Text;

namespace R1Sharp.Training.Tasks;

/// Countdown: reach the target with the given numbers (each at most once) and + - * /.
/// Difficulty = how many numbers. Answers are checked by evaluating the expression exactly.
public sealed class CountdownTask(int count) : IVerifiableTask
{
    public string Name => "countdown";

    public TaskProblem Generate(Random random)
    {
        if (count < 2 || count > 6) throw new R1SharpException("countdown difficulty (numbers) must be 2..6");
        while (true)
        {
            var numbers = Enumerable.Range(0, count).Select(_ => random.Next(1, 26)).ToList();
            // Combine the numbers left to right in a random order with random operations (exact only).
            var order = numbers.OrderBy(_ => random.Next()).ToList();
            long value = order[0];
            var expression = order[0].ToString();
            var steps = new StringBuilder();
            var ok = true;
            for (int i = 1; i < order.Count && ok; i++)
            {
                var n = order[i];
                var op = "+-*/"[random.Next(4)];
                long next = op switch { '+' => value + n, '-' => value - n, '*' => value * n, _ => n != 0 && value % n == 0 ? value / n : -1 };
                if (next <= 0 || next > 1000) { ok = false; break; }
                steps.Append($"{value}{op}{n}={next}. ");
                expression = i == 1 ? $"{expression}{op}{n}" : (op is '*' or '/' ? $"({expression}){op}{n}" : $"{expression}{op}{n}");
                value = next;
            }
            if (!ok || value < 1) continue;
            var list = string.Join(", ", numbers);
            return new TaskProblem(Name, $"Using the numbers [{list}], create an equation that equals {value}. Use + - * / and each number at most once.",
                steps.ToString().TrimEnd(), expression, numbers, (int)value);
        }
    }

    public bool Verify(TaskProblem problem, string answer)
    {
        if (problem.Numbers is null || problem.Target is null) return false;
        var parsed = ExpressionEvaluator.TryEvaluate(answer, out var used);
        if (parsed is null || used.Count == 0) return false;
        var available = problem.Numbers.GroupBy(n => n).ToDictionary(g => (long)g.Key, g => g.Count());
        foreach (var n in used)
        {
            if (!available.TryGetValue(n, out var left) || left == 0) return false;
            available[n] = left - 1;
        }
        return parsed.Value == problem.Target.Value;
    }
}
