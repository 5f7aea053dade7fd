using static TorchSharp.torch;

namespace R1Sharp.Kernels;

/// A decode step's matmuls run on the kernels' own threads; libtorch's OpenMP threads, left at the
/// machine's core count, would spin-wait beside them after every parallel region (GOMP's default)
/// and take a core. For the step, libtorch is given one thread (its remaining ops are small there) and
/// its count is restored after. Measured here on a 100M model with the kernels: ~38 → ~60 tokens/s
/// (OMP_WAIT_POLICY=PASSIVE does as much for decoding but makes small-op training ~30% slower).
public static class LibtorchThreads
{
    public static IDisposable? ForDecoding()
    {
        if (!KernelLinear.Enabled || !FewRowMatmul.Accelerated) return null;
        var previous = get_num_threads();
        if (previous <= 1) return null;
        set_num_threads(1);
        return new Restore(previous);
    }

    private sealed class Restore(int threads) : IDisposable
    {
        public void Dispose() => set_num_threads(threads);
    }
}
