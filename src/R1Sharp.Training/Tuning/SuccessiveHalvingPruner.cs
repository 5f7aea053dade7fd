namespace R1Sharp.Training.Tuning;

/// Asynchronous successive halving (ASHA: Li et al., "A System for Massively Parallel Hyperparameter
/// Tuning", MLSys 2020), as Optuna's SuccessiveHalvingPruner: rung k sits at MinResource ·
/// ReductionFactor^(k + MinEarlyStoppingRate) steps; a trial reaching a rung records its value there
/// (the first value it reported at or after the rung's step) and goes on only if that value is among
/// the best 1/ReductionFactor of all values recorded at that rung so far (the first to arrive always
/// goes on). No synchronisation: trials are judged against whoever got there before them.
public sealed class SuccessiveHalvingPruner : IPruner
{
    /// Steps of the first rung; null: the first step above 0 the trial reports (its evaluation interval).
    public int? MinResource { get; init; }
    public int ReductionFactor { get; init; } = 3;
    public int MinEarlyStoppingRate { get; init; }

    public bool ShouldPrune(TrialRecord trial, int step, IReadOnlyList<TrialRecord> others, double sign)
    {
        var minResource = MinResource ?? trial.Intermediate.Keys.Where(s => s > 0).DefaultIfEmpty(0).Min();
        if (minResource <= 0) return false;
        var previous = trial.Intermediate.Keys.Where(s => s < step).DefaultIfEmpty(int.MinValue).Max();
        for (int rung = 0; ; rung++)
        {
            var rungStep = minResource * Math.Pow(ReductionFactor, rung + MinEarlyStoppingRate);
            if (rungStep > step) return false;
            if (rungStep <= previous) continue;   // recorded (and passed) at an earlier report
            var value = sign * trial.Intermediate[step];
            var competing = others.Where(t => t.Number != trial.Number)
                .Select(t => RungValue(t, rungStep)).OfType<double>().Select(v => sign * v).Append(value).Order().ToList();
            var promotable = Math.Max(0, competing.Count / ReductionFactor - 1);
            if (value > competing[promotable]) return true;
        }
    }

    private static double? RungValue(TrialRecord t, double rungStep)
    {
        foreach (var (s, v) in t.Intermediate.OrderBy(kv => kv.Key))
            if (s >= rungStep) return v;
        return null;
    }
}
