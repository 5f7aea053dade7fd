namespace R1Sharp.Training.Tuning;

/// Stops a trial whose best intermediate value so far is worse than the median of the completed
/// trials' values at the same step (Optuna's MedianPruner; Golovin et al., "Google Vizier", KDD 2017,
/// call it the median stopping rule). Nothing is pruned before `StartupTrials` trials completed or
/// before `WarmupSteps` (step 0 is the untrained model, the same for many trials).
public sealed class MedianPruner : IPruner
{
    public int StartupTrials { get; init; } = 5;
    public int WarmupSteps { get; init; } = 1;

    public bool ShouldPrune(TrialRecord trial, int step, IReadOnlyList<TrialRecord> others, double sign)
    {
        if (step < WarmupSteps) return false;
        var completed = others.Where(t => t.State == TrialState.Complete && t.Number != trial.Number).ToList();
        if (completed.Count < StartupTrials) return false;
        var atStep = completed.Where(t => t.Intermediate.ContainsKey(step)).Select(t => sign * t.Intermediate[step]).Order().ToList();
        if (atStep.Count == 0) return false;
        var median = atStep.Count % 2 == 1 ? atStep[atStep.Count / 2] : 0.5 * (atStep[atStep.Count / 2 - 1] + atStep[atStep.Count / 2]);
        var best = trial.Intermediate.Where(kv => kv.Key <= step).Min(kv => sign * kv.Value);
        return best > median;
    }
}
