using System.Diagnostics;
using System.Text.Json;
using R1Sharp.Checkpoints;
using R1Sharp.Generation;
using static TorchSharp.torch;

namespace R1Sharp.Tests;

/// The `r1sharp` executable, run as a user would: exit codes, stdout and stderr.
public class CliTests
{
    public static (int Code, string Stdout, string Stderr) Run(params string[] args) => RunIn(null, args);

    public static (int Code, string Stdout, string Stderr) RunIn(string? workingDirectory, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        if (workingDirectory is not null) start.WorkingDirectory = workingDirectory;
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "r1sharp.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    private static string TinyModelDir()
    {
        var dir = TestPaths.TempDir();
        using var model = TinyModels.Model();
        ModelIO.Save(model, dir);
        return dir;
    }

    private static void AssertUserError((int Code, string Stdout, string Stderr) result, string message)
    {
        Assert.Equal(2, result.Code);
        Assert.Contains(message, result.Stderr);
        Assert.Single(result.Stderr.Trim().Split('\n'));
        Assert.DoesNotContain("   at ", result.Stderr);
    }

    [Fact]
    public void InitThenInspectLogitsAndGenerateWork()
    {
        var dir = Path.Combine(TestPaths.TempDir(), "model");
        var init = Run("init", "--config", Path.Combine(TestPaths.RepoRoot, "configs", "tiny.json"), "--out", dir, "--seed", "3");
        Assert.True(init.Code == 0, init.Stderr);
        Assert.True(File.Exists(Path.Combine(dir, "model.safetensors")));

        var inspect = Run("inspect", dir);
        Assert.True(inspect.Code == 0, inspect.Stderr);
        Assert.Contains("active per token", inspect.Stdout);
        Assert.Contains("KV cache per token", inspect.Stdout);

        var logits = Run("logits", dir, "--ids", "3,14,15");
        Assert.True(logits.Code == 0, logits.Stderr);
        using var json = JsonDocument.Parse(logits.Stdout);
        Assert.Equal([3, 14, 15], json.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()));
        var rows = json.RootElement.GetProperty("logits").EnumerateArray().ToList();
        Assert.Equal(3, rows.Count);
        Assert.All(rows, r => Assert.Equal(256, r.GetArrayLength()));

        using var model = ModelIO.Load(dir);
        using (no_grad())
        {
            var expected = model.Forward(tensor(new long[] { 3, 14, 15 }).unsqueeze(0))[0];
            var printed = stack(rows.Select(r => tensor(r.EnumerateArray().Select(e => e.GetSingle()).ToArray())).ToArray());
            Numerics.AssertClose(expected, printed, 0, "printed logits");
        }

        var generate = Run("generate", dir, "--ids", "3,14,15", "--max-new-tokens", "6", "--greedy", "--json");
        Assert.True(generate.Code == 0, generate.Stderr);
        var ids = JsonDocument.Parse(generate.Stdout).RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        var expectedIds = TokenGenerator.Generate(model, [3, 14, 15], SamplingOptions.GreedyDecoding(6) with { StopTokenIds = [1] }).ToArray();
        Assert.Equal(expectedIds, ids);
    }

    [Fact]
    public void BadInputIsOneLineAndExitCodeTwo()
    {
        var dir = TinyModelDir();
        AssertUserError(Run("logits", "/no/such/dir", "--ids", "1"), "model directory not found: /no/such/dir");
        AssertUserError(Run("logits", dir, "--ids", "1,64"), "token id 64 is outside the vocabulary (0..63)");
        AssertUserError(Run("logits", dir, "--ids", "1,x"), "'x' is not an integer");
        AssertUserError(Run("generate", dir, "--ids", "-1", "--greedy", "--json"), "token id -1 is outside the vocabulary");
        AssertUserError(Run("logits", dir), "--ids");

        var config = Path.Combine(dir, "config.json");
        var good = File.ReadAllText(config);
        File.WriteAllText(config, good.Replace("\"deepseek_v3\"", "\"mystery\""));
        AssertUserError(Run("logits", dir, "--ids", "1"), "model_type 'mystery' is not supported");
        File.WriteAllText(config, good.Replace("\"kv_lora_rank\"", "\"kv_lora_rank_renamed\""));
        AssertUserError(Run("inspect", dir), "missing required key(s): kv_lora_rank");
        File.WriteAllText(config, good);

        var weights = Path.Combine(dir, "model.safetensors");
        var bytes = File.ReadAllBytes(weights);
        File.WriteAllBytes(weights, bytes[..(bytes.Length / 2)]);
        AssertUserError(Run("logits", dir, "--ids", "1"), "past the end of the data");
        File.WriteAllBytes(weights, [.. BitConverter.GetBytes(5L), .. "{oops"u8.ToArray()]);
        AssertUserError(Run("logits", dir, "--ids", "1"), "header is not valid JSON");
        File.WriteAllBytes(weights, bytes);

        using (var model = TinyModels.Model())
        {
            var state = model.state_dict().Where(p => p.Key != "model.norm.weight").Select(p => (p.Key, p.Value)).ToList();
            SafeTensorsWriter.Write(weights, state);
        }
        AssertUserError(Run("generate", dir, "--ids", "1", "--greedy"), "missing: model.norm.weight");

        AssertUserError(Run("init", "--config", "/no/such/config.json", "--out", TestPaths.TempDir()), "config not found");
    }

    [Fact]
    public void QuantizeThenLoadAndBenchmarkEveryFormat()
    {
        var dir = TinyModelDir();
        var fp8 = Path.Combine(TestPaths.TempDir(), "fp8");
        var quantize = Run("quantize", dir, "--to", "fp8", "--out", fp8);
        Assert.True(quantize.Code == 0, quantize.Stderr);
        var int4 = Path.Combine(TestPaths.TempDir(), "int4");
        Assert.Equal(0, Run("quantize", dir, "--to", "int4", "--out", int4).Code);
        foreach (var (quantized, weights) in new[] { (fp8, "fp8"), (int4, "int4") })
        {
            // Held as stored and read by the kernels, or dequantized on load: the same logits up to the
            // kernels' rounding of activations to int16 (a relative 1.5e-5 per element; a wrong scale or layout is O(1)).
            var kept = Run("logits", quantized, "--ids", "3,14", "--weights", weights);
            var dequantized = Run("logits", quantized, "--ids", "3,14");
            Assert.True(kept.Code == 0 && dequantized.Code == 0, kept.Stderr + dequantized.Stderr);
            double[] Values(string json) => JsonDocument.Parse(json).RootElement.GetProperty("logits").EnumerateArray().SelectMany(r => r.EnumerateArray()).Select(v => v.GetDouble()).ToArray();
            Assert.All(Values(kept.Stdout).Zip(Values(dequantized.Stdout)), p => Assert.True(Math.Abs(p.First - p.Second) <= 1e-3 * Math.Max(1, Math.Abs(p.Second)), $"{weights}: {p.First} vs {p.Second}"));
        }

        var bench = Run("bench", "quant", dir, "--decode-steps", "2");
        Assert.True(bench.Code == 0, bench.Stderr);
        var formats = JsonDocument.Parse(bench.Stdout).RootElement.GetProperty("formats").EnumerateArray().ToList();
        Assert.Equal(["f32", "bf16", "fp8", "int8", "int4"], formats.Select(f => f.GetProperty("format").GetString()));
        Assert.Equal(0, formats[0].GetProperty("max_abs_logit_diff").GetDouble());
        Assert.All(formats.Skip(1), f => Assert.True(f.GetProperty("weight_ratio").GetDouble() < 0.55));

        AssertUserError(Run("quantize", dir, "--to", "int2", "--out", fp8), "int2");
        AssertUserError(Run("bench", "quant", dir, "--formats", "f32,q4"), "unknown format 'q4'");
    }

    [Fact]
    public void PrepareTrainResumeAndEvalFromTheCommandLine()
    {
        var dir = TestPaths.TempDir();
        var data = Path.Combine(dir, "data");
        var prepare = Run("prepare", "--builtin", "countdown", "--examples", "300", "--difficulty", "3", "--out", data);
        Assert.True(prepare.Code == 0, prepare.Stderr);
        Assert.Contains("\"train\"", prepare.Stdout);

        var model = TinyModels.ConfigJson(c => { c["vocab_size"] = 272; c["max_position_embeddings"] = 128; });
        File.WriteAllText(Path.Combine(dir, "model.json"), model.ToJsonString());
        File.WriteAllText(Path.Combine(dir, "train.json"), """
            {"name": "cli", "model": "model.json", "data": {"cd": {"path": "data"}}, "steps": 6, "batch_size": 2, "seq_len": 32,
             "eval_every": 3, "checkpoint_every": 3, "plot_every": 3, "eval_batches": 1}
            """);
        var run = Path.Combine(dir, "run");
        var first = Run("train", "--config", Path.Combine(dir, "train.json"), "--out", run, "--stop-after", "3");
        Assert.True(first.Code == 0, first.Stderr);
        var resumed = Run("train", "--config", Path.Combine(dir, "train.json"), "--out", run, "--resume", "--set", "eval_batches=2");
        Assert.True(resumed.Code == 0, resumed.Stderr);
        Assert.True(File.Exists(Path.Combine(run, "plots", "loss.png")));

        var eval = Run("eval", Path.Combine(run, "checkpoints", "step-000006"), "--data", data, "--seq-len", "32", "--batches", "2");
        Assert.True(eval.Code == 0, eval.Stderr);
        var result = JsonDocument.Parse(eval.Stdout).RootElement;
        Assert.Equal(Math.Exp(result.GetProperty("loss").GetDouble()), result.GetProperty("perplexity").GetDouble(), 6);

        AssertUserError(Run("train", "--config", Path.Combine(dir, "missing.json")), "config not found");
        AssertUserError(Run("train", "--config", Path.Combine(dir, "train.json"), "--out", Path.Combine(dir, "fresh"), "--resume"), "no checkpoint");
        AssertUserError(Run("eval", run, "--data", data), "config not found");
        AssertUserError(Run("prepare", "--out", data), "give input FILES or --builtin TASK");
    }

    [Fact]
    public void ReproduceWritesItsReportFromAnyDirectory()
    {
        var dir = TestPaths.TempDir();
        var result = RunIn(dir, "reproduce", "--quick", "--n-test", "20", "--sft-steps", "10", "--grpo-steps", "2");
        Assert.True(result.Code == 0, result.Stderr);
        var run = Path.Combine(dir, "runs", "reproduce");
        var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "result.json"))).RootElement;
        foreach (var key in new[] { "pass1_before", "pass1_after", "ci95_before", "ci95_after", "n_test", "seconds" })
            Assert.True(json.TryGetProperty(key, out _), key);
        Assert.Equal(20, json.GetProperty("n_test").GetInt32());
        var report = File.ReadAllText(Path.Combine(run, "report.md"));
        Assert.Contains("| before RL (SFT) |", report);
        Assert.True(File.Exists(Path.Combine(run, "grpo", "plots", "reward.png")));
        Assert.True(File.Exists(Path.Combine(run, "manifest.json")));
    }

    [Fact]
    public void EveryCommandHasHelp()
    {
        foreach (var command in new[] { "init", "inspect", "logits", "tokenize", "chat-template", "generate", "chat", "serve", "quantize", "prepare", "train", "eval", "grpo", "eval-task", "reproduce", "bench" })
        {
            var result = Run(command, "--help");
            Assert.Equal(0, result.Code);
            Assert.Contains("Usage", result.Stdout);
        }
    }
}
