using System.CommandLine;
using R1Sharp.Training.Rl;
using Spectre.Console;

namespace R1Sharp.Cli.Commands;

public static class GrpoCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config") { Description = "GRPO config JSON (paths inside are relative to it)", Required = true };
        var set = new Option<string[]>("--set") { Description = "override a config key (key=value)" };
        var output = new Option<string?>("--out") { Description = "run folder (default ./runs/<name>)" };
        var resume = new Option<bool>("--resume");
        var stopAfter = new Option<int?>("--stop-after");
        var command = new Command("grpo", "Reinforcement learning with verifiable rewards (GRPO) from a model folder.") { config, set, output, resume, stopAfter };
        command.SetAction(parse => CommandRunner.Guard(() =>
        {
            var path = Path.GetFullPath(parse.GetValue(config)!);
            var (grpoConfig, resolved) = GrpoConfig.Load(path, parse.GetValue(set) ?? []);
            var runDir = Path.GetFullPath(parse.GetValue(output) ?? Path.Combine("runs", grpoConfig.Name));
            using var trainer = new GrpoTrainer(grpoConfig, resolved, Path.GetDirectoryName(path)!, runDir, path);
            var summary = trainer.Run(parse.GetValue(resume), line => Console.Error.WriteLine(line), parse.GetValue(stopAfter));
            AnsiConsole.MarkupLine($"[green]done[/]: {summary.Steps} steps in {summary.Seconds:F0} s; held-out pass@1 {summary.LastEval?.Pass1:P1}; run folder {Markup.Escape(summary.RunDir)}");
            return 0;
        }));
        return command;
    }
}
