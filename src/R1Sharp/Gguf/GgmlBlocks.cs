using System.Runtime.InteropServices;

namespace R1Sharp.Gguf;

/// Float32 rows to ggml's storage types, as ggml's reference quantizers compute them
/// (quantize_row_q8_0_ref, quantize_row_q4_0_ref): blocks of 32 along a row, one float16 scale each.
public static class GgmlBlocks
{
    public static byte[] Encode(ReadOnlySpan<float> values, GgmlType type) => type switch
    {
        GgmlType.F32 => MemoryMarshal.AsBytes(values).ToArray(),
        GgmlType.F16 => F16(values),
        GgmlType.Q8_0 => Q8_0(values),
        _ => Q4_0(values),
    };

    private static byte[] F16(ReadOnlySpan<float> values)
    {
        var output = new Half[values.Length];
        for (int i = 0; i < values.Length; i++) output[i] = (Half)values[i];   // round to nearest even
        return MemoryMarshal.AsBytes(output.AsSpan()).ToArray();
    }

    /// d = max|x| / 127, q = round(x / d) (halves away from zero, as C's roundf), stored d then 32 int8.
    private static byte[] Q8_0(ReadOnlySpan<float> values)
    {
        var output = new byte[values.Length / 32 * 34];
        for (int b = 0; b < values.Length / 32; b++)
        {
            var block = values.Slice(b * 32, 32);
            float amax = 0;
            foreach (var v in block) amax = Math.Max(amax, Math.Abs(v));
            var d = amax / 127;
            var id = d != 0 ? 1 / d : 0;
            var at = b * 34;
            BitConverter.TryWriteBytes(output.AsSpan(at, 2), (Half)d);
            for (int j = 0; j < 32; j++) output[at + 2 + j] = (byte)(sbyte)MathF.Round(block[j] * id, MidpointRounding.AwayFromZero);
        }
        return output;
    }

    /// d = (the signed value of largest magnitude) / −8, q = min(15, trunc(x / d + 8.5)); byte j holds
    /// element j in its low nibble and element j + 16 in its high one.
    private static byte[] Q4_0(ReadOnlySpan<float> values)
    {
        var output = new byte[values.Length / 32 * 18];
        for (int b = 0; b < values.Length / 32; b++)
        {
            var block = values.Slice(b * 32, 32);
            float amax = 0, max = 0;
            foreach (var v in block)
                if (Math.Abs(v) > amax) (amax, max) = (Math.Abs(v), v);
            var d = max / -8;
            var id = d != 0 ? 1 / d : 0;
            var at = b * 18;
            BitConverter.TryWriteBytes(output.AsSpan(at, 2), (Half)d);
            for (int j = 0; j < 16; j++)
            {
                var low = Math.Min(15, (int)(block[j] * id + 8.5f));
                var high = Math.Min(15, (int)(block[j + 16] * id + 8.5f));
                output[at + 2 + j] = (byte)(low | high << 4);
            }
        }
        return output;
    }
}
