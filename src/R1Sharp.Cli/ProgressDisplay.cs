using R1Sharp.Training.Training;
using Spectre.Console;

namespace R1Sharp.Cli;

/// A progress bar with loss, tokens/s, learning rate and ETA for a training run.
public static class ProgressDisplay
{
    public static T Run<T>(int totalSteps, string label, Func<Action<TrainProgress>, T> body)
    {
        if (Console.IsErrorRedirected || Console.IsOutputRedirected)
            return body(p => { if (p.Step % 10 == 0 || p.Step == p.TotalSteps || p.ValLoss is not null) Console.Error.WriteLine(Describe(p)); });
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                var task = context.AddTask(label, maxValue: totalSteps);
                result = body(p =>
                {
                    task.Value = p.Step;
                    task.Description = Markup.Escape(Describe(p));
                });
            });
        return result;
    }

    private static string Describe(TrainProgress p) =>
        $"[{p.Stage}] step {p.Step}/{p.TotalSteps} loss {p.Loss:F4}{(p.ValLoss is { } v ? $" val {v:F4}" : "")} {p.TokensPerSecond:F0} tok/s lr {p.Lr:E2}";
}
