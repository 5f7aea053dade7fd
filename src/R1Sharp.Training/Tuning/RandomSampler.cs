using System.Text.Json.Nodes;

namespace R1Sharp.Training.Tuning;

/// Independent uniform draws in each parameter's internal space (log-uniform for log ranges).
public sealed class RandomSampler : ISampler
{
    public Dictionary<string, JsonNode?> Sample(SearchSpace space, IReadOnlyList<TrialRecord> trials, double sign, Random rng)
    {
        var values = new Dictionary<string, JsonNode?>();
        foreach (var p in space.Parameters)
            if (space.IsActive(p, values)) values[p.Name] = Draw(p, rng);
        return values;
    }

    public static JsonNode? Draw(Parameter p, Random rng) => p.Kind == ParameterKind.Categorical
        ? p.FromInternal(rng.Next(p.Choices.Count))
        : p.FromInternal(p.InternalLow + rng.NextDouble() * (p.InternalHigh - p.InternalLow));
}
