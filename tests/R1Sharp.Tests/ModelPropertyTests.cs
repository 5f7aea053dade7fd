using System.Text.Json.Nodes;
using R1Sharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Tests;

public class ModelPropertyTests
{
    private const double Tolerance = 2e-5;

    private static Tensor RandomIds(long batch, long length, long seed = 1) =>
        randint(2, 64, [batch, length], generator: new Generator((ulong)seed), dtype: ScalarType.Int64);

    public static TheoryData<string> Variants() => new() { "v3", "v2" };

    private static DeepSeekForCausalLM Variant(string name) => name == "v3"
        ? TinyModels.Model()
        : TinyModels.Model(c =>
        {
            c["model_type"] = "deepseek_v2"; c["q_lora_rank"] = null; c["topk_method"] = "greedy"; c["scoring_func"] = "softmax";
            c["n_group"] = 1; c["topk_group"] = 1; c["norm_topk_prob"] = false; c["routed_scaling_factor"] = 1.0; c["n_shared_experts"] = 2;
        });

    [Theory, MemberData(nameof(Variants))]
    public void IncrementalDecodeMatchesFullForward(string variant)
    {
        using var model = Variant(variant);
        using var _ = no_grad();
        var ids = RandomIds(1, 12);
        var full = model.Forward(ids);
        foreach (var prefill in new[] { 1, 3, 11 })
        foreach (var mode in new[] { AttentionMode.Absorbed, AttentionMode.Naive })
        {
            model.AttentionMode = mode;
            using var cache = model.CreateCache(1, 16);
            var parts = new List<Tensor> { model.Forward(ids.narrow(1, 0, prefill), cache) };
            for (int t = prefill; t < 12; t++) parts.Add(model.Forward(ids.narrow(1, t, 1), cache));
            Numerics.AssertClose(full, cat(parts, 1), Tolerance, $"{variant} prefill {prefill} {mode}");
            Assert.Equal(12, cache.Lengths[0]);
        }
    }

    [Fact]
    public void ChunkedPrefillMatchesSinglePrefill()
    {
        using var model = TinyModels.Model();
        using var _ = no_grad();
        var ids = RandomIds(1, 10);
        using var one = model.CreateCache(1, 12);
        var single = model.Forward(ids, one);
        using var chunked = model.CreateCache(1, 12);
        var parts = cat([model.Forward(ids.narrow(1, 0, 4), chunked), model.Forward(ids.narrow(1, 4, 6), chunked)], 1);
        Numerics.AssertClose(single, parts, Tolerance, "chunked prefill");
    }

    [Fact]
    public void BatchRowMatchesTheSameSequenceAlone()
    {
        using var model = TinyModels.Model();
        using var _ = no_grad();
        long[] lengths = [9, 4, 6];
        var ids = RandomIds(3, 9, seed: 3);
        using var cache = model.CreateCache(3, 16);
        var batched = model.Forward(ids, cache, lengths);                      // right-padded rows
        var next = RandomIds(3, 1, seed: 4);
        var batchedStep = model.Forward(next, cache);                          // each row continues at its own length
        for (int row = 0; row < 3; row++)
        {
            var alone = ids[row].narrow(0, 0, lengths[row]).unsqueeze(0);
            using var own = model.CreateCache(1, 16);
            var expected = model.Forward(alone, own);
            Numerics.AssertClose(expected[0], batched[row].narrow(0, 0, lengths[row]), Tolerance, $"row {row} prefill");
            Numerics.AssertClose(model.Forward(next[row].unsqueeze(0), own)[0], batchedStep[row], Tolerance, $"row {row} decode");
        }
        Assert.Equal(new long[] { 10, 5, 7 }, cache.Lengths);
    }

    [Fact]
    public void AbsorbedAndNaiveAttentionAgree()
    {
        using var model = TinyModels.Model();
        using var _ = no_grad();
        var ids = RandomIds(2, 10);
        model.AttentionMode = AttentionMode.Absorbed;
        var absorbed = model.Forward(ids);
        model.AttentionMode = AttentionMode.Naive;
        Numerics.AssertClose(absorbed, model.Forward(ids), Tolerance, "absorbed vs naive");
    }

    [Fact]
    public void GroupedExpertDispatchMatchesPerTokenLoop()
    {
        using var model = TinyModels.Model();
        using var _ = no_grad();
        var moe = model.Layers[1].Moe!;
        foreach (var shape in new long[][] { [2, 7, 32], [1, 5, 32], [2, 4, 32], [1, 1, 32] })   // libtorch's grouped path, then the kernels' (≤ 8 tokens)
        {
            var x = randn(shape, generator: new Generator(5));
            Numerics.AssertClose(moe.ForwardPerToken(x), moe.Forward(x), 1e-5, $"dispatch vs per-token MoE, [{string.Join(", ", shape)}]");
        }
    }

    [Fact]
    public void RoutingKeepsToTheBestGroupsAndWeighsWithUnbiasedScores()
    {
        using var model = TinyModels.Model();
        using var _ = no_grad();
        var gate = model.Layers[1].Moe!.Gate;
        var x = randn([40, 32], generator: new Generator(9));
        var (weights, experts, _, _) = gate.Route(x);

        var scores = nn.functional.linear(x, gate.Weight).sigmoid();
        var biased = (scores + gate.CorrectionBias!).view(40, 4, 2);
        var groupScores = biased.topk(2, dim: -1).values.sum(-1);           // [40, 4]
        var bestGroups = groupScores.topk(2, dim: -1).indexes;
        var chosenGroups = experts.div(2, rounding_mode: RoundingMode.floor);
        for (int t = 0; t < 40; t++)
        {
            var allowed = bestGroups[t].data<long>().ToHashSet();
            Assert.All(chosenGroups[t].data<long>().ToArray(), g => Assert.Contains(g, allowed));
        }
        var unbiased = scores.gather(1, experts);
        Numerics.AssertClose(unbiased / unbiased.sum(-1, keepdim: true) * 2.5, weights, 1e-6, "weights from unbiased scores");
        Numerics.AssertClose(full(40, 2.5f), weights.sum(-1), 1e-5, "weights sum to routed_scaling_factor");
    }

    /// Decoding routes a few tokens over C# arrays; it must choose the same experts with the same weights as
    /// libtorch's path (taken here for 40 rows): sigmoid + correction bias + groups, and softmax without either.
    [Theory]
    [InlineData("sigmoid")]
    [InlineData("softmax")]
    public void FewTokenRoutingEqualsLibtorchRouting(string scoring)
    {
        using var model = scoring == "sigmoid" ? TinyModels.Model()
            : TinyModels.Model(c => { c["scoring_func"] = "softmax"; c["topk_method"] = "greedy"; c["n_group"] = 1; c["topk_group"] = 1; c["norm_topk_prob"] = false; });
        using var _ = no_grad();
        var gate = model.Layers[1].Moe!.Gate;
        if (gate.CorrectionBias is { } bias) bias.copy_(randn(bias.shape, generator: new Generator(3)) * 0.1);
        var x = randn([40, 32], generator: new Generator(9));
        var all = gate.Route(x);
        foreach (var (start, rows) in new[] { (0, 1), (1, 3), (8, 8), (39, 1) })
        {
            var few = gate.Route(x.narrow(0, start, rows));
            Assert.Equal(all.Experts.narrow(0, start, rows).data<long>().ToArray(), few.Experts.data<long>().ToArray());
            Numerics.AssertClose(all.Weights.narrow(0, start, rows), few.Weights, 1e-6, $"{scoring} weights rows {start}+{rows}");
            Numerics.AssertClose(all.Scores.narrow(0, start, rows), few.Scores, 1e-6, $"{scoring} scores");
            Numerics.AssertClose(all.Logits.narrow(0, start, rows), few.Logits, 1e-5, $"{scoring} logits");
        }
    }

    /// Without a gradient, attention rotates the projection outputs in place; the values must be exactly
    /// those of the tensor path, for both pairings, at an offset inside each head (MLA's rope slice).
    [Fact]
    public void RopeInPlaceGivesTheTensorPathsValues()
    {
        using var _ = no_grad();
        var (table, sinTable) = Rope.Tables(Rope.InverseFrequencies(20, 10000), 64);
        var positions = tensor(new long[] { 3, 17, 40, 63, 0, 9 }).view(2, 3);
        var cos = table.index_select(0, positions.flatten()).view(2, 3, 10);
        var sin = sinTable.index_select(0, positions.flatten()).view(2, 3, 10);
        var x = randn([2, 3, 4, 28], generator: new Generator(4));                 // 4 heads of 8 + a rope slice of 20

        var interleaved = x.clone();
        R1Sharp.Kernels.RopeInPlace.Interleaved(interleaved, 4, 28, 8, 20, cos, sin);
        var expected = cat([x.narrow(-1, 0, 8), Rope.ApplyInterleaved(x.narrow(-1, 8, 20), cos.unsqueeze(2), sin.unsqueeze(2))], -1);
        Assert.True(expected.eq(interleaved).all().item<bool>(), "interleaved in place vs tensor path");

        var half = x.narrow(-1, 0, 20).contiguous();
        var rotated = half.clone();
        R1Sharp.Kernels.RopeInPlace.RotateHalf(rotated, 4, 20, cos, sin);
        Assert.True(Rope.ApplyRotateHalf(half, cos.unsqueeze(2), sin.unsqueeze(2)).eq(rotated).all().item<bool>(), "rotate-half in place vs tensor path");
    }

    [Fact]
    public void RopePreservesNormsAndDependsOnlyOnRelativePosition()
    {
        var (cos, sin) = Rope.Tables(Rope.InverseFrequencies(8, 10000), 64);
        var q = randn([8], generator: new Generator(1));
        var k = randn([8], generator: new Generator(2));
        Tensor At(Tensor v, int p) => Rope.ApplyInterleaved(v, cos[p], sin[p]);
        Assert.Equal(q.norm().item<float>(), At(q, 17).norm().item<float>(), 4);
        var d1 = At(q, 10).dot(At(k, 3)).item<float>();
        var d2 = At(q, 40).dot(At(k, 33)).item<float>();
        Assert.Equal(d1, d2, 4);
        var expected = new[] { 0f, 0, 0, 0, 0, 0, 0, 0 };
        var unit = tensor(new float[] { 1, 0, 0, 0, 0, 0, 0, 0 });
        var rotated = At(unit, 1).data<float>().ToArray();   // first pair rotated by angle 1 (inv_freq[0] = 1)
        Assert.Equal(MathF.Cos(1), rotated[0], 5);
        Assert.Equal(MathF.Sin(1), rotated[1], 5);
    }

    [Fact]
    public void YarnWithFactorOneEqualsPlainRope()
    {
        var plain = Rope.InverseFrequencies(16, 10000);
        var yarn = Rope.YarnInverseFrequencies(16, 10000, 1.0, 64, 32, 1);
        Assert.Equal(plain, yarn);
        Assert.Equal(1.0, Rope.YarnMscale(1.0, 1.0));
    }

    [Fact]
    public void RmsNormFollowsItsFormula()
    {
        using var norm = new RmsNorm(6, 1e-6);
        using (no_grad()) norm.parameters().First().copy_(tensor(new float[] { 1, 2, 3, 4, 5, 6 }));
        var x = randn([3, 6], generator: new Generator(4));
        var expected = x / (x.pow(2).mean([-1L], keepdim: true) + 1e-6).sqrt() * tensor(new float[] { 1, 2, 3, 4, 5, 6 });
        Numerics.AssertClose(expected, norm.forward(x), 1e-6, "rmsnorm");
    }

    [Fact]
    public void DecodeStepsLeaveTheLiveTensorCountFlat()
    {
        using var model = TinyModels.Model();
        using var _ = no_grad();
        using var cache = model.CreateCache(1, 100);
        var token = tensor(new long[] { 5 }).view(1, 1);
        void Step() { using var scope = NewDisposeScope(); model.Forward(token, cache); }
        for (int i = 0; i < 5; i++) Step();
        var before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 50; i++) Step();
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }
}
