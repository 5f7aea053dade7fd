using System.CommandLine;
using R1Sharp.Training.Training;
using Spectre.Console;

namespace R1Sharp.Cli.Commands;

public static class TrainCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config") { Description = "training config JSON (paths inside are relative to it)", Required = true };
        var set = new Option<string[]>("--set") { Description = "override a config key: --set lr=0.001 --set augment.replace=0.05", AllowMultipleArgumentsPerToken = false };
        var output = new Option<string?>("--out") { Description = "run folder (default ./runs/<name>)" };
        var resume = new Option<bool>("--resume") { Description = "continue from the run's latest checkpoint" };
        var stopAfter = new Option<int?>("--stop-after") { Description = "stop (with a checkpoint) after this many steps; --resume continues" };
        var command = new Command("train", "Train a DeepSeek-style model: checkpoints, metrics.jsonl, plots and a manifest in the run folder.") { config, set, output, resume, stopAfter };
        command.SetAction(parse => CommandRunner.Guard(() =>
        {
            var path = Path.GetFullPath(parse.GetValue(config)!);
            var (trainConfig, resolved) = TrainConfig.Load(path, parse.GetValue(set) ?? []);
            var runDir = Path.GetFullPath(parse.GetValue(output) ?? Path.Combine("runs", trainConfig.Name));
            using var trainer = new Trainer(trainConfig, resolved, Path.GetDirectoryName(path)!, runDir, path);
            var summary = ProgressDisplay.Run(trainConfig.TotalSteps, "train", report => trainer.Run(parse.GetValue(resume), report, parse.GetValue(stopAfter)));
            AnsiConsole.MarkupLine($"[green]done[/]: {summary.Steps} steps, validation loss {summary.FirstValLoss:F4} -> {summary.LastValLoss:F4}, {summary.TokensPerSecond:F0} tokens/s");
            AnsiConsole.MarkupLine($"run folder: {Markup.Escape(summary.RunDir)}");
            return 0;
        }));
        return command;
    }
}
