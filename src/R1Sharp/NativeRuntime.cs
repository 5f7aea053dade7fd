using System.Runtime.InteropServices;

namespace R1Sharp;

/// Process-wide settings of the native libraries, for an entry point to apply before the first
/// TorchSharp call (the CLI, the test assemblies and the benchmarks do; a .NET application using
/// R1Sharp should too). glibc malloc mmaps large blocks and returns them to the kernel when freed, so
/// every big tensor (activations, attention scores, dequantized weights) pays page faults on first
/// touch; measured here, that made copies up to 20x slower than memory speed. Keeping freed memory in
/// the heap lets libtorch reuse it — up to 32 MB per block (glibc's largest mmap threshold): blocks
/// beyond that (logits over a 151,936-token vocabulary are 311 MB at 512 tokens) are mapped and
/// returned again, because a heap that never maps and never trims grew by ~125 MB per training step
/// with them (to 24 GB and the OOM killer in 200 steps), while it stays flat this way.
/// R1SHARP_MALLOC_TUNING=0 leaves malloc alone.
public static partial class NativeRuntime
{
    private const int TrimThreshold = -1, TopPad = -2, MmapThreshold = -3;
    private static bool _configured;

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int Mallopt(int parameter, int value);

    public static void Configure()
    {
        if (_configured || !OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("R1SHARP_MALLOC_TUNING") == "0") return;
        _configured = true;
        try
        {
            Mallopt(MmapThreshold, 32 << 20);
            Mallopt(TrimThreshold, int.MaxValue);
            Mallopt(TopPad, 64 << 20);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc: nothing to tune.
        }
    }
}
