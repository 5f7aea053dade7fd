using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

/// INT8 and INT4 weights times int16 activations (Int16Activations) in integer arithmetic, AVX-512BW:
/// weights sign-extended to int16 and multiplied pairwise into int32 (vpmaddwd), 32 weights per
/// instruction, so a weight costs far less than widening it to float32 and a fused multiply-add.
/// Products stay exact in int32; sums are moved to float32 every 2048 columns (INT8) or group pair (INT4),
/// long before they could overflow.
internal static unsafe class Int16Kernels
{
    public static bool Supported => Avx512BW.IsSupported;

    private const int Flush = 2048;

    /// y[r, o] += Σᵢ W[o, i]·x[r, i] for o in [from, to), INT8 with one scale per output row.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Int8(WeightView w, short* q, int stride, float* scales, int rows, float* y, int from, int to)
    {
        int n = w.InFeatures, whole = n / 32 * 32;
        for (int o = from; o < to; o++)
        {
            var row = (sbyte*)w.Data + (long)o * n;
            var rowScale = ((float*)w.Scale)[o];
            for (int r = 0; r < rows; r++)
            {
                var a = q + (long)r * stride;
                var sum = Dot(row, a, whole);
                int tail = 0;
                for (int j = whole; j < n; j++) tail += row[j] * a[j];
                y[(long)r * w.OutFeatures + o] += (sum + tail) * rowScale * scales[r];
            }
        }
    }

    /// Σ w[i]·a[i] over [0, count), count a multiple of 32.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot(sbyte* w, short* a, int count)
    {
        var total = Vector512<float>.Zero;
        for (int start = 0; start < count; start += Flush)
        {
            int end = Math.Min(count, start + Flush), i = start;
            Vector512<int> s0 = default, s1 = default;
            for (; i + 64 <= end; i += 64)
            {
                s0 += Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Vector256.Load(w + i)), Vector512.Load(a + i));
                s1 += Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Vector256.Load(w + i + 32)), Vector512.Load(a + i + 32));
            }
            if (i < end) s0 += Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Vector256.Load(w + i)), Vector512.Load(a + i));
            total += Avx512F.ConvertToVector512Single(s0 + s1);
        }
        return Vector512.Sum(total);
    }

    /// The same for INT4 groups (Int4Groups): a pair of groups' 32 bytes unpack into two vectors of 32
    /// weights, whose pairwise products land in lanes 0–7 for the first group and 8–15 for the second,
    /// matching the activations' pair order; each group's sum then takes its bf16 scale.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Int4(WeightView w, short* q, int stride, float* scales, int rows, float* y, int from, int to)
    {
        int n = w.InFeatures, groups = Int4Groups.Count(n), pairs = groups / 2;
        var nibble = Vector256.Create((byte)0x0F);
        var eight = Vector256.Create((sbyte)8);
        var acc = stackalloc Vector512<float>[FewRowMatmul.MaxRows];
        for (int o = from; o < to; o++)
        {
            var row = (byte*)w.Data + (long)o * groups * Int4Groups.BytesPerGroup;
            var groupScales = (ushort*)w.Scale + (long)o * groups;
            for (int r = 0; r < rows; r++) acc[r] = Vector512<float>.Zero;
            for (int p = 0; p < pairs; p++)
            {
                var bytes = Vector256.Load(row + p * 32);
                var low = Avx512BW.ConvertToVector512Int16((bytes & nibble).AsSByte() - eight);
                var high = Avx512BW.ConvertToVector512Int16((Vector256.ShiftRightLogical(bytes.AsUInt16(), 4).AsByte() & nibble).AsSByte() - eight);
                var scale = Vector512.Create(Vector256.Create(Bf16(groupScales[2 * p])), Vector256.Create(Bf16(groupScales[2 * p + 1])));
                for (int r = 0; r < rows; r++)
                {
                    var a = q + (long)r * stride + p * 64;
                    var s = Avx512BW.MultiplyAddAdjacent(low, Vector512.Load(a)) + Avx512BW.MultiplyAddAdjacent(high, Vector512.Load(a + 32));
                    acc[r] = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s), scale, acc[r]);
                }
            }
            if (groups % 2 == 1)
            {
                var bytes = Vector128.Load(row + (groups - 1) * Int4Groups.BytesPerGroup);
                var low = (bytes & Vector128.Create((byte)0x0F)).AsSByte();
                var high = (Vector128.ShiftRightLogical(bytes.AsUInt16(), 4).AsByte() & Vector128.Create((byte)0x0F)).AsSByte();
                var weights = Avx512BW.ConvertToVector512Int16(Vector256.Create(low, high) - eight);
                var scale = Vector512.Create(Bf16(groupScales[groups - 1]));
                for (int r = 0; r < rows; r++)
                {
                    var s = Avx512BW.MultiplyAddAdjacent(weights, Vector512.Load(q + (long)r * stride + (groups - 1) * 32));
                    acc[r] = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s), scale, acc[r]);
                }
            }
            for (int r = 0; r < rows; r++) y[(long)r * w.OutFeatures + o] += Vector512.Sum(acc[r]) * scales[r];
        }
    }

    private static float Bf16(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);
}
