using System.Runtime.Intrinsics;

namespace R1Sharp.Kernels;

/// A SwiGLU feed-forward, down(silu(gate·x) ⊙ up·x), for a few rows in one call: gate and up share one
/// split over the cores, the activation is computed in place, and the result is added, scaled, into
/// the output (so MoE experts accumulate their weighted outputs without a tensor op between them).
public static unsafe class SwiGlu
{
    /// y[r] += scale · down(silu(gate x[r] + gb) ⊙ (up x[r] + ub)) + db. `inner` holds rows × 2·inner floats.
    public static void Run(WeightView gate, WeightView up, WeightView down, float* gateBias, float* upBias, float* downBias,
        float* x, int rows, float* y, float scale, float* scratch)
    {
        int inner = gate.OutFeatures;
        float* g = scratch, u = scratch + rows * inner, h = scratch + 2 * rows * inner;
        FewRowMatmul.RunPair(gate, up, x, rows, gateBias, upBias, g, u);
        SiluTimes(g, u, h, (long)rows * inner);
        var d = scratch + 3 * rows * inner;
        FewRowMatmul.Run(down, h, rows, downBias, d);
        ScaledAdd.Run(d, scale, y, (long)rows * down.OutFeatures);
    }

    /// h = silu(g) ⊙ u = g / (1 + e^-g) · u.
    private static void SiluTimes(float* g, float* u, float* h, long n)
    {
        long i = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; i + 8 <= n; i += 8)
            {
                var v = Vector256.Load(g + i);
                Vector256.Store(v / (Vector256<float>.One + Vector256.Exp(-v)) * Vector256.Load(u + i), h + i);
            }
        for (; i < n; i++) h[i] = g[i] / (1 + MathF.Exp(-g[i])) * u[i];
    }

    /// Floats of scratch Run needs.
    public static long ScratchFloats(int rows, int inner, int hidden) => (long)rows * (3 * inner + hidden);
}
