using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

/// Input rows quantized to int16 for the integer kernels: each row scaled by its largest magnitude to
/// ±32767 (round to nearest even), so a value's error is at most half a step, max|x| / 65534 — far below
/// an 8- or 4-bit weight's own rounding. For INT4 the row is padded with zeros to whole groups, and each
/// block of four groups (128 columns) is stored in the order the kernel unpacks it: the block's 64 bytes
/// are 32 16-bit words, word j holding columns 2w, 2w+16, 2w+1, 2w+17 of group j/8 (w = j % 8) in its four
/// nibbles; part k of the block (32 shorts) holds nibble k's column of every word. Groups after the last
/// whole block stay in column order.
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
        int groups = Int4Groups.Count(n), blocks = groups / 4;
        var padded = stackalloc float[128];
        var scale = Vector512.Create(inverse);
        for (int b = 0; b < blocks; b++)
        {
            int start = b * 128, count = Math.Clamp(n - start, 0, 128);
            var source = row + start;
            if (count < 128)
            {
                new Span<float>(padded, 128).Clear();
                Buffer.MemoryCopy(source, padded, 128 * 4, count * 4L);
                source = padded;
            }
            for (int part = 0; part < 4; part++)
            {
                // nibble k of word w of group g: column 32g + 2w + (k & 1)·16 + (k >> 1); groups 0–1 then 2–3
                var pick = (part >> 1) == 0 ? EvenLanes : OddLanes;
                int half = (part & 1) * 16;
                var low = Avx512F.PermuteVar16x32x2(Vector512.Load(source + half), pick, Vector512.Load(source + 32 + half));
                var high = Avx512F.PermuteVar16x32x2(Vector512.Load(source + 64 + half), pick, Vector512.Load(source + 96 + half));
                var q = target + start + part * 32;
                Vector256.Store(Avx512F.ConvertToVector256Int16(Avx512F.ConvertToVector512Int32(low * scale)), q);
                Vector256.Store(Avx512F.ConvertToVector256Int16(Avx512F.ConvertToVector512Int32(high * scale)), q + 16);
            }
        }
        int rest = blocks * 128;
        QuantizeRun(row + rest, Math.Max(0, n - rest), inverse, target + rest, groups * Int4Groups.Size - rest);
        for (int i = groups * Int4Groups.Size; i < stride; i++) target[i] = 0;
    }

    // Lanes 2w (+1) of the first source for words 0–7, of the second (16 + …) for words 8–15.
    private static readonly Vector512<int> EvenLanes = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    private static readonly Vector512<int> OddLanes = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
}
