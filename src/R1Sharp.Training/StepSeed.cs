namespace R1Sharp.Training;

/// Seeds derived from (seed, step, …) that are the same in every process. HashCode.Combine is
/// randomized per process, so it cannot make a run repeatable or a resumed run continue exactly.
public static class StepSeed
{
    public static int Of(params long[] parts)
    {
        var h = 0x9E3779B97F4A7C15UL;
        foreach (var part in parts) h = SplitMix64(h ^ (ulong)part);
        return (int)(h & int.MaxValue);
    }

    private static ulong SplitMix64(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }
}
