using System.Text.Json.Nodes;
using R1Sharp.Training;

namespace R1Sharp.Tests;

/// Per-step seeds must not depend on the process (HashCode.Combine does), or runs and resumes differ.
public class StepSeedTests
{
    [Fact]
    public void StepSeedsAreFixedNumbers()
    {
        // SplitMix64 chain, computed independently in Python.
        Assert.Equal(1694147542, StepSeed.Of(0, 5, 0));
        Assert.Equal(562508739, StepSeed.Of(7, 123, 77));
        Assert.Equal(703830562, StepSeed.Of(42, 3));
    }

    [Fact]
    public void TwoProcessesTrainTheSameRun()
    {
        var dir = TestPaths.TempDir();
        var data = Path.Combine(dir, "data");
        Assert.Equal(0, CliTests.Run("prepare", "--builtin", "arithmetic", "--examples", "200", "--out", data).Code);
        File.WriteAllText(Path.Combine(dir, "model.json"), TinyModels.ConfigJson(c => { c["vocab_size"] = 272; c["max_position_embeddings"] = 64; }).ToJsonString());
        File.WriteAllText(Path.Combine(dir, "train.json"), """
            {"name": "same", "model": "model.json", "data": {"a": {"path": "data"}}, "steps": 3, "batch_size": 2, "seq_len": 32,
             "eval_every": 3, "checkpoint_every": 3, "plot_every": 3, "eval_batches": 1}
            """);
        List<double> Losses(string run)
        {
            var result = CliTests.Run("train", "--config", Path.Combine(dir, "train.json"), "--out", run);
            Assert.True(result.Code == 0, result.Stderr);
            return File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!).Where(n => n["loss"] is not null)
                .Select(n => (double)n["loss"]!).ToList();
        }
        var first = Losses(Path.Combine(dir, "a"));
        Assert.Equal(3, first.Count);
        Assert.Equal(first, Losses(Path.Combine(dir, "b")));
    }
}
