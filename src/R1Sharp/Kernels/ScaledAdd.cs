using System.Runtime.Intrinsics;

namespace R1Sharp.Kernels;

/// target[i] += scale · source[i]: how fused kernels and MoE experts add their weighted outputs in place.
internal static unsafe class ScaledAdd
{
    public static void Run(float* source, float scale, float* target, long count)
    {
        long i = 0;
        var s = Vector256.Create(scale);
        for (; i + 8 <= count; i += 8) Vector256.Store(Vector256.MultiplyAddEstimate(Vector256.Load(source + i), s, Vector256.Load(target + i)), target + i);
        for (; i < count; i++) target[i] += scale * source[i];
    }
}
