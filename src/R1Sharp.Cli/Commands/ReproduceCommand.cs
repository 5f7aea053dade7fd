using System.CommandLine;
using R1Sharp.Training.Rl;
using Spectre.Console;

namespace R1Sharp.Cli.Commands;

public static class ReproduceCommand
{
    public static Command Create()
    {
        var task = new Option<string>("--task") { Description = "arithmetic or countdown", DefaultValueFactory = _ => "arithmetic" };
        task.AcceptOnlyFromAmong("arithmetic", "countdown");
        var difficulty = new Option<int>("--difficulty") { Description = "digits (arithmetic) or numbers (countdown)", DefaultValueFactory = _ => 3 };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 0 };
        var zero = new Option<bool>("--zero") { Description = "R1-Zero: skip the <think> cold start (pretrain on plain problems and answers)" };
        var quick = new Option<bool>("--quick") { Description = "a smoke test in a few minutes" };
        var n = new Option<int>("--n-test") { Description = "held-out problems", DefaultValueFactory = _ => 500 };
        var sft = new Option<int?>("--sft-steps");
        var grpo = new Option<int?>("--grpo-steps");
        var output = new Option<string?>("--out") { Description = "run folder (default ./runs/reproduce)" };
        var model = new Option<string?>("--model") { Description = "a model folder (weights, tokenizer.json, chat template) instead of the built-in MoE model; --sft-steps 0 skips the cold start" };
        var seqLen = new Option<int?>("--sft-seq-len") { Description = "SFT window length (default 160)" };
        var batch = new Option<int?>("--sft-batch") { Description = "SFT batch size (default 16)" };
        var sftLr = new Option<double?>("--sft-lr") { Description = "SFT learning rate (default 0.003)" };
        var grpoLr = new Option<double?>("--grpo-lr") { Description = "GRPO learning rate (default 0.0001)" };
        var grpoPrompts = new Option<int?>("--grpo-prompts") { Description = "prompts per GRPO step, 8 samples each (default 12)" };
        var command = new Command("reproduce", "The R1 recipe end to end: create a small MoE model, SFT it, evaluate, GRPO, evaluate; writes report.md.")
            { task, difficulty, seed, zero, quick, n, sft, grpo, output, model, seqLen, batch, sftLr, grpoLr, grpoPrompts };
        command.SetAction(parse => CommandRunner.Guard(() =>
        {
            var options = new ReproduceOptions
            {
                Task = parse.GetValue(task)!, Difficulty = parse.GetValue(difficulty), Seed = parse.GetValue(seed), Zero = parse.GetValue(zero),
                Quick = parse.GetValue(quick), TestProblems = parse.GetValue(n), SftSteps = parse.GetValue(sft), GrpoSteps = parse.GetValue(grpo),
                Model = parse.GetValue(model), SftSeqLen = parse.GetValue(seqLen), SftBatch = parse.GetValue(batch), SftLr = parse.GetValue(sftLr), GrpoLr = parse.GetValue(grpoLr), GrpoPrompts = parse.GetValue(grpoPrompts),
            };
            if (options.TestProblems < 1) throw new R1SharpException("--n-test must be >= 1");
            var runDir = Path.GetFullPath(parse.GetValue(output) ?? Path.Combine("runs", "reproduce"));
            var result = Reproduce.Run(options, runDir, line => Console.Error.WriteLine(line));
            var table = new Table().AddColumn("").AddColumn("pass@1").AddColumn("95% interval");
            table.AddRow("before RL (SFT)", $"{(double)result["pass1_before"]!:P1}", Markup.Escape($"[{(double)result["ci95_before"]![0]!:P1}, {(double)result["ci95_before"]![1]!:P1}]"));
            table.AddRow("after GRPO", $"{(double)result["pass1_after"]!:P1}", Markup.Escape($"[{(double)result["ci95_after"]![0]!:P1}, {(double)result["ci95_after"]![1]!:P1}]"));
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine($"report: {Markup.Escape(Path.Combine(runDir, "report.md"))}  ({result["n_test"]} held-out problems, {(double)result["seconds"]! / 60:F1} min)");
            return 0;
        }));
        return command;
    }
}
