using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

/// The stored formats a weight [out, in] may have in memory.
public enum StoredWeight { F32, Bf16, Int8, Fp8, Int4 }

/// A weight as the kernels read it: raw pointers into tensor memory, never copied. Scales: INT8 one
/// float32 per output row; FP8 DeepSeek's float32 128×128 block `scale_inv`; INT4 one bfloat16 per 32
/// weights of a row (R1Sharp's layout, see Int4Groups).
public readonly unsafe struct WeightView(StoredWeight format, void* data, int outFeatures, int inFeatures, void* scale = null)
{
    public StoredWeight Format { get; } = format;
    public void* Data { get; } = data;
    public int OutFeatures { get; } = outFeatures;
    public int InFeatures { get; } = inFeatures;
    public void* Scale { get; } = scale;

    /// Rows [first, first + count) as a matrix of their own (not FP8, whose scale blocks span 128 rows).
    public WeightView Rows(int first, int count)
    {
        if (first < 0 || count < 0 || first + count > OutFeatures) throw new ArgumentOutOfRangeException(nameof(first), $"rows {first}..{first + count} of {OutFeatures}");
        long at = (long)first * InFeatures, groups = Int4Groups.Count(InFeatures);
        return Format switch
        {
            StoredWeight.F32 => new(Format, (float*)Data + at, count, InFeatures),
            StoredWeight.Bf16 => new(Format, (ushort*)Data + at, count, InFeatures),
            StoredWeight.Int8 => new(Format, (sbyte*)Data + at, count, InFeatures, (float*)Scale + first),
            StoredWeight.Int4 => new(Format, (byte*)Data + first * groups * Int4Groups.BytesPerGroup, count, InFeatures, (ushort*)Scale + first * groups),
            _ => throw new NotSupportedException("FP8 weights are sliced by whole 128-row blocks only"),
        };
    }
}

/// One matmul of a kernel call: y[r] = W x[r] + b for `Rows` rows of x (contiguous, InFeatures each).
public readonly unsafe struct Matmul(WeightView w, float* x, int rows, float* bias, float* y)
{
    public WeightView W { get; } = w;
    public float* X { get; } = x;
    public int Rows { get; } = rows;
    public float* Bias { get; } = bias;
    public float* Y { get; } = y;
}

/// Which implementation a kernel call uses: the best this machine has, the AVX2 float path, or the
/// portable scalar one (tests compare them).
public enum KernelPath { Best, Avx2, Portable }

/// y[r, o] = Σᵢ x[r, i] · W[o, i] + b[o] for a few rows r (decoding), reading W as it is stored, so a
/// token reads each weight byte once and nothing is dequantized to float32 in memory: bf16 is widened
/// and FP8 decoded in registers; INT8 and INT4 are multiplied as integers with int16-quantized inputs
/// where AVX-512BW exists (Int16Kernels), else converted to float32 in registers. Output rows are split
/// over the cores. AVX2 + FMA, with a portable scalar fallback on other machines.
public static unsafe class FewRowMatmul
{
    public const int MaxRows = 8;
    public const int Fp8Block = 128;

    /// Whether the vector kernels run here (otherwise the scalar fallback does, and callers prefer libtorch).
    public static bool Accelerated => Avx2.IsSupported && Fma.IsSupported;

    public static void Run(WeightView w, float* x, int rows, float* bias, float* y, KernelPath path = KernelPath.Best) =>
        RunMany([new Matmul(w, x, rows, bias, y)], path);

    /// Several matmuls (gate and up; every chosen expert's) in one split over the cores: each part takes an
    /// equal share of their weights' elements, so a decode step waits for the cores once, not per matmul.
    /// Each part prepares the inputs it reads on its own thread (quantizing a few rows costs little).
    public static void RunMany(Matmul[] matmuls, KernelPath path = KernelPath.Best)
    {
        long total = 0, outputs = 0;
        foreach (var m in matmuls)
        {
            if (m.Rows is < 1 or > MaxRows) throw new ArgumentOutOfRangeException(nameof(matmuls), $"{m.Rows} rows: the kernels take 1 to {MaxRows}");
            total += (long)m.W.OutFeatures * m.W.InFeatures;
            outputs += m.W.OutFeatures;
        }
        var parts = (int)Math.Min(KernelThreads.Count, Math.Max(1, outputs / 64));
        KernelThreads.Run(parts, part =>
        {
            long low = total * part / parts, high = total * (part + 1) / parts, offset = 0;
            foreach (var m in matmuls)
            {
                long perRow = m.W.InFeatures, cost = m.W.OutFeatures * perRow;
                if (offset < high && offset + cost > low)
                {
                    int from = (int)Math.Clamp((low - offset + perRow - 1) / perRow, 0, m.W.OutFeatures);
                    int to = (int)Math.Clamp((high - offset + perRow - 1) / perRow, 0, m.W.OutFeatures);
                    if (from < to) Range(m.W, Input.Prepare(m.W, m.X, m.Rows, path), m.Rows, m.Bias, m.Y, from, to, path);
                }
                offset += cost;
            }
        });
    }

    /// The same on the calling thread alone, for callers that split their work over the cores themselves.
    internal static void RunOnThisThread(WeightView w, float* x, int rows, float* y)
    {
        if (rows is < 1 or > MaxRows) throw new ArgumentOutOfRangeException(nameof(rows));
        Range(w, Input.Prepare(w, x, rows, KernelPath.Best), rows, null, y, 0, w.OutFeatures, KernelPath.Best);
    }

    /// y[r, c] += Σ_k a[r, k] · W[first + k, c] over k in [0, count): rows of W weighted by a (xᵀW, the other
    /// side from Run), each row decoded once for every r. a has `aStride` floats per r, y has InFeatures.
    internal static void AccumulateRows(WeightView w, int first, int count, float* a, int aStride, int rows, float* y)
    {
        int n = w.InFeatures;
        var decoded = KernelScratch.Floats(n);
        for (int k = 0; k < count; k++)
        {
            DecodeRow(w, first + k, decoded);
            for (int r = 0; r < rows; r++) ScaledAdd.Run(decoded, a[(long)r * aStride + k], y + (long)r * n, n);
        }
    }

    /// Row o of W as float32 values (what a dequantized matrix holds), eight at a time.
    private static void DecodeRow(WeightView w, int o, float* target)
    {
        int n = w.InFeatures, c = 0;
        long at = (long)o * n;
        switch (w.Format)
        {
            case StoredWeight.F32:
                Buffer.MemoryCopy((float*)w.Data + at, target, n * 4L, n * 4L);
                return;
            case StoredWeight.Bf16:
                for (; c + 8 <= n; c += 8) Avx.Store(target + c, Bf16Decode.Load((byte*)((ushort*)w.Data + at), c));
                break;
            case StoredWeight.Int8:
                var rowScale = Vector256.Create(((float*)w.Scale)[o]);
                for (; c + 8 <= n; c += 8) Avx.Store(target + c, Avx.Multiply(Int8Decode.Load((byte*)w.Data + at, c), rowScale));
                break;
            case StoredWeight.Fp8:
                var blocks = (n + Fp8Block - 1) / Fp8Block;
                for (; c + 8 <= n; c += 8)
                    Avx.Store(target + c, Avx.Multiply(Fp8Decode.Load((byte*)w.Data + at, c), Vector256.Create(((float*)w.Scale)[(long)(o / Fp8Block) * blocks + c / Fp8Block] * Fp8Unbias)));
                break;
            case StoredWeight.Int4:
                int groups = Int4Groups.Count(n);
                var row = (byte*)w.Data + (long)o * groups * Int4Groups.BytesPerGroup;
                for (int g = 0; g < n / Int4Groups.Size; g++, c += Int4Groups.Size)
                {
                    var (w0, w1, w2, w3) = Int4Group(row + g * Int4Groups.BytesPerGroup);
                    var scale = Vector256.Create(BitConverter.Int32BitsToSingle(((ushort*)w.Scale)[(long)o * groups + g] << 16));
                    Avx.Store(target + c, Avx.Multiply(w0, scale));
                    Avx.Store(target + c + 8, Avx.Multiply(w1, scale));
                    Avx.Store(target + c + 16, Avx.Multiply(w2, scale));
                    Avx.Store(target + c + 24, Avx.Multiply(w3, scale));
                }
                break;
        }
        for (; c < n; c++) target[c] = Dequantized(w, o, c);
    }

    /// A call's input rows: float32, and for the integer kernels also quantized to int16 in the layout
    /// the weight's format reads (Stride 0: none).
    private readonly struct Input(float* x, short* quantized, int stride, float* scales, bool int4Order)
    {
        public float* X { get; } = x;
        public short* Quantized { get; } = quantized;
        public int Stride { get; } = stride;
        public float* Scales { get; } = scales;
        public bool Int4Order { get; } = int4Order;

        public static Input Prepare(WeightView w, float* x, int rows, KernelPath path)
        {
            var stride = QuantizedStride(w, path);
            if (stride == 0) return new(x, null, 0, null, false);
            var buffer = KernelScratch.Bytes(KernelScratch.Slot.Input, (long)rows * stride * sizeof(short) + MaxRows * sizeof(float));
            var q = (short*)buffer;
            var scales = (float*)(buffer + (long)rows * stride * sizeof(short));
            var int4 = w.Format == StoredWeight.Int4;
            return Int16Activations.Quantize(x, rows, w.InFeatures, int4, q, stride, scales) ? new(x, q, stride, scales, int4) : new(x, null, 0, null, false);
        }

        /// Shorts per quantized row for the integer kernels (whole INT4 groups; INT8 rounded to 32), 0 for none.
        private static int QuantizedStride(WeightView w, KernelPath path) => path != KernelPath.Best || !Int16Kernels.Supported ? 0 : w.Format switch
        {
            StoredWeight.Int8 => (w.InFeatures + 31) / 32 * 32,
            StoredWeight.Int4 => Int4Groups.Count(w.InFeatures) * Int4Groups.Size,
            _ => 0,
        };
    }

    /// Output rows [from, to) of y = x Wᵀ + b.
    private static void Range(WeightView w, Input input, int rows, float* bias, float* y, int from, int to, KernelPath path)
    {
        for (int o = from; o < to; o++)
            for (int r = 0; r < rows; r++) y[r * w.OutFeatures + o] = bias is null ? 0 : bias[o];
        if (input.Quantized is not null && w.Format == StoredWeight.Int8) Int16Kernels.Int8(w, input.Quantized, input.Stride, input.Scales, rows, y, from, to);
        else if (input.Quantized is not null) Int16Kernels.Int4(w, input.Quantized, input.Stride, input.Scales, rows, y, from, to);
        else if (Accelerated && path != KernelPath.Portable) Vector(w, input.X, rows, y, from, to);
        else Scalar(w, input.X, rows, y, from, to);
    }

    private static void Vector(WeightView w, float* x, int rows, float* y, int from, int to)
    {
        switch (w.Format)
        {
            case StoredWeight.F32: F32(w, x, rows, y, from, to); break;
            case StoredWeight.Bf16: Bf16(w, x, rows, y, from, to); break;
            case StoredWeight.Int8: Int8(w, x, rows, y, from, to); break;
            case StoredWeight.Fp8: Fp8(w, x, rows, y, from, to); break;
            default: Int4(w, x, rows, y, from, to); break;
        }
    }

    /// 8 weights of a row at column i, as float32 (without the row's, block's or group's scale).
    private interface IDecode
    {
        static abstract Vector256<float> Load(byte* row, long i);
    }

    private struct F32Decode : IDecode
    {
        public static Vector256<float> Load(byte* row, long i) => Avx.LoadVector256((float*)row + i);
    }

    /// bf16 is a float32's top half.
    private struct Bf16Decode : IDecode
    {
        public static Vector256<float> Load(byte* row, long i) => Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32((ushort*)row + i), 16).AsSingle();
    }

    private struct Int8Decode : IDecode
    {
        public static Vector256<float> Load(byte* row, long i) => Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32((sbyte*)row + i));
    }

    /// E4M3 in registers: (sign << 31 | (code & 0x7F) << 20) is the value as a float32 times 2^-120,
    /// subnormals included (that float32 is subnormal too, and exactly E4M3's subnormal times 2^-120);
    /// the factor goes into the block's scale. Codes S.1111.111 (NaN) never occur in DeepSeek's weights.
    private struct Fp8Decode : IDecode
    {
        public static Vector256<float> Load(byte* row, long i)
        {
            var codes = Avx2.ConvertToVector256Int32(row + i);
            return Avx2.Or(Avx2.ShiftLeftLogical(Avx2.And(codes, Vector256.Create(0x7F)), 20), Avx2.ShiftLeftLogical(Avx2.And(codes, Vector256.Create(0x80)), 24)).AsSingle();
        }
    }

    private const float Fp8Unbias = 1.329228e36f;   // 2^120

    /// Σᵢ W[o, i]·x[i] over columns [start, end) for one x row, in four independent accumulators;
    /// returns the first column left (fewer than 8 remain).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Dot1<T>(byte* row, float* x, int start, int end, out float sum) where T : struct, IDecode
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int i = start;
        for (; i + 32 <= end; i += 32)
        {
            a0 = Fma.MultiplyAdd(T.Load(row, i), Avx.LoadVector256(x + i), a0);
            a1 = Fma.MultiplyAdd(T.Load(row, i + 8), Avx.LoadVector256(x + i + 8), a1);
            a2 = Fma.MultiplyAdd(T.Load(row, i + 16), Avx.LoadVector256(x + i + 16), a2);
            a3 = Fma.MultiplyAdd(T.Load(row, i + 24), Avx.LoadVector256(x + i + 24), a3);
        }
        for (; i + 8 <= end; i += 8) a0 = Fma.MultiplyAdd(T.Load(row, i), Avx.LoadVector256(x + i), a0);
        sum = Vector256.Sum(Avx.Add(Avx.Add(a0, a1), Avx.Add(a2, a3)));
        return i;
    }

    /// Dot products of W[o, start..end) with every x row, added to `sums`: one x row after another while
    /// the weight row stays in cache (measured here as fast as, mostly faster than, decoding each weight
    /// once for four rows), the tail columns one by one.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Dots<T>(WeightView w, int o, byte* row, float* x, int rows, int start, int end, float scale, float* sums) where T : struct, IDecode
    {
        int n = w.InFeatures, i = start, r = 0;
        for (; r < rows; r++)
        {
            i = Dot1<T>(row, x + r * n, start, end, out var one);
            sums[r] += one * scale;
        }
        for (int j = i; j < end; j++)
        {
            var value = Unscaled(w, o, j) * scale;
            for (r = 0; r < rows; r++) sums[r] += value * x[r * n + j];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void F32(WeightView w, float* x, int rows, float* y, int from, int to) => PerRow<F32Decode>(w, x, rows, y, from, to, 4);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Bf16(WeightView w, float* x, int rows, float* y, int from, int to) => PerRow<Bf16Decode>(w, x, rows, y, from, to, 2);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Int8(WeightView w, float* x, int rows, float* y, int from, int to) => PerRow<Int8Decode>(w, x, rows, y, from, to, 1);

    /// Formats whose rows have one scale (or none).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PerRow<T>(WeightView w, float* x, int rows, float* y, int from, int to, int elementSize) where T : struct, IDecode
    {
        int n = w.InFeatures;
        var sums = stackalloc float[MaxRows];
        for (int o = from; o < to; o++)
        {
            for (int r = 0; r < rows; r++) sums[r] = 0;
            var scale = w.Format == StoredWeight.Int8 ? ((float*)w.Scale)[o] : 1f;
            Dots<T>(w, o, (byte*)w.Data + (long)o * n * elementSize, x, rows, 0, n, scale, sums);
            for (int r = 0; r < rows; r++) y[r * w.OutFeatures + o] += sums[r];
        }
    }

    /// Σᵢ W[o, i]·x[i] over [start, end) (a multiple of 8 columns) as a vector of 8 partial sums.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> DotVector<T>(byte* row, float* x, int start, int end) where T : struct, IDecode
    {
        Vector256<float> a0 = default, a1 = default;
        int i = start;
        for (; i + 16 <= end; i += 16)
        {
            a0 = Fma.MultiplyAdd(T.Load(row, i), Avx.LoadVector256(x + i), a0);
            a1 = Fma.MultiplyAdd(T.Load(row, i + 8), Avx.LoadVector256(x + i + 8), a1);
        }
        if (i < end) a0 = Fma.MultiplyAdd(T.Load(row, i), Avx.LoadVector256(x + i), a0);
        return Avx.Add(a0, a1);
    }

    /// DeepSeek's FP8: a scale per 128×128 block, applied to each block's vector of partial sums.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Fp8(WeightView w, float* x, int rows, float* y, int from, int to)
    {
        int n = w.InFeatures, blockColumns = (n + Fp8Block - 1) / Fp8Block, vectorEnd = n / 8 * 8;
        for (int o = from; o < to; o++)
        {
            var row = (byte*)w.Data + (long)o * n;
            var scales = (float*)w.Scale + (long)(o / Fp8Block) * blockColumns;
            for (int r = 0; r < rows; r++)
            {
                var xr = x + r * n;
                var acc = Vector256<float>.Zero;
                for (int b = 0; b < blockColumns; b++)
                {
                    int start = b * Fp8Block, end = Math.Min(vectorEnd, start + Fp8Block);
                    if (end > start) acc = Fma.MultiplyAdd(DotVector<Fp8Decode>(row, xr, start, end), Vector256.Create(scales[b] * Fp8Unbias), acc);
                }
                var sum = Vector256.Sum(acc);
                for (int j = vectorEnd; j < n; j++) sum += Dequantized(w, o, j) * xr[j];
                y[r * w.OutFeatures + o] += sum;
            }
        }
    }

    /// INT4 groups: each group's 32 weights decoded to (q − 8) in four vectors, its products with x
    /// scaled by the group's scale into one vector accumulator per x row.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Int4(WeightView w, float* x, int rows, float* y, int from, int to)
    {
        int n = w.InFeatures, groups = Int4Groups.Count(n), whole = n / Int4Groups.Size;
        var acc = stackalloc Vector256<float>[MaxRows];
        for (int o = from; o < to; o++)
        {
            var row = (byte*)w.Data + (long)o * groups * Int4Groups.BytesPerGroup;
            var scales = (ushort*)w.Scale + (long)o * groups;
            for (int r = 0; r < rows; r++) acc[r] = Vector256<float>.Zero;
            for (int g = 0; g < whole; g++)
            {
                var (w0, w1, w2, w3) = Int4Group(row + g * Int4Groups.BytesPerGroup);
                var scale = Vector256.Create(BitConverter.Int32BitsToSingle(scales[g] << 16));
                for (int r = 0; r < rows; r++)
                {
                    var xr = x + r * n + g * Int4Groups.Size;
                    var dot = Fma.MultiplyAdd(w0, Avx.LoadVector256(xr), Fma.MultiplyAdd(w1, Avx.LoadVector256(xr + 8),
                        Fma.MultiplyAdd(w2, Avx.LoadVector256(xr + 16), Avx.Multiply(w3, Avx.LoadVector256(xr + 24)))));
                    acc[r] = Fma.MultiplyAdd(dot, scale, acc[r]);
                }
            }
            for (int r = 0; r < rows; r++)
            {
                var sum = Vector256.Sum(acc[r]);
                for (int j = whole * Int4Groups.Size; j < n; j++) sum += Dequantized(w, o, j) * x[r * n + j];
                y[r * w.OutFeatures + o] += sum;
            }
        }
    }

    /// One INT4 group's 32 weights as (q − 8) in four vectors of eight, in column order (without its scale).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<float>, Vector256<float>, Vector256<float>, Vector256<float>) Int4Group(byte* group)
    {
        var low = Vector128.Create((byte)0x0F);
        var eight = Vector256.Create(8f);
        var bytes = Sse2.LoadVector128(group);
        var lowNibbles = Sse2.And(bytes, low);
        var highNibbles = Sse2.And(Sse2.ShiftRightLogical(bytes.AsUInt16(), 4).AsByte(), low);
        Vector256<float> Values(Vector128<byte> nibbles) => Avx.Subtract(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(nibbles)), eight);
        return (Values(lowNibbles), Values(Sse2.ShiftRightLogical128BitLane(lowNibbles, 8)), Values(highNibbles), Values(Sse2.ShiftRightLogical128BitLane(highNibbles, 8)));
    }

    /// The portable path: one weight at a time.
    private static void Scalar(WeightView w, float* x, int rows, float* y, int from, int to)
    {
        int n = w.InFeatures;
        for (int o = from; o < to; o++)
            for (int r = 0; r < rows; r++)
            {
                double sum = 0;
                for (int j = 0; j < n; j++) sum += Dequantized(w, o, j) * x[r * n + j];
                y[r * w.OutFeatures + o] += (float)sum;
            }
    }

    /// One weight as stored, decoded to float32 but without its row, block or group scale (FP8: times 2^-120,
    /// as the vector decoding gives it).
    private static float Unscaled(WeightView w, int o, int j)
    {
        long at = (long)o * w.InFeatures + j;
        return w.Format switch
        {
            StoredWeight.F32 => ((float*)w.Data)[at],
            StoredWeight.Bf16 => BitConverter.Int32BitsToSingle(((ushort*)w.Data)[at] << 16),
            StoredWeight.Int8 => ((sbyte*)w.Data)[at],
            StoredWeight.Fp8 => Fp8E4M3Value(((byte*)w.Data)[at]),
            _ => Int4Groups.Value((byte*)w.Data + (long)o * Int4Groups.Count(w.InFeatures) * Int4Groups.BytesPerGroup, j / Int4Groups.Size, j % Int4Groups.Size),
        };
    }

    /// One weight's value: what a dequantized float32 matrix would hold.
    private static float Dequantized(WeightView w, int o, int j) => Unscaled(w, o, j) * w.Format switch
    {
        StoredWeight.Int8 => ((float*)w.Scale)[o],
        StoredWeight.Fp8 => ((float*)w.Scale)[(long)(o / Fp8Block) * ((w.InFeatures + Fp8Block - 1) / Fp8Block) + j / Fp8Block] * Fp8Unbias,
        StoredWeight.Int4 => BitConverter.Int32BitsToSingle(((ushort*)w.Scale)[(long)o * Int4Groups.Count(w.InFeatures) + j / Int4Groups.Size] << 16),
        _ => 1f,
    };

    private static float Fp8E4M3Value(byte code) => BitConverter.Int32BitsToSingle((code & 0x7F) << 20 | (code & 0x80) << 24);
}

/// R1Sharp's int4 weight layout: each row is cut into groups of 32 weights (the last one zero-padded);
/// a group is 16 bytes whose low nibbles hold weights 0..15 and high nibbles weights 16..31, each stored
/// as q = round(w / scale) + 8 in 0..15 (values -8..7), with one bfloat16 scale per group.
public static unsafe class Int4Groups
{
    public const int Size = 32;
    public const int BytesPerGroup = 16;

    public static int Count(int inFeatures) => (inFeatures + Size - 1) / Size;

    public static float Value(byte* row, int group, int k) =>
        (k < 16 ? row[group * BytesPerGroup + k] & 0xF : row[group * BytesPerGroup + k - 16] >> 4) - 8;
}
