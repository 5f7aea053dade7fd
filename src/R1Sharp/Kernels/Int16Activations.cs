using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

/// Input rows quantized to int16 for the integer kernels: each row scaled by its largest magnitude to
/// ±32767 (round to nearest even), so a value's error is at most half a step, max|x| / 65534 — far below
/// an 8- or 4-bit weight's own rounding. For INT4 the row is padded with zeros to whole groups and each
/// pair of groups is stored in the order the nibbles unpack: columns 0–15, 32–47, 16–31, 48–63.
internal static unsafe class Int16Activations
{
    public const float Range = 32767f;

    /// Quantizes `rows` rows of `n` columns into q (rows × stride shorts) and their scales; false when a row
    /// holds an infinity or NaN (the float kernels then run, so they propagate as libtorch would).
    public static bool Quantize(float* x, int rows, int n, bool int4Order, short* q, int stride, float* scales)
    {
        for (int r = 0; r < rows; r++)
        {
            var row = x + (long)r * n;
            var max = MaxMagnitude(row, n);
            if (!float.IsFinite(max)) return false;
            scales[r] = max / Range;
            var inverse = max == 0 ? 0 : Range / max;
            var target = q + (long)r * stride;
            if (int4Order) QuantizeInt4Order(row, n, inverse, target, stride);
            else QuantizeRun(row, n, inverse, target);
        }
        return true;
    }

    /// The row's largest magnitude, or NaN when it holds an infinity or NaN (x·0 is then NaN, not 0).
    private static float MaxMagnitude(float* row, int n)
    {
        Vector512<float> max = Vector512<float>.Zero, poison = Vector512<float>.Zero;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            var v = Vector512.Load(row + i);
            max = Avx512F.Max(max, Vector512.Abs(v));
            poison += v * Vector512<float>.Zero;
        }
        float result = 0, tail = 0;
        for (int k = 0; k < 16; k++) result = MathF.Max(result, max.GetElement(k));
        for (; i < n; i++)
        {
            result = MathF.Max(result, MathF.Abs(row[i]));
            tail += row[i] * 0;
        }
        return float.IsNaN(Vector512.Sum(poison) + tail) ? float.NaN : result;
    }

    /// Columns [0, count) of row to target[0, count), zero beyond up to `padTo`.
    private static void QuantizeRun(float* row, int count, float inverse, short* target, int padTo = 0)
    {
        var scale = Vector512.Create(inverse);
        int i = 0;
        for (; i + 16 <= count; i += 16)
            Vector256.Store(Avx512F.ConvertToVector256Int16(Avx512F.ConvertToVector512Int32(Vector512.Load(row + i) * scale)), target + i);
        for (; i < count; i++) target[i] = (short)MathF.Round(row[i] * inverse, MidpointRounding.ToEven);
        for (; i < padTo; i++) target[i] = 0;
    }

    private static void QuantizeInt4Order(float* row, int n, float inverse, short* target, int stride)
    {
        int groups = Int4Groups.Count(n), pairs = groups / 2;
        for (int p = 0; p < pairs; p++)
        {
            int c = p * 64;
            // Quarters in unpacking order: columns [0,16) [32,48) [16,32) [48,64) of the pair.
            QuantizeQuarter(row, n, c, inverse, target + c);
            QuantizeQuarter(row, n, c + 32, inverse, target + c + 16);
            QuantizeQuarter(row, n, c + 16, inverse, target + c + 32);
            QuantizeQuarter(row, n, c + 48, inverse, target + c + 48);
        }
        if (groups % 2 == 1)
        {
            int c = pairs * 64;
            QuantizeRun(row + c, Math.Max(0, Math.Min(32, n - c)), inverse, target + c, 32);
        }
        for (int i = groups * 32; i < stride; i++) target[i] = 0;
    }

    private static void QuantizeQuarter(float* row, int n, int column, float inverse, short* target) =>
        QuantizeRun(row + column, Math.Max(0, Math.Min(16, n - column)), inverse, target, 16);
}
