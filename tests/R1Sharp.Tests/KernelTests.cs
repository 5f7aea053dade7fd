using R1Sharp.Kernels;
using R1Sharp.Models;
using R1Sharp.Quantization;
using static TorchSharp.torch;

namespace R1Sharp.Tests;

/// The few-row kernels against libtorch's matmul on the dequantized weights (in float64): every stored
/// format, odd sizes, partial FP8 blocks and INT4 groups, 1 to 8 rows, bias, and every path (the integer
/// kernels' inputs are rounded to int16: their error may also be half a step of each row's scale times Σ|W|).
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
        foreach (var path in Enum.GetValues<KernelPath>())
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
            FewRowMatmul.Run(view, (float*)TensorMemory.Pointer(x), rows, (float*)TensorMemory.Pointer(bias), (float*)TensorMemory.Pointer(y), path);
            var reference = nn.functional.linear(x.to_type(ScalarType.Float64), weight.to_type(ScalarType.Float64), bias.to_type(ScalarType.Float64));
            var error = (y.to_type(ScalarType.Float64) - reference).abs();
            var size = reference.abs().max().item<double>();
            var allowed = 1e-5 * Math.Max(1, size) * Math.Sqrt(inFeatures) + InputRounding(x, weight, format, path);
            Assert.True((error <= allowed).all().item<bool>(), $"{format} {outFeatures}x{inFeatures} rows {rows} {path}: max |Δ| {error.max().item<double>():E2} (values up to {size:F2})");
        }
    }

    /// MLA's absorbed decode reads kv_b from both sides: row slices (a head's value rows) through Run, and
    /// rows weighted by an input (a head's key rows, xᵀW) through AccumulateRows.
    [Theory, MemberData(nameof(Formats))]
    public unsafe void RowSlicesAndWeightedRowsEqualLibtorch(WeightFormat format)
    {
        if (format == WeightFormat.Fp8) return;   // FP8's 128-row scale blocks are never sliced (the libtorch path runs)
        using var noGrad = no_grad();
        var generator = new Generator(11);
        foreach (var (outFeatures, inFeatures, first, count) in new[] { (40, 72, 8, 24), (256, 256, 64, 64), (33, 17, 0, 33) })
        foreach (var rows in new[] { 1, 3 })
        {
            using var scope = NewDisposeScope();
            var dense = randn([outFeatures, inFeatures], generator: generator) * 0.1;
            using var layer = format == WeightFormat.F32 ? null : new QuantizedLinear(inFeatures, outFeatures, format);
            layer?.Assign(dense);
            var weight = (layer?.Dequantized() ?? dense).to_type(ScalarType.Float64);
            var view = layer?.View() ?? KernelLinear.View(dense);
            var slice = weight.narrow(0, first, count);

            var x = randn([rows, inFeatures], generator: generator);
            var y = empty(rows, count);
            FewRowMatmul.RunOnThisThread(view.Rows(first, count), (float*)TensorMemory.Pointer(x), rows, (float*)TensorMemory.Pointer(y));
            var expected = matmul(x.to_type(ScalarType.Float64), slice.t());
            var allowed = 1e-5 * Math.Sqrt(inFeatures) * Math.Max(1, expected.abs().max().item<double>()) + InputRounding(x, slice, format, KernelPath.Best);
            Assert.True(((y.to_type(ScalarType.Float64) - expected).abs() <= allowed).all().item<bool>(), $"{format} rows {first}+{count} of {outFeatures}x{inFeatures}, {rows} inputs");

            var a = randn([rows, count + 5], generator: generator);   // a stride wider than the rows used
            var start = randn([rows, inFeatures], generator: generator);
            var accumulated = start.clone();
            FewRowMatmul.AccumulateRows(view, first, count, (float*)TensorMemory.Pointer(a), count + 5, rows, (float*)TensorMemory.Pointer(accumulated));
            var reference = start.to_type(ScalarType.Float64) + matmul(a.narrow(1, 0, count).to_type(ScalarType.Float64), slice);
            var error = (accumulated.to_type(ScalarType.Float64) - reference).abs().max().item<double>();
            Assert.True(error <= 1e-5 * Math.Sqrt(count) * Math.Max(1, reference.abs().max().item<double>()), $"{format} weighted rows {first}+{count} of {outFeatures}x{inFeatures}: {error:E2}");
        }
    }

    /// [rows, out]: half an int16 step of each input row times Σᵢ |W[o, i]|, where the integer kernels run.
    private static Tensor InputRounding(Tensor x, Tensor weight, WeightFormat format, KernelPath path)
    {
        if (path != KernelPath.Best || format is not (WeightFormat.Int8 or WeightFormat.Int4) || !System.Runtime.Intrinsics.X86.Avx512BW.IsSupported) return zeros(1, 1, dtype: ScalarType.Float64);
        var halfStep = x.to_type(ScalarType.Float64).abs().amax([1], keepdim: true) / 32767 / 2;
        return halfStep * weight.to_type(ScalarType.Float64).abs().sum(1).unsqueeze(0);
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
            var error = (module.forward(x).to_type(ScalarType.Float64) - expected).abs()[0];
            var allowed = 1e-4 + (rows <= FewRowMatmul.MaxRows ? InputRounding(x[0], weight, format, KernelPath.Best) : zeros(1, 1, dtype: ScalarType.Float64));
            Assert.True((error <= allowed).all().item<bool>(), $"{format} rows {rows}: max |Δ| {error.max().item<double>():E2}");
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
