using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace R1Sharp.Training.Tuning;

public sealed record TrialResult(TrialState State, double? Value, string? Message);

/// Runs one trial as its own `r1sharp train|grpo` process: its output goes to `trial.log`, the
/// metric's intermediate values are read from the run's metrics.jsonl as they appear and reported
/// to the study, a pruner's verdict kills the process at once. The child exits by itself when this
/// process dies (it watches its stdin pipe, see `ParentWatch`), so a killed study leaves no orphans.
public static class TrialProcess
{
    public const string ExitWithParentVariable = "R1SHARP_EXIT_WITH_PARENT";
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(200), HeartbeatEvery = TimeSpan.FromSeconds(2);

    public static TrialResult Run(IReadOnlyList<string> command, string trialDir, string metric, int number, IReadOnlyDictionary<string, JsonNode?> parameters,
        StudyStore store, IPruner? pruner, double sign, IReadOnlyDictionary<string, string> environment, CancellationToken cancel)
    {
        var start = new ProcessStartInfo(command[0]) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in command.Skip(1)) start.ArgumentList.Add(arg);
        start.Environment[ExitWithParentVariable] = "1";
        foreach (var (key, value) in environment) start.Environment[key] = value;
        using var log = new StreamWriter(Path.Combine(trialDir, "trial.log"), append: true, Encoding.UTF8) { AutoFlush = true };
        var lastError = "";
        void Append(string? line, bool isError)
        {
            if (line is null) return;
            lock (log) log.WriteLine(line);
            if (isError && line.StartsWith("error", StringComparison.Ordinal)) lastError = line;
        }

        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Append(e.Data, false);
        process.ErrorDataReceived += (_, e) => Append(e.Data, true);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var metrics = new MetricsTail(Path.Combine(trialDir, "metrics.jsonl"), metric);
        var intermediate = new SortedDictionary<int, double>();
        var heartbeat = Stopwatch.StartNew();
        bool Report()
        {
            foreach (var (step, value) in metrics.ReadNew())
            {
                intermediate[step] = value;
                store.Report(number, step, value);
                var current = new TrialRecord(number, TrialState.Running, parameters, value, new Dictionary<int, double>(intermediate));
                if (pruner is not null && double.IsFinite(value) && pruner.ShouldPrune(current, step, store.Trials(), sign)) return true;
            }
            return false;
        }

        while (!process.WaitForExit(Poll))
        {
            if (cancel.IsCancellationRequested)
            {
                Kill(process);
                return new TrialResult(TrialState.Running, null, "cancelled");
            }
            if (Report())
            {
                Kill(process);
                return new TrialResult(TrialState.Pruned, intermediate.Last().Value, $"pruned at step {intermediate.Last().Key}");
            }
            if (heartbeat.Elapsed > HeartbeatEvery)
            {
                store.Heartbeat(number);
                heartbeat.Restart();
            }
        }
        process.WaitForExit();   // drains the output handlers
        if (cancel.IsCancellationRequested) return new TrialResult(TrialState.Running, null, "cancelled");   // Ctrl+C reached the child too
        Report();
        if (process.ExitCode != 0)
            return new TrialResult(TrialState.Fail, null, $"exit code {process.ExitCode}{(lastError.Length > 0 ? ": " + lastError : "")} (see {Path.Combine(trialDir, "trial.log")})");
        if (intermediate.Count == 0)
            return new TrialResult(TrialState.Fail, null, $"the run finished without reporting '{metric}' in its metrics.jsonl");
        var final = intermediate.Last().Value;
        return double.IsFinite(final)
            ? new TrialResult(TrialState.Complete, final, null)
            : new TrialResult(TrialState.Fail, null, $"'{metric}' ended as {final}");
    }

    private static void Kill(Process process)
    {
        try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        process.WaitForExit();
    }

    /// Complete lines appended to a metrics file since the last read, as (step, value) of one metric.
    private sealed class MetricsTail(string path, string metric)
    {
        private long _offset;

        public List<(int Step, double Value)> ReadNew()
        {
            var found = new List<(int, double)>();
            if (!File.Exists(path)) return found;
            using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            if (f.Length < _offset) _offset = 0;   // rewritten (a resumed run truncates)
            f.Seek(_offset, SeekOrigin.Begin);
            var bytes = new byte[Math.Min(f.Length - _offset, 64 << 20)];
            var n = f.Read(bytes);
            var end = Array.LastIndexOf(bytes, (byte)'\n', Math.Max(0, n - 1));
            if (n == 0 || end < 0) return found;
            _offset += end + 1;
            foreach (var line in Encoding.UTF8.GetString(bytes, 0, end).Split('\n'))
            {
                JsonObject? o = null;
                try { o = JsonNode.Parse(line) as JsonObject; } catch (JsonException) { }
                if (o?[metric] is JsonValue v && v.TryGetValue<double>(out var value) && o["step"] is JsonValue s && s.TryGetValue<int>(out var step))
                    found.Add((step, value));
            }
            return found;
        }
    }
}
