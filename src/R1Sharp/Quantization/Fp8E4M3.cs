using static TorchSharp.torch;

namespace R1Sharp.Quantization;

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
        return table.index_select(0, codes.flatten().to_type(ScalarType.Int32)).view(codes.shape).MoveToOuterDisposeScope();
    }

    /// W = e4m3(codes) * scaleInv[i / blockRows, j / blockCols] as float32; edge blocks may be partial.
    public static Tensor Dequantize(Tensor codes, Tensor scaleInv, int blockRows, int blockCols)
    {
        using var scope = NewDisposeScope();
        long rows = codes.shape[0], cols = codes.shape[1];
        var values = DecodeTensor(codes);
        if (rows % blockRows == 0 && cols % blockCols == 0)
        {
            var blocks = values.view(rows / blockRows, blockRows, cols / blockCols, blockCols);
            var grid = scaleInv.to_type(ScalarType.Float32).view(rows / blockRows, 1, cols / blockCols, 1);
            return (blocks * grid).view(rows, cols).MoveToOuterDisposeScope();
        }
        var scales = scaleInv.to_type(ScalarType.Float32)
            .repeat_interleave(blockRows, 0).narrow(0, 0, rows)
            .repeat_interleave(blockCols, 1).narrow(1, 0, cols);
        return (values * scales).MoveToOuterDisposeScope();
    }

    /// Encodes float32 to E4M3 codes: round to nearest, ties to even, saturating at +-448; NaN -> 0x7F.
    public static Tensor EncodeTensor(Tensor values)
    {
        using var scope = NewDisposeScope();
        var x = values.to_type(ScalarType.Float32);
        var magnitude = x.abs().clamp(max: Max);
        // Spacing of representable values: 2^(e-3) for normal exponents e >= -6, 2^-9 below (subnormals).
        var exponent = magnitude.clamp(min: MathF.Pow(2, -6)).log2().floor();
        var quantum = pow(2.0, exponent - 3);
        var rounded = (magnitude / quantum).round() * quantum;                 // round() is half-to-even
        var e = rounded.clamp(min: MathF.Pow(2, -6)).log2().floor();
        var normal = rounded >= MathF.Pow(2, -6);
        var normalCode = (e + 7) * 8 + (rounded / pow(2.0, e) * 8 - 8);
        var subnormalCode = rounded / MathF.Pow(2, -9);
        var code = where(normal, normalCode, subnormalCode).round().to_type(ScalarType.Int32);
        code = code + signbit(x).to_type(ScalarType.Int32) * 128;
        code = where(x.isnan(), full_like(code, 0x7F), code);
        return code.to_type(ScalarType.Byte).MoveToOuterDisposeScope();
    }

    /// DeepSeek's block quantization: per block, scale_inv = amax / 448 (1 for an all-zero block) and
    /// codes = e4m3(W / scale_inv). Returns (codes [rows, cols], scale_inv [ceil(rows/b), ceil(cols/b)]).
    public static (Tensor Codes, Tensor ScaleInv) Quantize(Tensor weight, int blockRows, int blockCols)
    {
        using var scope = NewDisposeScope();
        var w = weight.to_type(ScalarType.Float32);
        long rows = w.shape[0], cols = w.shape[1];
        var grid = ScaleShape([rows, cols], blockRows, blockCols);
        var padded = nn.functional.pad(w.abs(), [0, grid[1] * blockCols - cols, 0, grid[0] * blockRows - rows]);
        var amax = padded.view(grid[0], blockRows, grid[1], blockCols).amax([1L, 3L]);
        var scaleInv = where(amax > 0, amax / Max, ones_like(amax));
        var expanded = scaleInv.repeat_interleave(blockRows, 0).narrow(0, 0, rows).repeat_interleave(blockCols, 1).narrow(1, 0, cols);
        var codes = EncodeTensor(w / expanded);
        return (codes.MoveToOuterDisposeScope(), scaleInv.MoveToOuterDisposeScope());
    }

    /// The scale grid a [rows, cols] weight needs.
    public static long[] ScaleShape(long[] weightShape, int blockRows, int blockCols) =>
        [(weightShape[0] + blockRows - 1) / blockRows, (weightShape[1] + blockCols - 1) / blockCols];
}
