using R1Sharp.Kernels;
using static TorchSharp.torch;

namespace R1Sharp.Quantization;

/// INT4 weight-only quantization, R1Sharp's layout (Int4Groups): symmetric, one bfloat16 scale per 32
/// weights of a row, scale = max|w| / 7 over the group (rounded to bf16 first, and used rounded), q =
/// clamp(round(w / scale), -8, 7) + 8, two weights a byte (group byte k: weight k in the low nibble,
/// weight k + 16 in the high one). Stored as `weight` U8 [out, ⌈in/32⌉·16] and `weight_scale` BF16
/// [out, ⌈in/32⌉]. bf16 rather than float16 scales: a kernel widens them with one shift.
public static class Int4Group
{
    public static long[] PackedShape(long outFeatures, long inFeatures) => [outFeatures, Int4Groups.Count((int)inFeatures) * (long)Int4Groups.BytesPerGroup];
    public static long[] ScaleShape(long outFeatures, long inFeatures) => [outFeatures, Int4Groups.Count((int)inFeatures)];

    public static (Tensor Packed, Tensor Scale) Quantize(Tensor weight)
    {
        using var scope = NewDisposeScope();
        long rows = weight.shape[0], columns = weight.shape[1], groups = Int4Groups.Count((int)columns);
        var w = nn.functional.pad(weight.to_type(ScalarType.Float32), [0, groups * Int4Groups.Size - columns]).view(rows, groups, Int4Groups.Size);
        var amax = w.abs().amax([2L], keepdim: true);
        var scale = where(amax > 0, amax / 7, ones_like(amax)).to_type(ScalarType.BFloat16);
        var q = (w / scale.to_type(ScalarType.Float32)).round().clamp(-8, 7).to_type(ScalarType.Int32) + 8;   // [rows, groups, 32], 0..15
        var packed = (q.narrow(2, 0, 16) + q.narrow(2, 16, 16) * 16).to_type(ScalarType.Byte).reshape(rows, groups * Int4Groups.BytesPerGroup);
        return (packed.MoveToOuterDisposeScope(), scale.view(rows, groups).MoveToOuterDisposeScope());
    }

    public static Tensor Dequantize(Tensor packed, Tensor scale, long inFeatures)
    {
        using var scope = NewDisposeScope();
        long rows = packed.shape[0], groups = scale.shape[1];
        var bytes = packed.view(rows, groups, Int4Groups.BytesPerGroup).to_type(ScalarType.Int32);
        var q = cat([bytes.remainder(16), bytes.div(16, rounding_mode: RoundingMode.floor)], 2) - 8;                                                      // [rows, groups, 32]
        var w = q.to_type(ScalarType.Float32) * scale.to_type(ScalarType.Float32).unsqueeze(2);
        return w.view(rows, groups * Int4Groups.Size).narrow(1, 0, inFeatures).contiguous().MoveToOuterDisposeScope();
    }
}
