using LLama;
using LLama.Common;
using LLama.Native;

namespace R1Sharp.Benchmarks;

/// llama.cpp through LLamaSharp 0.30.0: a GGUF file on the CPU with a fixed thread count, evaluated on
/// token ids. The native build is chosen once per process (AVX2 as the comparisons name it, or AVX-512).
public sealed class LlamaCpp : IDisposable
{
    private readonly LLamaWeights _weights;
    private readonly LLamaContext _context;
    private int _position;

    public static void UseBuild(AvxLevel level) =>
        NativeLibraryConfig.All.WithCuda(false).WithVulkan(false).WithAvx(level).WithAutoFallback(false)
            .WithLogCallback((logLevel, message) => { if (logLevel >= LLamaLogLevel.Error) Console.Error.Write(message); });

    public LlamaCpp(string gguf, int threads, uint context = 2048)
    {
        var parameters = new ModelParams(gguf)
        {
            GpuLayerCount = 0, ContextSize = context, BatchSize = context, UBatchSize = 512, Threads = threads, BatchThreads = threads,
            // A float32 KV cache (llama.cpp's default is float16), so the logits compare with R1Sharp's float32 ones.
            TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32, FlashAttention = false,
        };
        _weights = LLamaWeights.LoadFromFile(parameters);
        _context = _weights.CreateContext(parameters);
    }

    public int VocabSize => _context.Vocab.Count;

    public void Reset()
    {
        _context.NativeHandle.MemoryClear();
        _position = 0;
    }

    /// Evaluates `ids` after what is cached; returns the logits of every position [ids.Length][vocab].
    public float[][] Evaluate(IReadOnlyList<int> ids, bool allLogits = true)
    {
        var batch = new LLamaBatch();
        for (int i = 0; i < ids.Count; i++) batch.Add(ids[i], _position + i, LLamaSeqId.Zero, allLogits || i == ids.Count - 1);
        if (_context.Decode(batch) != DecodeResult.Ok) throw new R1SharpException("llama.cpp: decode failed");
        _position += ids.Count;
        return allLogits
            ? Enumerable.Range(0, ids.Count).Select(k => _context.NativeHandle.GetLogitsIth(k).ToArray()).ToArray()
            : [_context.NativeHandle.GetLogitsIth(ids.Count - 1).ToArray()];
    }

    public void Dispose()
    {
        _context.Dispose();
        _weights.Dispose();
    }
}
