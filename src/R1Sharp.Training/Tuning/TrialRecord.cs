using System.Text.Json.Nodes;

namespace R1Sharp.Training.Tuning;

public enum TrialState { Waiting, Running, Complete, Pruned, Fail }

/// A trial as the study holds it. Values are as the run reported them; `Sign` turns them into
/// losses (+1 when minimising, -1 when maximising) for samplers and pruners.
public sealed record TrialRecord(int Number, TrialState State, IReadOnlyDictionary<string, JsonNode?> Params, double? Value,
    IReadOnlyDictionary<int, double> Intermediate)
{
    public bool IsFinished => State is TrialState.Complete or TrialState.Pruned;
    public int? LastStep => Intermediate.Count == 0 ? null : Intermediate.Keys.Max();
}

/// Chooses a trial's parameters from the trials so far.
public interface ISampler
{
    Dictionary<string, JsonNode?> Sample(SearchSpace space, IReadOnlyList<TrialRecord> trials, double sign, Random rng);
}

/// Decides from a running trial's intermediate values (and the other trials') whether to stop it.
public interface IPruner
{
    bool ShouldPrune(TrialRecord trial, int step, IReadOnlyList<TrialRecord> others, double sign);
}
