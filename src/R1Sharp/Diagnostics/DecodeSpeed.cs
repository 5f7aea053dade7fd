using System.Diagnostics;
using R1Sharp.Generation;
using R1Sharp.Models;

namespace R1Sharp.Diagnostics;

/// Cached decode speed through the decode engine, as generation runs it: one sequence prefilled, then
/// `steps` greedy decode steps; tokens/s from the median step (a noisy machine's outliers aside).
public static class DecodeSpeed
{
    public static double TokensPerSecond(CausalLM model, IReadOnlyList<long> prompt, int steps, int rows = 1)
    {
        using var engine = new DecodeEngine(model, rows, prompt.Count + steps + 1);
        var sequences = Enumerable.Range(0, rows).Select(_ => new DecodeSequence(prompt, SamplingOptions.GreedyDecoding(steps), steps, ignoreEos: true)).ToList();
        foreach (var s in sequences) engine.Admit(s);
        engine.Step(new StepPlan(sequences.Select(s => (s, s.Prompt.Length)).ToList(), []));
        var times = new List<double>();
        while (engine.Running.Any())
        {
            var watch = Stopwatch.StartNew();
            engine.Step(new StepPlan([], engine.Running.ToList()));
            times.Add(watch.Elapsed.TotalSeconds);
        }
        times.Sort();
        return rows / times[times.Count / 2];
    }
}
