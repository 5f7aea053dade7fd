using System.Text.Json.Nodes;

namespace R1Sharp.Training.Tuning;

/// `bench tune`: samplers on standard test functions, a fixed budget of evaluations per run, many
/// seeds; the figure is the median over seeds of the best value found. `bench/optuna_tune.py`
/// defines the same functions, ranges and budgets for Optuna.
public static class TuneBenchmark
{
    public sealed record TestFunction(string Name, double Optimum, SearchSpace Space, Func<IReadOnlyDictionary<string, JsonNode?>, double> Evaluate);

    public sealed record Result(string Function, string Sampler, int Budget, int Seeds, double Optimum, double Median, double Q25, double Q75, double SecondsPerRun);

    public static IReadOnlyList<TestFunction> Functions { get; } =
    [
        new("branin", 0.397887, Floats(("x1", -5, 10), ("x2", 0, 15)), v =>
        {
            double x1 = X(v, "x1"), x2 = X(v, "x2");
            double b = 5.1 / (4 * Math.PI * Math.PI), c = 5 / Math.PI, t = 1 / (8 * Math.PI);
            return Math.Pow(x2 - b * x1 * x1 + c * x1 - 6, 2) + 10 * (1 - t) * Math.Cos(x1) + 10;
        }),
        new("hartmann6", -3.32237, Floats(Enumerable.Range(0, 6).Select(i => ($"x{i}", 0.0, 1.0)).ToArray()), v =>
        {
            double[] alpha = [1.0, 1.2, 3.0, 3.2];
            double[,] a = { { 10, 3, 17, 3.5, 1.7, 8 }, { 0.05, 10, 17, 0.1, 8, 14 }, { 3, 3.5, 1.7, 10, 17, 8 }, { 17, 8, 0.05, 10, 0.1, 14 } };
            double[,] p = { { 1312, 1696, 5569, 124, 8283, 5886 }, { 2329, 4135, 8307, 3736, 1004, 9991 }, { 2348, 1451, 3522, 2883, 3047, 6650 }, { 4047, 8828, 8732, 5743, 1091, 381 } };
            double sum = 0;
            for (int i = 0; i < 4; i++)
            {
                double inner = 0;
                for (int j = 0; j < 6; j++) inner += a[i, j] * Math.Pow(X(v, $"x{j}") - p[i, j] * 1e-4, 2);
                sum += alpha[i] * Math.Exp(-inner);
            }
            return -sum;
        }),
        new("rosenbrock10", 0, Floats(Enumerable.Range(0, 10).Select(i => ($"x{i}", -2.048, 2.048)).ToArray()), v =>
        {
            double sum = 0;
            for (int i = 0; i < 9; i++) sum += 100 * Math.Pow(X(v, $"x{i + 1}") - X(v, $"x{i}") * X(v, $"x{i}"), 2) + Math.Pow(1 - X(v, $"x{i}"), 2);
            return sum;
        }),
        // A categorical choosing which bowl the float and the log-int are measured in; the best bowl is "b".
        new("mixed", 0, SearchSpace.Parse(JsonNode.Parse("""
            {"kind": {"type": "categorical", "choices": ["a", "b", "c", "d"]},
             "x": {"type": "float", "low": -5, "high": 5},
             "n": {"type": "int", "low": 1, "high": 64, "log": true}}
            """), "mixed"), v =>
        {
            var kind = (string)v["kind"]!;
            var (offset, cx, cn) = kind switch { "a" => (0.5, 1.0, 2.0), "b" => (0.0, -2.0, 4.0), "c" => (1.0, 3.0, 1.0), _ => (2.0, 0.0, 5.0) };
            return offset + Math.Pow(X(v, "x") - cx, 2) + 0.5 * Math.Pow(Math.Log2(X(v, "n")) - cn, 2);
        }),
    ];

    private static double X(IReadOnlyDictionary<string, JsonNode?> v, string name) => Parameter.TryNumber(v[name], out var x) ? x : double.NaN;

    private static SearchSpace Floats(params (string Name, double Low, double High)[] ranges) =>
        new(ranges.Select(r => new Parameter(r.Name, ParameterKind.Float, r.Low, r.High, false, 0, [], null)).ToList());

    public static Result Run(TestFunction function, string samplerName, int budget, int seeds)
    {
        var best = new List<double>();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        for (int seed = 0; seed < seeds; seed++)
        {
            ISampler sampler = samplerName == "random" ? new RandomSampler() : new TpeSampler();
            var trials = new List<TrialRecord>();
            for (int n = 0; n < budget; n++)
            {
                var values = sampler.Sample(function.Space, trials, 1, new Random(unchecked(seed * 1_000_003 + n)));
                trials.Add(new TrialRecord(n, TrialState.Complete, values, function.Evaluate(values), new Dictionary<int, double>()));
            }
            best.Add(trials.Min(t => t.Value!.Value));
        }
        best.Sort();
        return new Result(function.Name, samplerName, budget, seeds, function.Optimum, Quantile(best, 0.5), Quantile(best, 0.25), Quantile(best, 0.75),
            watch.Elapsed.TotalSeconds / seeds);
    }

    private static double Quantile(List<double> sorted, double q)
    {
        var pos = q * (sorted.Count - 1);
        int lo = (int)Math.Floor(pos), hi = (int)Math.Ceiling(pos);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
    }
}
