using ScottPlot;

namespace R1Sharp.Training.Training;

/// PNG plots of a run: loss (train and validation), learning rate, gradient norm, expert load over time.
public static class TrainingPlots
{
    public static void Write(string dir, MetricsHistory history)
    {
        if (history.Steps.Count == 0) return;
        Directory.CreateDirectory(dir);
        Line(Path.Combine(dir, "loss.png"), "Loss", "loss",
            ("train", history.Steps, history.Loss), ("validation", history.EvalSteps, history.ValLoss));
        Line(Path.Combine(dir, "lr.png"), "Learning rate", "lr", ("lr", history.Steps, history.Lr));
        Line(Path.Combine(dir, "grad_norm.png"), "Gradient norm (before clipping)", "global norm", ("grad norm", history.Steps, history.GradNorm));
        if (history.Imbalance.Count > 0)
            Line(Path.Combine(dir, "expert_imbalance.png"), "Expert load imbalance (max / mean)", "max/mean",
                ("mean over MoE layers", history.Steps, history.Imbalance));
        if (history.ExpertLoad.Count > 0) Heatmap(Path.Combine(dir, "expert_load.png"), history);
    }

    public static void Line(string path, string title, string yLabel, params (string Label, List<double> X, List<double> Y)[] series)
    {
        var plot = new Plot();
        foreach (var (label, x, y) in series)
        {
            if (x.Count == 0) continue;
            var line = plot.Add.ScatterLine(x.ToArray(), y.ToArray());
            line.LegendText = label;
            line.MarkerSize = x.Count < 30 ? 5 : 0;
        }
        plot.Title(title);
        plot.XLabel("step");
        plot.YLabel(yLabel);
        if (series.Length > 1) plot.ShowLegend();
        Save(plot, path);
    }

    /// Rows: MoE layer x expert; columns: logged steps; colour: fraction of token-slots.
    private static void Heatmap(string path, MetricsHistory history)
    {
        var columns = history.ExpertLoad.Count;
        var rows = history.ExpertLoad[0].Sum(layer => layer.Length);
        var data = new double[rows, columns];
        for (int c = 0; c < columns; c++)
        {
            int r = 0;
            foreach (var layer in history.ExpertLoad[c])
                foreach (var value in layer) data[rows - 1 - r++, c] = value;
        }
        var plot = new Plot();
        var map = plot.Add.Heatmap(data);
        map.Colormap = new ScottPlot.Colormaps.Viridis();
        plot.Add.ColorBar(map);
        plot.Title("Expert load (rows: layer x expert, top = first; columns: logged steps)");
        plot.XLabel($"step (0 .. {history.Steps[^1]:0})");
        plot.YLabel("MoE layer x expert");
        Save(plot, path);
    }

    private static void Save(Plot plot, string path)
    {
        var tmp = path + ".tmp.png";
        plot.SavePng(tmp, 900, 500);
        File.Move(tmp, path, overwrite: true);
    }
}
