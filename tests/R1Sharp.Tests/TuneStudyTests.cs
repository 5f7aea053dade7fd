using System.Diagnostics;
using System.Text.Json.Nodes;
using R1Sharp.Training.Training;
using R1Sharp.Training.Tuning;

namespace R1Sharp.Tests;

/// `r1sharp tune` as a user runs it: real trials (tiny training runs), a kill -9 mid-study, a resume.
public class TuneStudyTests
{
    private static (string Config, string Space) TinyStudyFiles(string dir)
    {
        var config = new JsonObject
        {
            ["name"] = "tiny-tune",
            ["model"] = Path.Combine(TestPaths.RepoRoot, "configs", "tiny-moe.json"),
            ["data"] = new JsonObject { ["arithmetic"] = new JsonObject { ["builtin"] = "arithmetic", ["examples"] = 2000, ["difficulty"] = 2 } },
            ["steps"] = 30, ["lr"] = 2e-3, ["batch_size"] = 4, ["seq_len"] = 64, ["warmup_steps"] = 5, ["eval_every"] = 10, ["eval_batches"] = 2,
            ["checkpoint_every"] = 1000, ["plot_every"] = 1000, ["keep_checkpoints"] = 1,
        };
        var space = new JsonObject
        {
            ["lr"] = new JsonObject { ["type"] = "float", ["low"] = 1e-4, ["high"] = 1e-2, ["log"] = true },
            ["model.n_routed_experts"] = new JsonObject { ["type"] = "int", ["low"] = 8, ["high"] = 16, ["step"] = 8 },
        };
        File.WriteAllText(Path.Combine(dir, "train.json"), config.ToJsonString());
        File.WriteAllText(Path.Combine(dir, "space.json"), space.ToJsonString());
        return (Path.Combine(dir, "train.json"), Path.Combine(dir, "space.json"));
    }

    private static Process Start(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "r1sharp.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        var p = Process.Start(start)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    /// Processes whose command line mentions `text` (the trial runs of a study).
    private static List<int> ProcessesMentioning(string text) =>
        Directory.GetDirectories("/proc").Select(d => Path.GetFileName(d)).Where(n => n.All(char.IsAsciiDigit)).Where(pid =>
        {
            try { return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').Contains(text); }
            catch (IOException) { return false; }
            catch (UnauthorizedAccessException) { return false; }
        }).Select(int.Parse).Where(pid => pid != Environment.ProcessId).ToList();

    [Fact]
    public void AStudyKilledMidTrialResumesWithoutLosingCompletedTrials()
    {
        var dir = TestPaths.TempDir();
        var (config, space) = TinyStudyFiles(dir);
        var study = Path.Combine(dir, "study");
        string[] args = ["tune", "--config", config, "--space", space, "--trials", "5", "--study", study, "--pruner", "none", "--seed", "4"];

        var first = Start(args);
        List<TrialRecord> before;
        TrialRecord running;
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (true)
        {
            Assert.True(DateTime.UtcNow < deadline, "the study never had two completed trials and one mid-way");
            Assert.False(first.HasExited, $"tune exited early with code {(first.HasExited ? first.ExitCode : 0)}");
            Thread.Sleep(100);
            if (!File.Exists(Path.Combine(study, StudyStore.FileName))) continue;
            using var store = StudyStore.Open(study);
            before = store.Trials();
            var mid = before.FirstOrDefault(t => t.State == TrialState.Running && t.Intermediate.Keys.Any(s => s > 0));
            if (before.Count(t => t.State == TrialState.Complete) >= 2 && mid is not null) { running = mid; break; }
        }
        first.Kill();   // SIGKILL: no handler runs
        first.WaitForExit();
        var trialDir = Path.Combine(study, "trials", running.Number.ToString("D4"));
        var orphanDeadline = DateTime.UtcNow.AddSeconds(20);
        while (ProcessesMentioning(trialDir).Count > 0)
        {
            Assert.True(DateTime.UtcNow < orphanDeadline, "the killed study's trial process is still running");
            Thread.Sleep(200);
        }

        // Resume with two worker processes sharing the study.
        var resumed = CliTests.Run([.. args, "--workers", "2"]);
        Assert.True(resumed.Code == 0, resumed.Stderr);
        using var after = StudyStore.Open(study);
        var trials = after.Trials();
        var details = after.Details();
        foreach (var done in before.Where(t => t.State == TrialState.Complete))
        {
            var now = trials.Single(t => t.Number == done.Number);
            Assert.Equal(TrialState.Complete, now.State);
            Assert.Equal(done.Value, now.Value);
            Assert.Equal(StudyStore.ToJson(done.Params), StudyStore.ToJson(now.Params));
        }
        Assert.Equal(TrialState.Fail, trials.Single(t => t.Number == running.Number).State);
        Assert.Contains("lost", details[running.Number].Message);
        var retry = trials.Single(t => details[t.Number].RetryOf == running.Number);
        Assert.Equal(TrialState.Complete, retry.State);
        Assert.Equal(StudyStore.ToJson(running.Params), StudyStore.ToJson(retry.Params));
        Assert.Equal(5, trials.Count(t => t.IsFinished));          // exactly the target, though two workers raced for it
        Assert.Equal(trials.Count, trials.Select(t => t.Number).Distinct().Count());
        Assert.Equal(2e-3, (double)trials[0].Params["lr"]!);   // trial 0 is the config as given
        Assert.Equal(8, (long)trials[0].Params["model.n_routed_experts"]!);

        // What people look at: the table, a runnable best config, the plots.
        Assert.Contains("best trials", resumed.Stdout);
        var best = Path.Combine(study, "best_config.json");
        var (bestConfig, _) = TrainConfig.Load(best, []);
        Assert.True(File.Exists(Path.Combine(study, bestConfig.Model)));
        foreach (var plot in new[] { "history.png", "importance.png", "slices.png" })
            Assert.True(new FileInfo(Path.Combine(study, "plots", plot)).Length > 1000, plot);
        var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(study, "summary.json")))!;
        var bestValue = trials.Where(t => t.State == TrialState.Complete).Min(t => t.Value!.Value);
        Assert.Equal(bestValue, (double)summary["best"]!["value"]!);
    }

    [Fact]
    public void ATrialProcessEndsWhenItsParentDoes()
    {
        // What the kernel does when a tune process dies: the write end of the trial's stdin closes.
        var dir = TestPaths.TempDir();
        var (config, _) = TinyStudyFiles(dir);
        var start = new ProcessStartInfo("dotnet") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "r1sharp.dll"), "train", "--config", config, "--out", Path.Combine(dir, "run"), "--set", "steps=100000" })
            start.ArgumentList.Add(a);
        start.Environment[TrialProcess.ExitWithParentVariable] = "1";
        using var p = Process.Start(start)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        var metrics = Path.Combine(dir, "run", "metrics.jsonl");
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (!File.Exists(metrics) || File.ReadAllLines(metrics).Length < 3)
        {
            Assert.False(p.HasExited, "the run stopped by itself");
            Assert.True(DateTime.UtcNow < deadline, "the run never started training");
            Thread.Sleep(100);
        }
        p.StandardInput.Close();
        var exited = p.WaitForExit(15_000);
        if (!exited) p.Kill();
        Assert.True(exited, "the trial kept training after its parent was gone");
    }

    [Fact]
    public void KeysTheRunDoesNotHaveAreRefusedBeforeAnyTrial()
    {
        var dir = TestPaths.TempDir();
        var (config, _) = TinyStudyFiles(dir);
        var space = Path.Combine(dir, "bad.json");
        File.WriteAllText(space, """{"lrr": {"type": "float", "low": 0.001, "high": 0.01}}""");
        var r = CliTests.Run("tune", "--config", config, "--space", space, "--study", Path.Combine(dir, "s"));
        Assert.Equal(2, r.Code);
        Assert.Contains("'lrr' is not an option of a train config", r.Stderr);
        File.WriteAllText(space, """{"model.n_experts": {"type": "int", "low": 1, "high": 4}}""");
        r = CliTests.Run("tune", "--config", config, "--space", space, "--study", Path.Combine(dir, "s2"));
        Assert.Equal(2, r.Code);
        Assert.Contains("'n_experts' is not a key of the model config", r.Stderr);
    }
}
