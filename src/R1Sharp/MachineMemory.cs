namespace R1Sharp;

/// Refuses, before allocating, what could never fit: a model, a cache or a buffer whose size comes
/// from a file or an option must fail with a sentence, not with the kernel's OOM killer.
public static class MachineMemory
{
    /// Physical memory available to this process (the container limit where there is one).
    public static long Total => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    public static void Require(double bytes, string what, string remedy = "")
    {
        if (bytes <= Total) return;
        throw new R1SharpException($"{what} needs {Gib(bytes)} but this machine has {Gib(Total)} of memory{(remedy.Length > 0 ? "; " + remedy : "")}");
    }

    public static string Gib(double bytes) => bytes >= 1 << 30 ? $"{bytes / (1L << 30):0.#} GiB" : $"{bytes / (1 << 20):0.#} MiB";
}
