namespace R1Sharp.Training.Tuning;

/// How much of the objective's spread each parameter explains, by the correlation ratio η²
/// (Pearson 1905; Kelley's ε² is the small-sample correction used here): the completed trials are
/// grouped by the parameter (categoricals by choice, numbers into up to five equal-count bins of
/// their internal, possibly log, value), and η² = between-group variance / total variance, with the
/// bias of a few trials per group removed (ε² = 1 - (1 - η²)(n - 1)/(n - k), floored at 0). The
/// shares are normalised to sum to 1. Marginal only: unlike fANOVA it does not separate interactions,
/// so two parameters that matter only together both look weak; trials where a conditional parameter
/// was inactive are left out of its groups.
public static class ParameterImportance
{
    public static Dictionary<string, double> Of(SearchSpace space, IReadOnlyList<TrialRecord> trials)
    {
        var completed = trials.Where(t => t.State == TrialState.Complete && t.Value is { } v && double.IsFinite(v)).ToList();
        var raw = new Dictionary<string, double>();
        foreach (var p in space.Parameters)
        {
            var points = completed.Where(t => t.Params.ContainsKey(p.Name)).Select(t => (X: p.ToInternal(t.Params[p.Name]), Y: t.Value!.Value)).ToList();
            raw[p.Name] = points.Count < 3 ? 0 : Epsilon2(Groups(p, points));
        }
        var total = raw.Values.Sum();
        return raw.ToDictionary(kv => kv.Key, kv => total > 0 ? kv.Value / total : 0);
    }

    private static List<List<double>> Groups(Parameter p, List<(double X, double Y)> points)
    {
        if (!p.IsNumeric) return points.GroupBy(q => q.X).Select(g => g.Select(q => q.Y).ToList()).ToList();
        var sorted = points.OrderBy(q => q.X).ToList();
        var bins = Math.Min(5, sorted.Select(q => q.X).Distinct().Count());
        var groups = new List<List<double>>();
        for (int b = 0; b < bins; b++)
        {
            var from = b * sorted.Count / bins;
            var to = (b + 1) * sorted.Count / bins;
            groups.Add(sorted.Skip(from).Take(to - from).Select(q => q.Y).ToList());
        }
        return groups.Where(g => g.Count > 0).ToList();
    }

    private static double Epsilon2(List<List<double>> groups)
    {
        var all = groups.SelectMany(g => g).ToList();
        int n = all.Count, k = groups.Count;
        if (k < 2 || n <= k) return 0;
        var mean = all.Average();
        var total = all.Sum(y => (y - mean) * (y - mean));
        if (total <= 0) return 0;
        var between = groups.Sum(g => g.Count * Math.Pow(g.Average() - mean, 2));
        var eta2 = between / total;
        return Math.Max(0, 1 - (1 - eta2) * (n - 1) / (n - k));
    }
}
