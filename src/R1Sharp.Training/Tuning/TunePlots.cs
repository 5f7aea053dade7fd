using ScottPlot;

namespace R1Sharp.Training.Tuning;

/// PNG plots of a study: optimisation history with the running best, parameter importance, and one
/// slice per parameter (objective against the parameter's value, log axes as log10).
public static class TunePlots
{
    public static void Write(string dir, SearchSpace space, IReadOnlyList<TrialRecord> trials, StudyDefinition definition, IReadOnlyDictionary<string, double> importance)
    {
        Directory.CreateDirectory(dir);
        History(Path.Combine(dir, "history.png"), trials, definition);
        Importance(Path.Combine(dir, "importance.png"), importance);
        Slices(Path.Combine(dir, "slices.png"), space, trials, definition);
    }

    private static void History(string path, IReadOnlyList<TrialRecord> trials, StudyDefinition definition)
    {
        var plot = new Plot();
        var completed = trials.Where(t => t.State == TrialState.Complete && t.Value is not null).ToList();
        var pruned = trials.Where(t => t.State == TrialState.Pruned && t.Value is not null).ToList();
        if (completed.Count > 0)
        {
            var dots = plot.Add.ScatterPoints(completed.Select(t => (double)t.Number).ToArray(), completed.Select(t => t.Value!.Value).ToArray());
            dots.LegendText = "completed";
            dots.MarkerSize = 7;
            var best = new List<double>();
            double running = double.PositiveInfinity;
            foreach (var t in completed) best.Add(definition.Sign * (running = Math.Min(running, definition.Sign * t.Value!.Value)));
            // The running best holds until the last trial, whatever that trial's state.
            var xs = completed.Select(t => (double)t.Number).Append(trials.Max(t => t.Number)).ToArray();
            var line = plot.Add.ScatterLine(xs, best.Append(best[^1]).ToArray());
            line.ConnectStyle = ConnectStyle.StepHorizontal;
            line.LegendText = "best so far";
            line.LineWidth = 2;
        }
        if (pruned.Count > 0)
        {
            var dots = plot.Add.ScatterPoints(pruned.Select(t => (double)t.Number).ToArray(), pruned.Select(t => t.Value!.Value).ToArray());
            dots.LegendText = "pruned (last value)";
            dots.MarkerSize = 5;
            dots.Color = Colors.Gray;
        }
        plot.Title($"Optimisation history ({definition.Direction} {definition.Metric})");
        plot.XLabel("trial");
        plot.YLabel(definition.Metric);
        plot.ShowLegend();
        Save(plot, path, 900, 500);
    }

    private static void Importance(string path, IReadOnlyDictionary<string, double> importance)
    {
        var plot = new Plot();
        var ordered = importance.OrderBy(kv => kv.Value).ToList();
        var bars = ordered.Select((kv, i) => new Bar { Position = i, Value = kv.Value }).ToList();
        var series = plot.Add.Bars(bars);
        series.Horizontal = true;
        plot.Axes.Left.SetTicks(Enumerable.Range(0, ordered.Count).Select(i => (double)i).ToArray(), ordered.Select(kv => kv.Key).ToArray());
        plot.Axes.SetLimitsX(0, 1);
        plot.Title("Parameter importance (share of the objective's variance, ε²)");
        plot.XLabel("share");
        Save(plot, path, 900, 120 + 40 * Math.Max(3, ordered.Count));
    }

    private static void Slices(string path, SearchSpace space, IReadOnlyList<TrialRecord> trials, StudyDefinition definition)
    {
        var completed = trials.Where(t => t.State == TrialState.Complete && t.Value is not null).ToList();
        var multiplot = new Multiplot();
        int columns = Math.Min(3, space.Parameters.Count), rows = (space.Parameters.Count + columns - 1) / columns;
        multiplot.AddPlots(space.Parameters.Count);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Grid(rows, columns);
        for (int i = 0; i < space.Parameters.Count; i++)
        {
            var p = space.Parameters[i];
            var plot = multiplot.GetPlot(i);
            var points = completed.Where(t => t.Params.ContainsKey(p.Name)).ToList();
            double X(TrialRecord t) => p.Kind == ParameterKind.Categorical ? p.IndexOf(t.Params[p.Name]) : p.Log ? Math.Log10(Math.Exp(p.ToInternal(t.Params[p.Name]))) : p.ToInternal(t.Params[p.Name]);
            if (points.Count > 0)
            {
                var dots = plot.Add.ScatterPoints(points.Select(X).ToArray(), points.Select(t => t.Value!.Value).ToArray());
                dots.MarkerSize = 6;
            }
            if (p.Kind == ParameterKind.Categorical)
                plot.Axes.Bottom.SetTicks(Enumerable.Range(0, p.Choices.Count).Select(c => (double)c).ToArray(), p.Choices.Select(c => c?.ToJsonString() ?? "null").ToArray());
            plot.XLabel(p.Log ? $"log10({p.Name})" : p.Name);
            plot.YLabel(definition.Metric);
        }
        var tmp = path + ".tmp.png";
        multiplot.SavePng(tmp, 420 * columns, 320 * rows);
        File.Move(tmp, path, overwrite: true);
    }

    private static void Save(Plot plot, string path, int width, int height)
    {
        var tmp = path + ".tmp.png";
        plot.SavePng(tmp, width, height);
        File.Move(tmp, path, overwrite: true);
    }
}
