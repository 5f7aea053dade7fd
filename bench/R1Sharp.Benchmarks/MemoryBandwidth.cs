using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace R1Sharp.Benchmarks;

/// Read bandwidth of this machine's memory, the bound of a decode step: a 1 GiB buffer (past every
/// cache) summed by `threads` threads, best of five.
public static unsafe class MemoryBandwidth
{
    public static double Measure(int threads)
    {
        const long bytes = 1L << 30;
        var buffer = (float*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        try
        {
            new Span<byte>(buffer, (int)bytes).Fill(1);
            long floats = bytes / 4, per = floats / threads;
            var best = double.MaxValue;
            for (int round = 0; round < 5; round++)
            {
                var watch = Stopwatch.StartNew();
                var workers = Enumerable.Range(0, threads).Select(t => new Thread(() => Sum(buffer + t * per, per))).ToList();
                foreach (var w in workers) w.Start();
                foreach (var w in workers) w.Join();
                best = Math.Min(best, watch.Elapsed.TotalSeconds);
            }
            return bytes / best;
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
        }
    }

    /// Eight independent accumulators, so the adds never wait on each other and only memory limits the loop.
    private static float Sum(float* p, long count)
    {
        Vector256<float> a = default, b = default, c = default, d = default, e = default, f = default, g = default, h = default;
        for (long i = 0; i + 64 <= count; i += 64)
        {
            a += Vector256.Load(p + i); b += Vector256.Load(p + i + 8); c += Vector256.Load(p + i + 16); d += Vector256.Load(p + i + 24);
            e += Vector256.Load(p + i + 32); f += Vector256.Load(p + i + 40); g += Vector256.Load(p + i + 48); h += Vector256.Load(p + i + 56);
        }
        return Vector256.Sum(a + b + c + d + e + f + g + h);
    }
}
