using System.Runtime.InteropServices;

namespace R1Sharp.Kernels;

/// A per-thread scratch buffer for fused kernels' intermediates, grown as needed and reused, so a decode
/// step allocates nothing for them.
internal static unsafe class KernelScratch
{
    [ThreadStatic] private static float* _buffer;
    [ThreadStatic] private static long _capacity;

    public static float* Floats(long count)
    {
        if (count <= _capacity) return _buffer;
        if (_buffer is not null) NativeMemory.AlignedFree(_buffer);
        _capacity = Math.Max(count, _capacity * 2);
        _buffer = (float*)NativeMemory.AlignedAlloc((nuint)(_capacity * sizeof(float)), 64);
        return _buffer;
    }
}
