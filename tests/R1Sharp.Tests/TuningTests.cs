using System.Text.Json.Nodes;
using R1Sharp.Training.Tuning;

namespace R1Sharp.Tests;

/// Samplers, pruners, importance and the study file of `r1sharp tune`, without running trials.
public class TuningTests
{
    private static SearchSpace Space(string json) => SearchSpace.Parse(JsonNode.Parse(json), "space.json");

    private static TrialRecord Done(int number, double value, params (string Name, JsonNode? Value)[] values) =>
        new(number, TrialState.Complete, values.ToDictionary(v => v.Name, v => v.Value), value, new Dictionary<int, double>());

    private static TrialRecord WithSteps(int number, TrialState state, params (int Step, double Value)[] steps) =>
        new(number, state, new Dictionary<string, JsonNode?>(), steps.Length > 0 ? steps[^1].Value : null, steps.ToDictionary(s => s.Step, s => s.Value));

    [Theory]
    [InlineData("""{"lr": {"type": "float", "low": 0.1, "high": 0.01}}""", "low (0.1) must be below high (0.01)")]
    [InlineData("""{"lr": {"type": "float", "low": 0, "high": 1, "log": true}}""", "a log range needs low > 0")]
    [InlineData("""{"n": {"type": "int", "low": 1, "high": 10, "step": 4}}""", "must be a multiple of step")]
    [InlineData("""{"n": {"type": "int", "low": 1.5, "high": 10}}""", "must be integers")]
    [InlineData("""{"b": {"type": "categorical", "choices": [1, 2, 1]}}""", "choice 1 appears twice")]
    [InlineData("""{"b": {"type": "categorical", "choices": [[1]]}}""", "choices must be numbers, strings")]
    [InlineData("""{"b": {"type": "categorical", "choices": []}}""", "non-empty \"choices\"")]
    [InlineData("""{"lr": {"type": "float", "low": 0, "high": 1, "scale": 2}}""", "unknown field 'scale'")]
    [InlineData("""{"lr": {"type": "gaussian"}}""", "type 'gaussian' is not one of")]
    [InlineData("""{"x": {"type": "float", "low": 0, "high": 1, "when": {"opt": ["a"]}}, "opt": {"type": "categorical", "choices": ["a"]}}""", "not a parameter defined before it")]
    [InlineData("""{"opt": {"type": "categorical", "choices": ["a"]}, "x": {"type": "float", "low": 0, "high": 1, "when": {"opt": ["z"]}}}""", "\"when\" value \"z\" is not a value of 'opt'")]
    [InlineData("""{"../lr": {"type": "float", "low": 0, "high": 1}}""", "dotted names of letters")]
    [InlineData("""[1, 2]""", "expected an object of config keys")]
    [InlineData("""{"lr": {"type": "float", "low": "a", "high": 1}}""", "\"low\" must be a finite number")]
    public void ABadSpaceIsOneClearError(string json, string message)
    {
        var e = Assert.Throws<R1SharpException>(() => Space(json));
        Assert.Contains(message, e.Message);
        Assert.StartsWith("space.json:", e.Message);
    }

    [Fact]
    public void SamplesStayOnTheGridInsideTheBoundsAndFollowConditions()
    {
        var space = Space("""
            {"lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": true},
             "n": {"type": "int", "low": 4, "high": 32, "step": 4},
             "heads": {"type": "int", "low": 1, "high": 64, "log": true},
             "opt": {"type": "categorical", "choices": ["adamw", "sgd"]},
             "momentum": {"type": "float", "low": 0.5, "high": 0.99, "when": {"opt": ["sgd"]}}}
            """);
        var rng = new Random(1);
        var trials = new List<TrialRecord>();
        foreach (var sampler in new ISampler[] { new RandomSampler(), new TpeSampler() })
            for (int i = 0; i < 60; i++)
            {
                var v = sampler.Sample(space, trials, 1, rng);
                Assert.True(space.Admits(v), StudyStore.ToJson(v));
                Assert.Equal(0, (long)v["n"]! % 4);
                Assert.Equal((string)v["opt"]! == "sgd", v.ContainsKey("momentum"));
                var value = Math.Abs(Math.Log10((double)v["lr"]!) + 3) + ((string)v["opt"]! == "sgd" ? 1 - (double)v["momentum"]! : 0.5);
                trials.Add(new TrialRecord(trials.Count, TrialState.Complete, v, value, new Dictionary<int, double>()));
            }
    }

    [Fact]
    public void TpeFindsBetterValuesThanRandomSearch()
    {
        // Branin and the mixed categorical function of `bench tune`, few seeds: TPE's median best must beat random's.
        foreach (var name in new[] { "branin", "mixed", "hartmann6" })
        {
            var f = TuneBenchmark.Functions.Single(x => x.Name == name);
            var tpe = TuneBenchmark.Run(f, "tpe", 40, 9);
            var random = TuneBenchmark.Run(f, "random", 40, 9);
            Assert.True(tpe.Median < random.Median, $"{name}: tpe {tpe.Median} vs random {random.Median}");
        }
    }

    [Fact]
    public void TpeLearnsWhichBranchOfAConditionalSpaceIsBetter()
    {
        var space = Space("""
            {"opt": {"type": "categorical", "choices": ["a", "b"]},
             "x": {"type": "float", "low": 0, "high": 1, "when": {"opt": ["a"]}},
             "y": {"type": "float", "low": 0, "high": 1, "when": {"opt": ["b"]}}}
            """);
        var sampler = new TpeSampler();
        var trials = new List<TrialRecord>();
        for (int i = 0; i < 50; i++)
        {
            var v = sampler.Sample(space, trials, 1, new Random(i));
            var value = (string)v["opt"]! == "a" ? Math.Pow((double)v["x"]! - 0.3, 2) : 0.5 + (double)v["y"]!;
            trials.Add(new TrialRecord(i, TrialState.Complete, v, value, new Dictionary<int, double>()));
        }
        var late = trials.Skip(25).ToList();
        Assert.True(late.Count(t => (string)t.Params["opt"]! == "a") >= 20, "TPE kept sampling the worse branch");
        Assert.True(trials.Min(t => t.Value!.Value) < 0.01);
    }

    [Fact]
    public void MaximisingFlipsTheRanking()
    {
        var trials = new[] { Done(0, 0.2), Done(1, 0.9), WithSteps(2, TrialState.Pruned, (5, 0.95)) };
        Assert.Equal([1, 0, 2], TpeSampler.Rank(trials, sign: -1).Select(t => t.Number));
        Assert.Equal([0, 1, 2], TpeSampler.Rank(trials, sign: 1).Select(t => t.Number));
    }

    [Fact]
    public void MedianPrunerStopsTrialsWorseThanTheMedianAtTheirStep()
    {
        var completed = Enumerable.Range(0, 5).Select(i => WithSteps(i, TrialState.Complete, (0, 5), (10, 2.0 + i), (20, 1.0 + i))).ToList();
        var pruner = new MedianPruner();
        Assert.True(pruner.ShouldPrune(WithSteps(9, TrialState.Running, (0, 5), (10, 4.5)), 10, completed, 1));    // median at 10 is 4
        Assert.False(pruner.ShouldPrune(WithSteps(9, TrialState.Running, (0, 5), (10, 3.5)), 10, completed, 1));
        Assert.False(pruner.ShouldPrune(WithSteps(9, TrialState.Running, (0, 9)), 0, completed, 1));               // warm-up: step 0
        Assert.False(pruner.ShouldPrune(WithSteps(9, TrialState.Running, (0, 5), (10, 4.5)), 10, completed.Take(4).ToList(), 1));   // too few completed
        Assert.False(pruner.ShouldPrune(WithSteps(9, TrialState.Running, (0, 5), (10, 4.5)), 10, completed, -1));  // maximising, 4.5 is good
        Assert.False(pruner.ShouldPrune(WithSteps(9, TrialState.Running, (0, 5), (10, 4.5), (15, 9)), 15, completed, 1));   // nobody else reported step 15
    }

    [Fact]
    public void SuccessiveHalvingPromotesTheBestThirdAtEachRung()
    {
        var pruner = new SuccessiveHalvingPruner { MinResource = 10, ReductionFactor = 3 };
        Assert.False(pruner.ShouldPrune(WithSteps(0, TrialState.Running, (10, 7)), 10, [], 1));   // the first at a rung goes on
        var others = new[] { 1.0, 2.0, 3.0 }.Select((v, i) => WithSteps(i, TrialState.Complete, (10, v), (30, v / 2))).ToList();
        Assert.True(pruner.ShouldPrune(WithSteps(9, TrialState.Running, (10, 2.5)), 10, others, 1));   // 4 at the rung: only the best goes on
        Assert.False(pruner.ShouldPrune(WithSteps(9, TrialState.Running, (10, 0.5)), 10, others, 1));
        Assert.False(pruner.ShouldPrune(WithSteps(9, TrialState.Running, (10, 0.5), (20, 9)), 20, others, 1));   // no rung at 20
        Assert.True(pruner.ShouldPrune(WithSteps(9, TrialState.Running, (10, 0.5), (20, 9), (30, 1.4)), 30, others, 1));   // rung 1 (30): 1.4 is not the best of 0.5, 1.0, 1.4, 1.5
        Assert.False(pruner.ShouldPrune(WithSteps(9, TrialState.Running, (10, 0.5), (30, 0.4)), 30, others, 1));
    }

    [Fact]
    public void ImportanceGoesToTheParameterThatMovesTheObjective()
    {
        var space = Space("""{"x": {"type": "float", "low": 0, "high": 1}, "noise": {"type": "float", "low": 0, "high": 1}, "c": {"type": "categorical", "choices": [1, 2]}}""");
        var rng = new Random(3);
        var trials = Enumerable.Range(0, 60).Select(i =>
        {
            double x = rng.NextDouble(), noise = rng.NextDouble();
            return Done(i, 10 * x + 0.1 * rng.NextDouble(), ("x", x), ("noise", noise), ("c", rng.Next(1, 3)));
        }).ToList();
        var importance = ParameterImportance.Of(space, trials);
        Assert.True(importance["x"] > 0.9, string.Join(", ", importance));
        Assert.Equal(1.0, importance.Values.Sum(), 6);
    }

    [Fact]
    public void ATrialWhoseWorkerDiedIsFailedAndRetriedWithTheSameParameters()
    {
        var dir = TestPaths.TempDir();
        var definition = new StudyDefinition("train", "abc", "lr", "val_loss", "minimize", "tpe", "median", 0);
        using (var store = StudyStore.Open(dir))
        {
            store.Define(definition);
            var dead = $"{Environment.MachineName}:{int.MaxValue}:0";
            var claimed = store.Claim(dead, 3, (_, _) => new() { ["lr"] = 0.01 })!.Value;
            store.Report(claimed.Number, 10, 2.5);
            var next = store.Claim(WorkerIdentity.Current, 3, (_, _) => throw new InvalidOperationException("the retry comes first"))!.Value;
            Assert.Equal(0.01, (double)next.Params["lr"]!);
            var trials = store.Trials();
            Assert.Equal(TrialState.Fail, trials[0].State);
            Assert.Equal(TrialState.Running, trials[1].State);
            Assert.Contains("lost", store.Details()[0].Message);
            Assert.Equal(0, store.Details()[1].RetryOf);
            store.Finish(next.Number, TrialState.Complete, 1.5, null);
        }
        using (var again = StudyStore.Open(dir))
        {
            var e = Assert.Throws<R1SharpException>(() => again.Define(definition with { Metric = "val_ppl" }));
            Assert.Contains("another metric", e.Message);
            again.Define(definition);
            Assert.Equal(TrialState.Complete, again.Trials()[1].State);
            // Target 2: one finished, so one more may start; then none.
            Assert.NotNull(again.Claim(WorkerIdentity.Current, 2, (_, _) => new() { ["lr"] = 0.02 }));
            Assert.Null(again.Claim(WorkerIdentity.Current, 2, (_, _) => new() { ["lr"] = 0.03 }));
        }
        File.WriteAllText(Path.Combine(dir, StudyStore.FileName), "not a database at all, just text");
        Assert.Contains("not a SQLite study file", Assert.Throws<R1SharpException>(() => StudyStore.Open(dir)).Message);
    }
}
