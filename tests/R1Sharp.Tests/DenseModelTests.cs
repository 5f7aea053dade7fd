using System.Text.Json.Nodes;
using R1Sharp.Checkpoints;
using R1Sharp.Generation;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Tests;

/// Qwen2, Qwen3 and Llama against logits computed from transformers' definitions in float64 numpy
/// (Fixtures/dense/make-reference.py): GQA, q/k/v biases, tied embeddings, llama3 and linear rope scaling,
/// an explicit head_dim, attention and MLP biases, Qwen3's per-head q/k RMSNorm.
public class DenseModelTests
{
    public static IEnumerable<object[]> Fixtures => [["qwen2"], ["llama3"], ["llama-linear"], ["qwen2-swa"], ["llama-local-global"], ["qwen3"], ["qwen3-bias"]];

    private static (CausalLM Model, JsonObject Reference) Load(string name)
    {
        var dir = Path.Combine(TestPaths.Fixtures, "dense", name);
        return (ModelIO.Load(dir), JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "reference.json")))!.AsObject());
    }

    private static long[] Ids(JsonNode node) => node.AsArray().Select(x => (long)x!).ToArray();

    [Theory, MemberData(nameof(Fixtures))]
    public void LogitsEqualTheReference(string name)
    {
        var (model, reference) = Load(name);
        using var _ = model;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = Ids(reference["ids"]!);
        var expected = tensor(reference["logits"]!.AsArray().SelectMany(row => row!.AsArray().Select(x => (double)x!)).ToArray()).view(ids.Length, -1);
        var logits = model.Forward(tensor(ids).unsqueeze(0))[0];
        Numerics.AssertClose(expected, logits, 2e-4, $"{name} logits");
    }

    [Theory, MemberData(nameof(Fixtures))]
    public void GreedyContinuationEqualsTheReference(string name)
    {
        var (model, reference) = Load(name);
        using var _ = model;
        var generated = TokenGenerator.Generate(model, Ids(reference["greedy_prompt"]!), SamplingOptions.GreedyDecoding(10)).ToArray();
        Assert.Equal(Ids(reference["greedy_continuation"]!), generated);
    }

    [Theory, MemberData(nameof(Fixtures))]
    public void IncrementalDecodingEqualsTheFullForward(string name)
    {
        var (model, reference) = Load(name);
        using var _ = model;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = tensor(Ids(reference["ids"]!)).unsqueeze(0);
        var full = model.Forward(ids);
        foreach (var chunk in new[] { 1, 3, 7 })
        {
            using var cache = model.CreateCache(1, 32);
            var pieces = new List<Tensor>();
            for (long start = 0; start < ids.shape[1]; start += chunk)
                pieces.Add(model.Forward(ids.narrow(1, start, Math.Min(chunk, ids.shape[1] - start)), cache));
            Numerics.AssertClose(full, cat(pieces, 1), 1e-4, $"{name} chunks of {chunk}");
        }
    }

    [Theory, MemberData(nameof(Fixtures))]
    public void PaddedBatchRowsEqualEachRowAlone(string name)
    {
        var (model, reference) = Load(name);
        using var _ = model;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = Ids(reference["ids"]!);
        long[] lengths = [ids.Length, 9];
        var batch = tensor(ids.Concat(ids.Take(9)).Concat(Enumerable.Repeat(0L, ids.Length - 9)).ToArray()).view(2, -1);
        var lastOnly = model.Forward(batch, null, lengths, lastOnly: true);
        var full = model.Forward(batch);
        Numerics.AssertClose(full[0, ^1], lastOnly[0, 0], 1e-5, "last position of the full row");
        Numerics.AssertClose(full[1, 8], lastOnly[1, 0], 1e-5, "last valid position of the padded row");
        using var cache = model.CreateCache(2, 40);
        var prefill = model.Forward(batch, cache, lengths);
        var next = model.Forward(tensor(new long[] { 5, 6 }).view(2, 1), cache);
        foreach (var row in new[] { 0, 1 })
        {
            using var alone = model.CreateCache(1, 40);
            var rowIds = tensor(ids.Take((int)lengths[row]).ToArray()).unsqueeze(0);
            var aloneLogits = model.Forward(rowIds, alone);
            Numerics.AssertClose(aloneLogits[0], prefill[row].narrow(0, 0, lengths[row]), 1e-4, $"row {row} prefill");
            Numerics.AssertClose(model.Forward(tensor(new long[] { 5 + row }).view(1, 1), alone)[0], next[row], 1e-4, $"row {row} decode");
        }
    }

    [Fact]
    public void RopeScalingIsValidated()
    {
        var json = File.ReadAllText(Path.Combine(TestPaths.Fixtures, "dense", "llama3", "config.json"));
        var bad = json.Replace("\"llama3\"", "\"dynamic\"");
        Assert.Contains("rope_scaling type 'dynamic' is not supported", Assert.Throws<R1SharpException>(() => ModelConfig.Parse(bad)).Message);
        var gqa = json.Replace("\"num_key_value_heads\": 1", "\"num_key_value_heads\": 3");
        Assert.Contains("multiple of num_key_value_heads", Assert.Throws<R1SharpException>(() => ModelConfig.Parse(gqa)).Message);
    }
}
