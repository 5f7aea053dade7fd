using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using R1Sharp.Checkpoints;
using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Templates;
using R1Sharp.Tokenization;

namespace R1Sharp.Tests;

/// Model folders are hostile input: shard paths that leave the folder, files that are not files,
/// configs that disagree with their weights or would not fit in memory, tokenizer ids from nowhere.
/// Each is one R1SharpException, before anything is opened or allocated that should not be.
public class HostileInputTests
{
    /// Runs `load` on another thread so that a hang fails the test instead of stalling the suite.
    private static R1SharpException Refused(Action load)
    {
        var task = Task.Run(load);
        Assert.True(((IAsyncResult)task).AsyncWaitHandle.WaitOne(TimeSpan.FromSeconds(60)), "the load hung");
        return Assert.IsType<R1SharpException>(task.Exception?.InnerException);
    }

    private static void MakeFifo(string path)
    {
        using var mkfifo = Process.Start("mkfifo", [path])!;
        mkfifo.WaitForExit();
        Assert.Equal(0, mkfifo.ExitCode);
    }

    [Fact]
    public void ShardsMustBeFileNamesInTheFolder()
    {
        var dir = TinyChatModels.Create("llama");
        File.Move(Path.Combine(dir, "model.safetensors"), Path.Combine(dir, "model-00001-of-00001.safetensors"));
        foreach (var shard in new[] { "/etc/hostname", "../model-00001-of-00001.safetensors", "sub/model.safetensors", "..", "model.bin" })
        {
            File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"),
                new JsonObject { ["weight_map"] = new JsonObject { ["model.norm.weight"] = shard } }.ToJsonString());
            var error = Refused(() => ModelIO.Load(dir).Dispose());
            Assert.Contains($"shard '{shard}' is not a .safetensors file name in the model folder", error.Message);
        }
    }

    [Fact]
    public void FilesThatAreNotRegularFilesAreRefusedWithoutBeingOpened()
    {
        foreach (var file in new[] { "model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json" })
        {
            var dir = TinyChatModels.Create("llama");
            File.Delete(Path.Combine(dir, file));
            MakeFifo(Path.Combine(dir, file));
            var error = Refused(() => TextGenerator.Load(dir).Dispose());
            Assert.Contains("not a regular file", error.Message);
        }
        // Hugging Face's cache links each file to a blob: symlinks to regular files load.
        var linked = TinyChatModels.Create("llama");
        var blob = Path.Combine(TestPaths.TempDir(), "blob");
        File.Move(Path.Combine(linked, "model.safetensors"), blob);
        File.CreateSymbolicLink(Path.Combine(linked, "model.safetensors"), blob);
        TextGenerator.Load(linked).Dispose();
    }

    private static string WithConfig(Action<JsonObject> change)
    {
        var dir = TinyChatModels.Create("llama");
        var path = Path.Combine(dir, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        change(config);
        File.WriteAllText(path, config.ToJsonString());
        return dir;
    }

    [Fact]
    public void AConfigThatDisagreesWithItsWeightsIsRefusedBeforeAllocating()
    {
        var wideDir = WithConfig(c => { c["hidden_size"] = 4096; c["intermediate_size"] = 11008; });
        var wide = Refused(() => ModelIO.Load(wideDir).Dispose());
        Assert.Contains("mis-shaped", wide.Message);
        Assert.Contains("model.embed_tokens.weight", wide.Message);
        // In a process of its own (GNU time reports its peak): allocating that model first would take 3 GB.
        var start = new ProcessStartInfo("/usr/bin/time", ["-f", "peak-kb %M", "dotnet", Path.Combine(AppContext.BaseDirectory, "r1sharp.dll"), "logits", wideDir, "--ids", "1"])
            { RedirectStandardError = true, RedirectStandardOutput = true };
        using (var process = Process.Start(start)!)
        {
            var stderr = process.StandardError.ReadToEnd();
            process.WaitForExit();
            var peakKb = long.Parse(System.Text.RegularExpressions.Regex.Match(stderr, @"peak-kb (\d+)").Groups[1].Value);
            Assert.Contains("checkpoint does not match the model", stderr);
            Assert.True(peakKb < 600_000, $"the refused model took {peakKb / 1024} MiB at peak");
        }
        var deep = Refused(() => ModelIO.Load(WithConfig(c => c["num_hidden_layers"] = 9000)).Dispose());
        Assert.Contains("describes 9000 layers", deep.Message);
        var absurd = Refused(() => ModelIO.Load(WithConfig(c => c["num_hidden_layers"] = 1_000_000)).Dispose());
        Assert.Contains("num_hidden_layers must be between 1 and", absurd.Message);
        var huge = Refused(() => ModelIO.Load(WithConfig(c => { c["hidden_size"] = 1_000_000_000; c["intermediate_size"] = 1_000_000_000; })).Dispose());
        Assert.Contains("checkpoint does not match the model", huge.Message);
    }

    [Fact]
    public void WhatCouldNeverFitInMemoryIsRefusedWithItsSize()
    {
        var config = ModelConfig.Parse(TinyModels.ConfigJson(c => { c["vocab_size"] = 1_000_000; c["hidden_size"] = 50_000; }).ToJsonString());
        var model = Assert.Throws<R1SharpException>(() => ModelIO.Create(config).Dispose());
        Assert.Contains("needs", model.Message);
        Assert.Contains("GiB but this machine has", model.Message);

        using var tiny = TinyModels.Model(c => c["max_position_embeddings"] = 1 << 20);
        var cache = Assert.Throws<R1SharpException>(() => tiny.CreateCache(100_000, 1 << 20).Dispose());
        Assert.Contains("a KV cache of 100000 rows", cache.Message);
    }

    [Fact]
    public void HeaderShapesCannotWrapAround()
    {
        var path = Path.Combine(TestPaths.TempDir(), "model.safetensors");
        var header = Encoding.UTF8.GetBytes("""{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]},"z":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904,0],"data_offsets":[0,0]}}""");
        File.WriteAllBytes(path, [.. BitConverter.GetBytes((long)header.Length), .. header]);
        var error = Assert.Throws<R1SharpException>(() => SafeTensorsFile.Open(path).Dispose());
        Assert.Contains("needs 73786976294838206464", error.Message);
    }

    private static string TokenizerWith(Action<JsonObject> change)
    {
        var dir = TestPaths.TempDir();
        ByteTokenizer.Instance.Save(dir);
        var path = Path.Combine(dir, "tokenizer.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        change(json);
        File.WriteAllText(path, json.ToJsonString());
        return dir;
    }

    [Fact]
    public void TokenIdsFromNowhereAreRefused()
    {
        var negative = Assert.Throws<R1SharpException>(() => PretrainedTokenizer.Load(TokenizerWith(j => j["added_tokens"]![0]!["id"] = -5)));
        Assert.Contains("token id -5 is negative", negative.Message);
        var far = Assert.Throws<R1SharpException>(() => PretrainedTokenizer.Load(TokenizerWith(j => j["added_tokens"]![0]!["id"] = 2_000_000_000)));
        Assert.Contains("far beyond", far.Message);
        var vocab = Assert.Throws<R1SharpException>(() => PretrainedTokenizer.Load(TokenizerWith(j => j["model"]!["vocab"]!["A"] = int.MaxValue)));
        Assert.Contains("far beyond", vocab.Message);
    }

    [Fact]
    public void CatastrophicBacktrackingInASplitPatternTimesOut()
    {
        var dir = TokenizerWith(j => j["pre_tokenizer"] = new JsonObject
        {
            ["type"] = "Sequence",
            ["pretokenizers"] = new JsonArray(
                new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = "(a+)+$" }, ["behavior"] = "Isolated" },
                new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = false }),
        });
        var tokenizer = PretrainedTokenizer.Load(dir);
        var error = Assert.Throws<R1SharpException>(() => tokenizer.Encode(new string('a', 40) + "!"));
        Assert.Contains("catastrophic backtracking", error.Message);
    }
}
