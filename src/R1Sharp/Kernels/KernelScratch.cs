using System.Runtime.InteropServices;

namespace R1Sharp.Kernels;

/// Per-thread scratch buffers for kernels' intermediates, grown as needed and reused, so a decode step
/// allocates nothing for them. Each use has its own slot, since a fused kernel's intermediates are live
/// while the matmuls inside it quantize their inputs, and a caller's gathered rows while the kernel runs.
internal static unsafe class KernelScratch
{
    public enum Slot { Intermediates, Gathered, Input }

    [ThreadStatic] private static byte*[]? _buffers;
    [ThreadStatic] private static long[]? _capacities;

    public static float* Floats(long count, Slot slot = Slot.Intermediates) => (float*)Bytes(slot, count * sizeof(float));

    public static byte* Bytes(Slot slot, long count)
    {
        _buffers ??= new byte*[3];
        _capacities ??= new long[3];
        int s = (int)slot;
        if (count <= _capacities[s]) return _buffers[s];
        if (_buffers[s] is not null) NativeMemory.AlignedFree(_buffers[s]);
        _capacities[s] = Math.Max(count, _capacities[s] * 2);
        _buffers[s] = (byte*)NativeMemory.AlignedAlloc((nuint)_capacities[s], 64);
        return _buffers[s];
    }
}
