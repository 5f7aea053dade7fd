using System.Runtime.InteropServices;

namespace R1Sharp;

/// On glibc, large blocks are mmap'd and returned to the kernel when freed, so every big tensor
/// (activations, attention scores, dequantized weights) pays page faults on first touch; measured
/// here, that made copies up to 20x slower than memory speed. Keeping freed memory in the heap
/// lets libtorch reuse it. Set R1SHARP_MALLOC_TUNING=0 to leave malloc alone.
internal static partial class NativeMemoryTuning
{
    private const int TrimThreshold = -1, TopPad = -2, MmapMax = -4;

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int Mallopt(int parameter, int value);

    internal static void Apply()
    {
        if (_applied) return;
        _applied = true;
        ApplyOnce();
    }

    private static bool _applied;

    private static void ApplyOnce()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("R1SHARP_MALLOC_TUNING") == "0") return;
        try
        {
            Mallopt(MmapMax, 0);
            Mallopt(TrimThreshold, int.MaxValue);
            Mallopt(TopPad, 64 << 20);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc: nothing to tune.
        }
    }
}
