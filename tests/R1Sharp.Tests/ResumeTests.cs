using System.Diagnostics;
using System.Text.Json.Nodes;
using R1Sharp.Training.Training;

namespace R1Sharp.Tests;

/// Training runs lose nothing: a process killed with SIGKILL anywhere resumes to the same losses as an
/// uninterrupted run, a torn metrics line or a stale temporary checkpoint does not stop it, and two
/// trainers never share a run folder.
public class ResumeTests
{
    private static string Setup()
    {
        var dir = TestPaths.TempDir();
        Assert.Equal(0, CliTests.Run("prepare", "--builtin", "arithmetic", "--examples", "300", "--out", Path.Combine(dir, "data")).Code);
        File.Copy(Path.Combine(TestPaths.RepoRoot, "configs", "tiny-moe.json"), Path.Combine(dir, "model.json"));
        // Batches of 2 leave some experts without tokens in a step: the state a resume used to get wrong.
        File.WriteAllText(Path.Combine(dir, "train.json"), """
            {"name": "kill", "model": "model.json", "data": {"a": {"path": "data"}}, "steps": 18, "batch_size": 2, "seq_len": 32,
             "eval_every": 1000, "checkpoint_every": 3, "keep_checkpoints": 2, "plot_every": 1000, "eval_batches": 1,
             "bias_update_speed": 0.001, "augment": {"replace": 0.05}}
            """);
        return dir;
    }

    private static SortedDictionary<int, double> Losses(string run) =>
        new(File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!).Where(n => n["loss"] is not null)
            .ToDictionary(n => (int)n["step"]!, n => (double)n["loss"]!));

    private static void Train(string dir, string run, bool resume)
    {
        var args = new List<string> { "train", "--config", Path.Combine(dir, "train.json"), "--out", run };
        if (resume) args.Add("--resume");
        var result = CliTests.Run([.. args]);
        Assert.True(result.Code == 0, result.Stderr);
    }

    /// Starts a training process and kills it with SIGKILL once metrics.jsonl holds `afterStep`.
    private static void TrainAndKill(string dir, string run, int afterStep)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "r1sharp.dll"), "train", "--config", Path.Combine(dir, "train.json"), "--out", run })
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        var metrics = Path.Combine(run, "metrics.jsonl");
        var watch = Stopwatch.StartNew();
        while (!process.HasExited && watch.Elapsed < TimeSpan.FromMinutes(2))
        {
            if (File.Exists(metrics) && Losses(run).Keys.DefaultIfEmpty(0).Max() >= afterStep) break;
            Thread.Sleep(10);
        }
        Assert.False(process.HasExited, $"the run ended before step {afterStep}");
        process.Kill(entireProcessTree: true);   // SIGKILL: no chance to clean up
        process.WaitForExit();
    }

    [Fact]
    public void ARunKilledAnywhereResumesToTheSameLosses()
    {
        var dir = Setup();
        var straight = Path.Combine(dir, "straight");
        Train(dir, straight, resume: false);
        var expected = Losses(straight);
        Assert.Equal(18, expected.Count);

        foreach (var killAt in new[] { 4, 7, 11 })
        {
            var run = Path.Combine(dir, $"killed-{killAt}");
            TrainAndKill(dir, run, killAt);
            // What a crash can leave behind: half a metrics line and a half-written checkpoint.
            File.AppendAllText(Path.Combine(run, "metrics.jsonl"), "{\"step\": 99, \"loss\": 1.2");
            var stale = Path.Combine(RunCheckpoints.Folder(run), "step-000099.tmp-99999");
            Directory.CreateDirectory(stale);
            Train(dir, run, resume: true);

            var resumed = Losses(run);
            Assert.Equal(expected.Keys, resumed.Keys);
            foreach (var (step, loss) in expected)
                Assert.True(loss == resumed[step], $"killed after step {killAt}: step {step} loss {resumed[step]:R}, uninterrupted {loss:R}");
            Assert.False(Directory.Exists(stale));
        }
    }

    [Fact]
    public void TwoTrainersCannotShareARunFolder()
    {
        var dir = Setup();
        var run = Path.Combine(dir, "busy");
        using (RunFolder.Open(run))
        {
            var second = CliTests.Run("train", "--config", Path.Combine(dir, "train.json"), "--out", run);
            Assert.Equal(2, second.Code);
            Assert.Contains("another run is using this folder", second.Stderr);
        }
        using var again = RunFolder.Open(run);   // free once the first owner is gone
    }

    [Fact]
    public void CheckpointsAreOrderedByStepNumber()
    {
        var run = TestPaths.TempDir();
        foreach (var step in new[] { "step-999999", "step-1000000", "step-000010", "step-000020.tmp-4242" })
        {
            var folder = Path.Combine(RunCheckpoints.Folder(run), step);
            Directory.CreateDirectory(folder);
            File.WriteAllText(Path.Combine(folder, RunCheckpoints.StateFile), "{}");
        }
        Assert.Equal(["step-000010", "step-999999", "step-1000000"], RunCheckpoints.Completed(run).Select(Path.GetFileName));
    }

    [Fact]
    public void ADamagedMetricsLineBeforeTheEndIsNamed()
    {
        var run = TestPaths.TempDir();
        File.WriteAllText(Path.Combine(run, "metrics.jsonl"), "{\"step\": 1, \"loss\": 2}\nnot json\n{\"step\": 2, \"loss\": 1}\n");
        using var folder = RunFolder.Open(run);
        var error = Assert.Throws<R1SharpException>(() => folder.TruncateMetrics(2));
        Assert.Contains("line 2", error.Message);
    }
}
