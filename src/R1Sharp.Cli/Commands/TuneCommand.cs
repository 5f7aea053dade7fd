using System.CommandLine;
using System.Diagnostics;
using R1Sharp.Training.Tuning;
using Spectre.Console;

namespace R1Sharp.Cli.Commands;

public static class TuneCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config") { Description = "a train or grpo config JSON: every trial runs it with the sampled keys set", Required = true };
        var space = new Option<string>("--space") { Description = "search space JSON: {\"lr\": {\"type\": \"float\", \"low\": 1e-4, \"high\": 1e-2, \"log\": true}, …}", Required = true };
        var trials = new Option<int>("--trials") { Description = "finished (completed or pruned) trials the study should have", DefaultValueFactory = _ => 20 };
        var study = new Option<string?>("--study") { Description = "study folder (study.db, trials/, plots/, best_config.json); an existing study resumes (default ./runs/tune-<name>)" };
        var workers = new Option<int>("--workers") { Description = "worker processes sharing the study, each running its own trial", DefaultValueFactory = _ => 1 };
        var timeout = new Option<double?>("--timeout") { Description = "seconds after which no new trial starts (running trials finish)" };
        var metric = new Option<string?>("--metric") { Description = "the metrics.jsonl key to optimise (default: val_loss for train, eval_pass1 for grpo)" };
        var direction = new Option<string?>("--direction") { Description = "minimize or maximize (default: minimize for losses, maximize otherwise)" };
        var sampler = new Option<string>("--sampler") { Description = "tpe (Bayesian, default) or random", DefaultValueFactory = _ => "tpe" };
        var pruner = new Option<string>("--pruner") { Description = "median (default), asha (successive halving) or none", DefaultValueFactory = _ => "median" };
        var seed = new Option<int>("--seed") { Description = "sampler seed", DefaultValueFactory = _ => 0 };
        var set = new Option<string[]>("--set") { Description = "override a config key in every trial (key=value)" };
        var worker = new Option<bool>("--worker") { Hidden = true };
        var command = new Command("tune", "Hyperparameter search over a train or grpo config: TPE or random sampling, median or ASHA pruning, a study in SQLite that resumes.")
            { config, space, trials, study, workers, timeout, metric, direction, sampler, pruner, seed, set, worker };
        command.SetAction(parse => CommandRunner.Guard(() =>
        {
            var configPath = Path.GetFullPath(parse.GetValue(config)!);
            var k = parse.GetValue(workers);
            if (k is < 1 or > 64) throw new R1SharpException("--workers must be in 1..64");
            if (parse.GetValue(timeout) is <= 0) throw new R1SharpException("--timeout must be > 0 seconds");
            var name = Path.GetFileNameWithoutExtension(configPath);
            var options = new TuneOptions
            {
                ConfigPath = configPath, SpacePath = Path.GetFullPath(parse.GetValue(space)!),
                StudyDir = Path.GetFullPath(parse.GetValue(study) ?? Path.Combine("runs", "tune-" + name)),
                Launcher = Launcher(), Sets = parse.GetValue(set) ?? [], Trials = parse.GetValue(trials),
                Timeout = parse.GetValue(timeout) is { } t ? TimeSpan.FromSeconds(t) : null,
                Metric = parse.GetValue(metric), Direction = parse.GetValue(direction), Sampler = parse.GetValue(sampler)!, Pruner = parse.GetValue(pruner)!, Seed = parse.GetValue(seed),
                Workers = k,
            };
            var tuner = new Tuner(options);
            using var cancel = new CancellationTokenSource();
            Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
            var others = parse.GetValue(worker) ? [] : Enumerable.Range(1, k - 1).Select(_ => StartWorker([.. Environment.GetCommandLineArgs().Skip(1), "--worker"])).ToList();
            var prefix = parse.GetValue(worker) ? $"[worker {Environment.ProcessId}] " : "";
            try
            {
                tuner.RunWorker(line => Console.Error.WriteLine($"{DateTime.Now:HH:mm:ss} {prefix}{line}"), cancel.Token);
            }
            catch
            {
                foreach (var p in others) p.Kill(entireProcessTree: true);   // their trials are retried on resume
                throw;
            }
            finally
            {
                foreach (var p in others)
                {
                    p.WaitForExit();
                    if (p.ExitCode != 0) Console.Error.WriteLine($"warning: worker {p.Id} exited with code {p.ExitCode}");
                    p.Dispose();
                }
            }
            if (parse.GetValue(worker)) return 0;
            Render(TuneReport.Write(tuner, options.StudyDir), options.StudyDir);
            return 0;
        }));
        return command;
    }

    /// How to start `r1sharp` again: the apphost, or `dotnet r1sharp.dll`.
    private static List<string> Launcher()
    {
        var host = Environment.ProcessPath ?? throw new R1SharpException("cannot tell which executable runs r1sharp");
        var dll = typeof(TuneCommand).Assembly.Location;
        return Path.GetFileNameWithoutExtension(host) == "dotnet" ? [host, dll] : [host];
    }

    private static Process StartWorker(List<string> args)
    {
        var launcher = Launcher();
        var start = new ProcessStartInfo(launcher[0]) { RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in launcher.Skip(1).Concat(args)) start.ArgumentList.Add(a);
        start.Environment[TrialProcess.ExitWithParentVariable] = "1";
        return Process.Start(start)!;
    }

    private static string Show(System.Text.Json.Nodes.JsonNode? v) =>
        v is System.Text.Json.Nodes.JsonValue value && value.TryGetValue<double>(out var x) && x != Math.Floor(x) ? x.ToString("G4") : v?.ToJsonString() ?? "null";

    private static void Render(TuneSummary summary, string studyDir)
    {
        var d = summary.Definition;
        var finished = summary.Trials.Where(t => t.State == TrialState.Complete).OrderBy(t => d.Sign * t.Value!.Value).Take(10).ToList();
        var names = summary.Trials.SelectMany(t => t.Params.Keys).Distinct().ToList();
        var table = new Table().Title($"best trials ({d.Direction} {d.Metric})");
        table.AddColumn("trial");
        table.AddColumn(new TableColumn(d.Metric).RightAligned());
        foreach (var n in names) table.AddColumn(new TableColumn(Markup.Escape(n)).RightAligned());
        foreach (var t in finished)
            table.AddRow(new[] { t.Number.ToString(), $"{t.Value:G6}" }.Concat(names.Select(n => Markup.Escape(t.Params.TryGetValue(n, out var v) ? Show(v) : "-"))).ToArray());
        AnsiConsole.Write(table);
        var states = string.Join(", ", summary.Trials.GroupBy(t => t.State).Select(g => $"{g.Count()} {g.Key.ToString().ToLowerInvariant()}"));
        AnsiConsole.MarkupLine($"trials: {Markup.Escape(states)}");
        AnsiConsole.MarkupLine("importance: " + Markup.Escape(string.Join(", ", summary.Importance.OrderByDescending(kv => kv.Value).Select(kv => $"{kv.Key} {kv.Value:F2}"))));
        if (summary.Trials.FirstOrDefault(t => t.Number == 0 && t.State == TrialState.Complete) is { } given && summary.Best is { } top)
            AnsiConsole.MarkupLine($"the config as given (trial 0): {d.Metric} {given.Value:G6}; best (trial {top.Number}): {top.Value:G6}");
        if (summary.BestConfigPath is { } best) AnsiConsole.MarkupLine($"best config: {Markup.Escape(best)}");
        AnsiConsole.MarkupLine($"plots: {Markup.Escape(summary.PlotsDir)}; study: {Markup.Escape(Path.Combine(studyDir, StudyStore.FileName))}");
    }
}
