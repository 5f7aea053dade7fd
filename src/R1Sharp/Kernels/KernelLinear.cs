using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Kernels;

/// y = x Wᵀ + b through FewRowMatmul when it applies: a float32 CPU input of at most
/// FewRowMatmul.MaxRows rows (decoding), nothing that needs a gradient, and a machine with AVX2 + FMA.
/// Measured on this machine (AVX2 kernels, 2 cores, weights rotated past the L3 cache): at 1–2 rows
/// 1.2–2.2× libtorch's best small-batch path, at 4 rows about 1.3×, at 8 rows about even; larger
/// inputs (prefill, training) go to libtorch.
public static class KernelLinear
{
    /// R1SHARP_KERNELS=0 leaves every matmul to libtorch (for comparisons); benchmarks switch it in process.
    public static bool Enabled { get; internal set; } = Environment.GetEnvironmentVariable("R1SHARP_KERNELS") != "0";

    public static bool Applies(Tensor x, bool weightNeedsGrad)
    {
        if (!Enabled || !FewRowMatmul.Accelerated || x.dtype != ScalarType.Float32 || x.device_type != DeviceType.CPU) return false;
        var rows = x.NumberOfElements / Math.Max(1, x.shape[^1]);
        return rows is >= 1 and <= FewRowMatmul.MaxRows && !(is_grad_enabled() && (weightNeedsGrad || x.requires_grad));
    }

    public static unsafe Tensor Forward(Tensor x, WeightView weight, Tensor? bias)
    {
        using var scope = NewDisposeScope();
        var input = x.contiguous();
        var rows = (int)(input.NumberOfElements / weight.InFeatures);
        var y = empty([.. x.shape[..^1], weight.OutFeatures], dtype: ScalarType.Float32);
        var b = bias?.to_type(ScalarType.Float32).contiguous();
        FewRowMatmul.Run(weight, (float*)TensorMemory.Pointer(input), rows, b is null ? null : (float*)TensorMemory.Pointer(b), (float*)TensorMemory.Pointer(y));
        return y.MoveToOuterDisposeScope();
    }

    /// A float32 or bf16 matrix [out, in] as the kernels read it.
    public static unsafe WeightView View(Tensor weight) => new(
        weight.dtype switch
        {
            ScalarType.Float32 => StoredWeight.F32,
            ScalarType.BFloat16 => StoredWeight.Bf16,
            _ => throw new ArgumentException($"no kernel reads {weight.dtype} weights without a format"),
        },
        TensorMemory.Pointer(weight), (int)weight.shape[0], (int)weight.shape[1]);
}
