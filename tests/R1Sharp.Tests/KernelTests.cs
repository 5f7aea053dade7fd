using R1Sharp.Kernels;
using R1Sharp.Models;
using R1Sharp.Quantization;
using static TorchSharp.torch;

namespace R1Sharp.Tests;

/// The few-row kernels against libtorch's matmul on the dequantized weights (in float64): every stored
/// format, odd sizes, partial FP8 blocks and INT4 groups, 1 to 8 rows, bias, and the portable path.
public class KernelTests
{
    public static TheoryData<WeightFormat> Formats => new() { WeightFormat.F32, WeightFormat.Bf16, WeightFormat.Int8, WeightFormat.Fp8, WeightFormat.Int4 };

    [Theory, MemberData(nameof(Formats))]
    public unsafe void KernelsEqualLibtorchOnTheDequantizedWeights(WeightFormat format)
    {
        using var noGrad = no_grad();
        var generator = new Generator(5);
        foreach (var (outFeatures, inFeatures) in new[] { (1, 7), (37, 19), (131, 200), (300, 333), (256, 128), (64, 1000) })
        foreach (var rows in new[] { 1, 2, 3, 8 })
        foreach (var portable in new[] { false, true })
        {
            using var scope = NewDisposeScope();
            var dense = randn([outFeatures, inFeatures], generator: generator) * 0.1;
            var x = randn([rows, inFeatures], generator: generator);
            var bias = randn([outFeatures], generator: generator);
            Tensor weight;
            WeightView view;
            using var layer = format == WeightFormat.F32 ? null : new QuantizedLinear(inFeatures, outFeatures, format, hasBias: true);
            if (layer is null)
            {
                weight = dense;
                view = KernelLinear.View(dense);
            }
            else
            {
                layer.Assign(dense);
                weight = layer.Dequantized();
                view = layer.View();
            }
            var y = empty(rows, outFeatures);
            FewRowMatmul.Run(view, (float*)TensorMemory.Pointer(x), rows, (float*)TensorMemory.Pointer(bias), (float*)TensorMemory.Pointer(y), portable);
            var reference = nn.functional.linear(x.to_type(ScalarType.Float64), weight.to_type(ScalarType.Float64), bias.to_type(ScalarType.Float64));
            var error = (y.to_type(ScalarType.Float64) - reference).abs().max().item<double>();
            var size = reference.abs().max().item<double>();
            Assert.True(error <= 1e-5 * Math.Max(1, size) * Math.Sqrt(inFeatures), $"{format} {outFeatures}x{inFeatures} rows {rows} portable {portable}: max |Δ| {error:E2} (values up to {size:F2})");
        }
    }

    [Theory, MemberData(nameof(Formats))]
    public void QuantizedLayersUseTheKernelForDecodingAndLibtorchForPrefill(WeightFormat format)
    {
        using var noGrad = no_grad();
        var generator = new Generator(9);
        using var layer = format == WeightFormat.F32 ? null : new QuantizedLinear(200, 131, format);
        using var f32 = new DenseLinear(200, 131);
        var dense = randn([131, 200], generator: generator) * 0.1;
        layer?.Assign(dense);
        using (no_grad()) f32.Weight.copy_(dense);
        nn.Module<Tensor, Tensor> module = layer is null ? f32 : layer;
        var weight = layer?.Dequantized() ?? dense;
        foreach (var rows in new[] { 1, 5, 8, 9, 40 })   // kernel up to 8 rows, libtorch beyond
        {
            var x = randn([1, rows, 200], generator: generator);
            var expected = matmul(x.to_type(ScalarType.Float64), weight.to_type(ScalarType.Float64).t());
            Numerics.AssertClose(expected, module.forward(x).to_type(ScalarType.Float64), 1e-4, $"{format} rows {rows}");
        }
    }

    /// With gradients on, the layers take libtorch's path; without, the fused kernels': the same outputs.
    [Fact]
    public void FusedFeedForwardAndMoeDispatchEqualLibtorch()
    {
        using var model = TinyModels.Model();
        var moe = model.Layers.First(l => l.Moe is not null).Moe!;
        var generator = new Generator(11);
        foreach (var tokens in new[] { 1, 2, 5, 8 })
        {
            var x = randn([1, tokens, model.Config.HiddenSize], generator: generator);
            Tensor libtorch, fused, expert, expertLibtorch;
            using (enable_grad())
            {
                libtorch = moe.Forward(x).detach();
                expertLibtorch = moe.Experts[3].forward(x).detach();
            }
            using (no_grad())
            {
                fused = moe.Forward(x);
                expert = moe.Experts[3].forward(x);
            }
            Numerics.AssertClose(libtorch, fused, 1e-5, $"MoE, {tokens} tokens");
            Numerics.AssertClose(expertLibtorch, expert, 1e-5, $"SwiGLU, {tokens} tokens");
        }
    }

    [Fact]
    public void Int4QuantizationRoundTripsWithinHalfAStep()
    {
        var generator = new Generator(3);
        var dense = randn([50, 77], generator: generator);
        var (packed, scale) = Int4Group.Quantize(dense);
        Assert.Equal([50L, 3 * 16], packed.shape);
        Assert.Equal([50L, 3], scale.shape);
        Assert.Equal(ScalarType.BFloat16, scale.dtype);
        var back = Int4Group.Dequantize(packed, scale, 77);
        var step = scale.to_type(ScalarType.Float32).repeat_interleave(32, 1).narrow(1, 0, 77);
        Assert.True(((back - dense).abs() <= step * 0.5 + 1e-3).all().item<bool>());
    }
}
