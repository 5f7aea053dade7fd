using System.CommandLine;
using System.Text.Json;
using R1Sharp.Checkpoints;
using R1Sharp.Training.Rl;
using R1Sharp.Training.Tasks;

namespace R1Sharp.Cli.Commands;

public static class EvalTaskCommand
{
    public static Command Create()
    {
        var dir = new Argument<string>("DIR") { Description = "model folder" };
        var task = new Option<string>("--task") { DefaultValueFactory = _ => "countdown" };
        task.AcceptOnlyFromAmong("arithmetic", "countdown");
        var difficulty = new Option<int>("--difficulty") { DefaultValueFactory = _ => 3 };
        var n = new Option<int>("--n") { DefaultValueFactory = _ => 500 };
        var k = new Option<int>("--k") { Description = "samples per problem (pass@1 is their mean correctness; pass@k any correct)", DefaultValueFactory = _ => 4 };
        var temperature = new Option<double>("--temperature") { DefaultValueFactory = _ => 0.6 };
        var topP = new Option<double>("--top-p") { DefaultValueFactory = _ => 0.95 };
        var seed = new Option<int>("--seed") { Description = "seed of the held-out problems (reproduce uses seed + 1000003)", DefaultValueFactory = _ => 1_000_003 };
        var maxNew = new Option<int>("--max-new-tokens") { DefaultValueFactory = _ => 112 };
        var data = new Option<string?>("--data") { Description = "JSONL problems ({\"prompt\" or \"messages\", \"answer\"}) instead of a built-in task; answers checked by the math verifier" };
        var instruction = new Option<string?>("--instruction") { Description = "appended to each question for models with a chat template, e.g. \"Put the final answer in \\boxed{}.\"" };
        var command = new Command("eval-task", "pass@1 (mean of k samples at T 0.6, top-p 0.95, as R1 reports), greedy accuracy and pass@k on generated held-out problems, with a 95% interval (JSON).") { dir, task, difficulty, n, k, temperature, topP, seed, maxNew, data, instruction };
        command.SetAction(parse => CommandRunner.Guard(() =>
        {
            if (parse.GetValue(n) < 1 || parse.GetValue(k) < 1) throw new R1SharpException("--n and --k must be >= 1");
            var verifiable = VerifiableTasks.Create(parse.GetValue(task)!, parse.GetValue(difficulty));
            var file = parse.GetValue(data);
            var problems = file is not null ? DatasetTask.Read(Path.GetFullPath(file)).Take(parse.GetValue(n)).ToList()
                : TaskEvaluator.TestProblems(verifiable, parse.GetValue(n), parse.GetValue(seed));
            using var model = ModelIO.Load(parse.GetValue(dir)!);
            var format = PromptFormat.For(parse.GetValue(dir)!, model.Config, new ChatPromptOptions(Instruction: parse.GetValue(instruction)));
            IRewardFunction judge = file is not null ? new MathReward() : new CorrectnessReward(verifiable, format.ThinkOpenedByPrompt);
            var r = TaskEvaluator.Evaluate(model, format, judge, problems, parse.GetValue(maxNew),
                new TaskEvaluator.Protocol(parse.GetValue(k), parse.GetValue(temperature), parse.GetValue(topP), parse.GetValue(seed)));
            Console.Out.WriteLine(JsonSerializer.Serialize(new
            {
                task = file ?? parse.GetValue(task), n = r.N, pass1 = r.Pass1, ci95 = new[] { r.Low, r.High }, greedy = r.Greedy, k = r.K, pass_at_k = r.PassK,
                format_rate = r.FormatRate, mean_length = r.MeanLength, seconds = Math.Round(r.Seconds, 1),
            }));
            return 0;
        }));
        return command;
    }
}
