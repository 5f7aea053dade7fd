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

    /// The same for INT4 groups (Int4Groups), four groups (64 bytes, 32 16-bit words) at a time: nibble k of
    /// every word is shifted and masked out in place as 32 int16 weights, so no byte is widened by a shuffle;
    /// the activations are stored in that order (Int16Activations). vpmaddwd's pairs never cross a group,
    /// so int32 lanes 4g..4g+3 hold group g's sums and take its bf16 scale in one multiply-add per row.
    /// Groups after the last whole block of four unpack one at a time against activations in column order.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Int4(WeightView w, short* q, int stride, float* scales, int rows, float* y, int from, int to)
    {
        int n = w.InFeatures, groups = Int4Groups.Count(n), blocks = groups / 4;
        for (int o = from; o < to; o++)
        {
            var row = (byte*)w.Data + (long)o * groups * Int4Groups.BytesPerGroup;
            var groupScales = (ushort*)w.Scale + (long)o * groups;
            // One x row after another while the weight row stays in cache, each with its sums in registers.
            for (int r = 0; r < rows; r++)
            {
                var a = q + (long)r * stride;
                var sum = Blocks(row, groupScales, a, blocks) + Tail(row, groupScales, a, blocks * 4, groups);
                y[(long)r * w.OutFeatures + o] += Vector512.Sum(sum) * scales[r];
            }
        }
    }

    /// Σ over whole blocks of four groups, two blocks in flight (independent accumulators).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Blocks(byte* row, ushort* groupScales, short* a, int blocks)
    {
        Vector512<float> acc0 = Vector512<float>.Zero, acc1 = Vector512<float>.Zero;
        int b = 0;
        for (; b + 2 <= blocks; b += 2)
        {
            acc0 = Block(row, groupScales, a, b, acc0);
            acc1 = Block(row, groupScales, a, b + 1, acc1);
        }
        if (b < blocks) acc0 = Block(row, groupScales, a, b, acc0);
        return acc0 + acc1;
    }

    /// Block b's 64 bytes as 32 words: nibble k of every word shifted and masked out in place as 32 int16
    /// weights; lanes 4g..4g+3 of the pairwise products belong to group g and take its scale.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Block(byte* row, ushort* groupScales, short* a, int b, Vector512<float> acc)
    {
        var nibble = Vector512.Create((ushort)0x0F);
        var eight = Vector512.Create((short)8);
        var words = Vector512.Load((ushort*)(row + b * 64));
        var x = a + b * 128;
        var s = Avx512BW.MultiplyAddAdjacent((words & nibble).AsInt16() - eight, Vector512.Load(x))
            + Avx512BW.MultiplyAddAdjacent((Vector512.ShiftRightLogical(words, 4) & nibble).AsInt16() - eight, Vector512.Load(x + 32))
            + Avx512BW.MultiplyAddAdjacent((Vector512.ShiftRightLogical(words, 8) & nibble).AsInt16() - eight, Vector512.Load(x + 64))
            + Avx512BW.MultiplyAddAdjacent(Vector512.ShiftRightLogical(words, 12).AsInt16() - eight, Vector512.Load(x + 96));
        var four = Vector128.ShiftLeft(Sse41.ConvertToVector128Int32(groupScales + b * 4), 16).AsSingle();
        var scale = Avx512F.PermuteVar16x32(Vector512.Create(Vector256.Create(four, four), Vector256.Create(four, four)), Spread);
        return Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s), scale, acc);
    }

    private static readonly Vector512<int> Spread = Vector512.Create(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);

    /// Groups [first, groups) one at a time against activations in column order.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Tail(byte* row, ushort* groupScales, short* a, int first, int groups)
    {
        var acc = Vector512<float>.Zero;
        for (int g = first; g < groups; g++)
        {
            var bytes = Vector128.Load(row + g * Int4Groups.BytesPerGroup);
            var low = (bytes & Vector128.Create((byte)0x0F)).AsSByte();
            var high = (Vector128.ShiftRightLogical(bytes.AsUInt16(), 4).AsByte() & Vector128.Create((byte)0x0F)).AsSByte();
            var weights = Avx512BW.ConvertToVector512Int16(Vector256.Create(low, high)) - Vector512.Create((short)8);
            var s = Avx512BW.MultiplyAddAdjacent(weights, Vector512.Load(a + g * 32));
            acc = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s), Vector512.Create(Bf16(groupScales[g])), acc);
        }
        return acc;
    }

    private static float Bf16(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);
}
