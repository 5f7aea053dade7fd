using System.Text.Json.Nodes;

namespace R1Sharp.Training.Training;

/// What the plots need from metrics.jsonl, kept in memory during a run and re-read on resume.
public sealed class MetricsHistory
{
    public List<double> Steps { get; } = [];
    public List<double> Loss { get; } = [];
    public List<double> Lr { get; } = [];
    public List<double> GradNorm { get; } = [];
    public List<double> Imbalance { get; } = [];
    public List<double[][]> ExpertLoad { get; } = [];
    public List<double> EvalSteps { get; } = [];
    public List<double> ValLoss { get; } = [];

    public void Add(JsonObject line)
    {
        var step = Num(line["step"]!);
        if (line["val_loss"] is { } val) { EvalSteps.Add(step); ValLoss.Add(Num(val)); return; }
        if (line["skipped"] is { } skipped && (bool)skipped) return;
        Steps.Add(step);
        Loss.Add(Num(line["loss"]!));
        Lr.Add(Num(line["lr"]!));
        GradNorm.Add(Num(line["grad_norm"]!));
        if (line["imbalance_mean"] is { } imbalance) Imbalance.Add(Num(imbalance));
        if (line["expert_load"] is JsonArray load)
            ExpertLoad.Add(load.Select(layer => layer!.AsArray().Select(v => Num(v!)).ToArray()).ToArray());
    }

    /// A JSON number as double, whether it was written as an int or a float.
    public static double Num(JsonNode node) => double.Parse(node.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture);

    public static MetricsHistory From(IEnumerable<JsonObject> lines)
    {
        var history = new MetricsHistory();
        foreach (var line in lines) history.Add(line);
        return history;
    }
}
