using static TorchSharp.torch;

namespace R1Sharp.Generation;

/// One sequence in the decode engine: its prompt, how it samples, its limits, where it sits in the KV
/// cache and what it has generated. The engine advances it; callers read it.
public sealed class DecodeSequence
{
    /// `ownSeed`: sample with a generator of its own (a request's seed) rather than the engine's shared one.
    public DecodeSequence(IReadOnlyList<long> prompt, SamplingOptions options, int maxNewTokens, bool ignoreEos = false, long? ownSeed = null)
    {
        if (prompt.Count == 0) throw new R1SharpException("the prompt is empty");
        options.Validate();
        Prompt = [.. prompt];
        Options = options;
        MaxNewTokens = maxNewTokens;
        IgnoreEos = ignoreEos;
        Seeded = ownSeed is long seed && !options.Greedy ? new Generator((ulong)seed) : null;
    }

    public long[] Prompt { get; }
    public SamplingOptions Options { get; }
    public int MaxNewTokens { get; }
    /// vLLM's `ignore_eos` (benchmarks): generate MaxNewTokens whatever the model says.
    public bool IgnoreEos { get; }
    public Generator? Seeded { get; }
    public List<long> Generated { get; } = [];
    /// Its row in the engine's KV cache, -1 when it holds none.
    public int Slot { get; internal set; } = -1;
    /// Prompt tokens already in the cache (prefill may take several steps).
    public int Prefilled { get; internal set; }
    /// "stop" (a stop id, not appended) or "length" (its token limit or the context), once finished.
    public string? FinishReason { get; internal set; }
    /// The stop id it ended at (not appended to Generated).
    public long? StopToken { get; internal set; }

    public bool Finished => FinishReason is not null;
    public bool Prefilling => Prefilled < Prompt.Length;
    public int Length => Prompt.Length + Generated.Count;
    public long LastToken => Generated.Count > 0 ? Generated[^1] : Prompt[^1];
}

/// What one engine step runs: prompt chunks to prefill (a sequence and how many of its remaining prompt
/// tokens), and sequences to decode one token for. Decided by the caller (a scheduler's policy), run by the engine.
public sealed record StepPlan(IReadOnlyList<(DecodeSequence Sequence, int Tokens)> Prefill, IReadOnlyList<DecodeSequence> Decode)
{
    public static readonly StepPlan Empty = new([], []);
    public bool IsEmpty => Prefill.Count == 0 && Decode.Count == 0;
}
