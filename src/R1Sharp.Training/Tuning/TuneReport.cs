using System.Text.Json;
using System.Text.Json.Nodes;

namespace R1Sharp.Training.Tuning;

public sealed record TuneSummary(StudyDefinition Definition, IReadOnlyList<TrialRecord> Trials, TrialRecord? Best,
    IReadOnlyDictionary<string, double> Importance, string? BestConfigPath, string PlotsDir);

/// What a study leaves for people: the best trial's config ready to run (`best_config.json`),
/// plots, and `summary.json` (every trial, the best, the importances).
public static class TuneReport
{
    public static TuneSummary Write(Tuner tuner, string studyDir)
    {
        using var store = StudyStore.Open(studyDir);
        var trials = store.Trials();
        var details = store.Details();
        var definition = tuner.Definition;
        var best = trials.Where(t => t.State == TrialState.Complete && t.Value is { } v && double.IsFinite(v))
            .OrderBy(t => definition.Sign * t.Value!.Value).ThenBy(t => t.Number).FirstOrDefault();
        var importance = ParameterImportance.Of(tuner.Space, trials);
        string? bestPath = null;
        if (best is not null)
        {
            var config = tuner.ConfigFor(best.Params, studyDir, "best_model_config.json");
            bestPath = Path.Combine(studyDir, "best_config.json");
            AtomicFile.WriteAllText(bestPath, config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        }
        var plots = Path.Combine(studyDir, "plots");
        TunePlots.Write(plots, tuner.Space, trials, definition, importance);

        var summary = new JsonObject
        {
            ["metric"] = definition.Metric, ["direction"] = definition.Direction, ["sampler"] = definition.Sampler, ["pruner"] = definition.Pruner,
            ["best"] = best is null ? null : new JsonObject { ["number"] = best.Number, ["value"] = best.Value, ["params"] = JsonNode.Parse(StudyStore.ToJson(best.Params)) },
            ["importance"] = new JsonObject(importance.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)Math.Round(kv.Value, 4)))),
            ["states"] = new JsonObject(trials.GroupBy(t => t.State).Select(g => KeyValuePair.Create(g.Key.ToString().ToLowerInvariant(), (JsonNode?)g.Count()))),
            ["trials"] = new JsonArray(trials.Select(t =>
            {
                var d = details.GetValueOrDefault(t.Number);
                return (JsonNode)new JsonObject
                {
                    ["number"] = t.Number, ["state"] = t.State.ToString().ToLowerInvariant(), ["value"] = t.Value,
                    ["params"] = JsonNode.Parse(StudyStore.ToJson(t.Params)), ["retry_of"] = d.RetryOf,
                    ["seconds"] = d.Started is { } s && d.Finished is { } f ? Math.Round(f - s, 1) : null, ["message"] = d.Message,
                    ["intermediate"] = new JsonObject(t.Intermediate.OrderBy(kv => kv.Key).Select(kv => KeyValuePair.Create(kv.Key.ToString(), (JsonNode?)kv.Value))),
                };
            }).ToArray()),
        };
        AtomicFile.WriteAllText(Path.Combine(studyDir, "summary.json"), summary.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        return new TuneSummary(definition, trials, best, importance, bestPath, plots);
    }
}
