using System.Text.Json;
using R1Sharp.Checkpoints;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Tests;

/// Every case in ../shared/conformance: logits, hidden states, routing and greedy tokens of the
/// official DeepSeek-V3 inference code, within 1e-4 in float32.
public class ConformanceTests
{
    private const double Tolerance = 1e-4;

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        if (Directory.Exists(TestPaths.Conformance))
            foreach (var dir in Directory.GetDirectories(TestPaths.Conformance).Order()) data.Add(Path.GetFileName(dir));
        return data;
    }

    [Fact]
    public void ConformanceCasesArePresent() => Assert.NotEmpty(Cases());

    [Theory, MemberData(nameof(Cases))]
    public void FullForwardMatchesReference(string name)
    {
        var (model, expected) = Open(name);
        using var _ = model;
        foreach (var mode in new[] { AttentionMode.Absorbed, AttentionMode.Naive })
        {
            model.AttentionMode = mode;
            foreach (var seq in expected.GetProperty("sequences").EnumerateArray())
            {
                using var scope = NewDisposeScope();
                using var trace = new ForwardTrace();
                var ids = Ids(seq.GetProperty("input_ids"));
                var logits = model.Forward(ids.unsqueeze(0), trace: trace)[0];
                Numerics.AssertClose(Matrix(seq.GetProperty("logits_full_forward")), logits, Tolerance, $"{name} {mode} full-forward logits");
                Numerics.AssertClose(Matrix(seq.GetProperty("logits")), logits, Tolerance, $"{name} {mode} logits");
                CheckHidden(name, seq.GetProperty("hidden_states"), trace);
                CheckRouting(name, seq.GetProperty("routing"), trace);
            }
        }
    }

    [Theory, MemberData(nameof(Cases))]
    public void IncrementalDecodeAndGreedyMatchReference(string name)
    {
        var (model, expected) = Open(name);
        using var _ = model;
        foreach (var seq in expected.GetProperty("sequences").EnumerateArray())
        {
            using var scope = NewDisposeScope();
            var ids = Ids(seq.GetProperty("input_ids"));
            var reference = Matrix(seq.GetProperty("logits"));
            using var cache = model.CreateCache(1, (int)ids.shape[0] + 16);
            for (int t = 0; t < ids.shape[0]; t++)
            {
                var step = model.Forward(ids.narrow(0, t, 1).unsqueeze(0), cache)[0, 0];
                Numerics.AssertClose(reference[t], step, Tolerance, $"{name} incremental logits at {t}");
            }

            var greedy = seq.GetProperty("greedy_continuation").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var stepLogits = Matrix(seq.GetProperty("greedy_step_logits"));
            using var greedyCache = model.CreateCache(1, (int)ids.shape[0] + greedy.Length);
            var next = model.Forward(ids.unsqueeze(0), greedyCache)[0, -1];
            for (int i = 0; i < greedy.Length; i++)
            {
                Numerics.AssertClose(stepLogits[i], next, Tolerance, $"{name} greedy step {i} logits");
                var token = next.argmax().item<long>();
                Assert.Equal(greedy[i], token);
                if (i + 1 < greedy.Length) next = model.Forward(tensor(new[] { token }).view(1, 1), greedyCache)[0, 0];
            }
        }
    }

    [Theory, MemberData(nameof(Cases))]
    public void RopeFrequenciesAndSoftmaxScaleMatchReference(string name)
    {
        var (model, expected) = Open(name);
        using var _ = model;
        var rope = expected.GetProperty("rope");
        var freqs = rope.GetProperty("inv_freq").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.Equal(freqs.Length, model.InverseFrequencies.Length);
        for (int i = 0; i < freqs.Length; i++) Assert.Equal(freqs[i], model.InverseFrequencies[i], 1e-6 * Math.Max(1, freqs[i]));
        Assert.Equal(rope.GetProperty("softmax_scale").GetDouble(), model.SoftmaxScale, 1e-6);
    }

    private static void CheckHidden(string name, JsonElement hidden, ForwardTrace trace)
    {
        Numerics.AssertClose(Matrix(hidden.GetProperty("embedding")), trace.Hidden[0][0], Tolerance, $"{name} embedding");
        var blocks = hidden.GetProperty("after_block").EnumerateArray().ToList();
        for (int i = 0; i < blocks.Count; i++)
            Numerics.AssertClose(Matrix(blocks[i]), trace.Hidden[i + 1][0], Tolerance, $"{name} after block {i}");
        Numerics.AssertClose(Matrix(hidden.GetProperty("final_norm")), trace.Hidden[^1][0], Tolerance, $"{name} final norm");
    }

    private static void CheckRouting(string name, JsonElement routing, ForwardTrace trace)
    {
        var layers = routing.EnumerateArray().ToList();
        Assert.Equal(layers.Count, trace.Routing.Count);
        foreach (var (layer, (traceLayer, experts, weights)) in layers.Zip(trace.Routing))
        {
            Assert.Equal(layer.GetProperty("layer").GetInt32(), traceLayer);
            var expectedExperts = layer.GetProperty("experts").EnumerateArray().Select(r => r.EnumerateArray().Select(e => e.GetInt64()).ToArray()).ToArray();
            var expectedWeights = layer.GetProperty("weights").EnumerateArray().Select(r => r.EnumerateArray().Select(e => e.GetDouble()).ToArray()).ToArray();
            var actualExperts = experts.data<long>().ToArray();
            var actualWeights = weights.to_type(ScalarType.Float64).data<double>().ToArray();
            int k = expectedExperts[0].Length;
            for (int t = 0; t < expectedExperts.Length; t++)
            {
                var actual = Enumerable.Range(0, k).ToDictionary(j => actualExperts[t * k + j], j => actualWeights[t * k + j]);
                Assert.True(expectedExperts[t].Order().SequenceEqual(actual.Keys.Order()),
                    $"{name} layer {traceLayer} token {t}: experts {string.Join(",", actual.Keys)} != {string.Join(",", expectedExperts[t])}");
                for (int j = 0; j < k; j++)
                    Assert.True(Math.Abs(actual[expectedExperts[t][j]] - expectedWeights[t][j]) <= Tolerance, $"{name} layer {traceLayer} token {t} routing weight");
            }
        }
    }

    internal static (DeepSeekForCausalLM Model, JsonElement Expected) Open(string name)
    {
        var dir = Path.Combine(TestPaths.Conformance, name);
        var model = (DeepSeekForCausalLM)ModelIO.Load(dir);
        var expected = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "expected.json"))).RootElement;
        return (model, expected);
    }

    internal static Tensor Ids(JsonElement array) => tensor(array.EnumerateArray().Select(e => e.GetInt64()).ToArray());

    internal static Tensor Matrix(JsonElement rows) =>
        stack(rows.EnumerateArray().Select(r => tensor(r.EnumerateArray().Select(e => (float)e.GetDouble()).ToArray())).ToArray());
}
