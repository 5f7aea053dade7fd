using static TorchSharp.torch;

namespace R1Sharp.Checkpoints;

/// float8 E4M3 ("e4m3fn"): sign, 4 exponent bits (bias 7), 3 mantissa bits; exponent 0 is subnormal
/// (m/8 * 2^-6); S.1111.111 is NaN; there are no infinities; the largest finite value is 448.
public static class Fp8E4M3
{
    public const float Max = 448f;

    public static float Decode(byte code)
    {
        int sign = code >> 7, exponent = (code >> 3) & 0xF, mantissa = code & 0x7;
        if (exponent == 0xF && mantissa == 0x7) return float.NaN;
        var magnitude = exponent == 0
            ? mantissa / 8f * MathF.Pow(2, -6)
            : (1 + mantissa / 8f) * MathF.Pow(2, exponent - 7);
        return sign == 1 ? -magnitude : magnitude;
    }

    private static readonly float[] Table = Enumerable.Range(0, 256).Select(b => Decode((byte)b)).ToArray();

    /// Decodes a byte tensor to float32 with a 256-entry lookup.
    public static Tensor DecodeTensor(Tensor codes)
    {
        using var scope = NewDisposeScope();
        var table = tensor(Table, device: codes.device);
        return table.index_select(0, codes.flatten().to_type(ScalarType.Int64)).view(codes.shape).MoveToOuterDisposeScope();
    }

    /// W = e4m3(codes) * scaleInv[i / blockRows, j / blockCols] as float32; edge blocks may be partial.
    public static Tensor Dequantize(Tensor codes, Tensor scaleInv, int blockRows, int blockCols)
    {
        using var scope = NewDisposeScope();
        long rows = codes.shape[0], cols = codes.shape[1];
        var scales = scaleInv.to_type(ScalarType.Float32)
            .repeat_interleave(blockRows, 0).narrow(0, 0, rows)
            .repeat_interleave(blockCols, 1).narrow(1, 0, cols);
        return (DecodeTensor(codes) * scales).MoveToOuterDisposeScope();
    }

    /// The scale grid a [rows, cols] weight needs.
    public static long[] ScaleShape(long[] weightShape, int blockRows, int blockCols) =>
        [(weightShape[0] + blockRows - 1) / blockRows, (weightShape[1] + blockCols - 1) / blockCols];
}
