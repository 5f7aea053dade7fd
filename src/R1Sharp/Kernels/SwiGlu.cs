using System.Runtime.Intrinsics;

namespace R1Sharp.Kernels;

/// One SwiGLU feed-forward of a fused call: its weights and biases, its input rows (contiguous), and where
/// each output row is added, scaled: row r goes to Y + target(r)·hidden times scale(r), where target(r)
/// is Targets[r] (or r) and scale(r) is Scales[r] (or Scale).
public readonly unsafe struct SwiGluCall(WeightView gate, WeightView up, WeightView down, float* x, int rows, float* y, float scale,
    int* targets = null, float* scales = null, float* gateBias = null, float* upBias = null, float* downBias = null)
{
    public WeightView Gate { get; } = gate;
    public WeightView Up { get; } = up;
    public WeightView Down { get; } = down;
    public float* X { get; } = x;
    public int Rows { get; } = rows;
    public float* Y { get; } = y;
    public float Scale { get; } = scale;
    public int* Targets { get; } = targets;
    public float* Scales { get; } = scales;
    public float* GateBias { get; } = gateBias;
    public float* UpBias { get; } = upBias;
    public float* DownBias { get; } = downBias;
}

/// SwiGLU feed-forwards, down(silu(gate·x) ⊙ up·x), for a few rows: every call's gate and up in one split
/// over the cores, the activation in place, every call's down in a second split, then each output added,
/// scaled, where it belongs — so a dense MLP or all of a token's experts (and the shared one) wait for the
/// cores twice, and MoE outputs accumulate without a tensor op between them.
public static unsafe class SwiGlu
{
    public static void Run(SwiGluCall[] calls)
    {
        long floats = 0;
        foreach (var c in calls) floats += (long)c.Rows * (3L * c.Gate.OutFeatures + c.Down.OutFeatures);
        var scratch = KernelScratch.Floats(floats);
        var ups = new Matmul[2 * calls.Length];
        var downs = new Matmul[calls.Length];
        var offset = scratch;
        for (int i = 0; i < calls.Length; i++)
        {
            var c = calls[i];
            long inner = (long)c.Rows * c.Gate.OutFeatures;
            ups[2 * i] = new Matmul(c.Gate, c.X, c.Rows, c.GateBias, offset);
            ups[2 * i + 1] = new Matmul(c.Up, c.X, c.Rows, c.UpBias, offset + inner);
            downs[i] = new Matmul(c.Down, offset + 2 * inner, c.Rows, c.DownBias, offset + 3 * inner);
            offset += 3 * inner + (long)c.Rows * c.Down.OutFeatures;
        }
        FewRowMatmul.RunMany(ups);
        for (int i = 0; i < calls.Length; i++) SiluTimes(ups[2 * i].Y, ups[2 * i + 1].Y, downs[i].X, (long)calls[i].Rows * calls[i].Gate.OutFeatures);
        FewRowMatmul.RunMany(downs);
        for (int i = 0; i < calls.Length; i++)
        {
            var c = calls[i];
            int hidden = c.Down.OutFeatures;
            for (int r = 0; r < c.Rows; r++)
                ScaledAdd.Run(downs[i].Y + (long)r * hidden, c.Scales is null ? c.Scale : c.Scales[r], c.Y + (long)(c.Targets is null ? r : c.Targets[r]) * hidden, hidden);
        }
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
}
