namespace R1Sharp.Generation;

/// How the next token is chosen. Temperature 0 (or Greedy) picks the argmax and ignores the seed.
public sealed record SamplingOptions
{
    public double Temperature { get; init; } = 1.0;
    public int TopK { get; init; }
    public double TopP { get; init; } = 1.0;
    public double MinP { get; init; }
    public double RepetitionPenalty { get; init; } = 1.0;
    /// OpenAI's penalties on generated tokens: subtract presence once, frequency per occurrence.
    public double PresencePenalty { get; init; }
    public double FrequencyPenalty { get; init; }
    public long? Seed { get; init; }
    public int MaxNewTokens { get; init; } = 128;
    public IReadOnlyCollection<long> StopTokenIds { get; init; } = [];
    /// Text that ends generation (not included in the output); applied by TextGenerator.
    public IReadOnlyList<string> StopStrings { get; init; } = [];
    /// Report each sampled token's log-probability and this many alternatives (0–20); null reports none.
    public int? Logprobs { get; init; }

    public bool Greedy => Temperature <= 0;

    public const int MaxTopLogprobs = 20;

    public static SamplingOptions GreedyDecoding(int maxNewTokens) => new() { Temperature = 0, MaxNewTokens = maxNewTokens };

    public void Validate()
    {
        if (Temperature < 0 || double.IsNaN(Temperature)) throw new R1SharpException("temperature must be >= 0");
        if (TopK < 0) throw new R1SharpException("top_k must be >= 0");
        if (!(TopP > 0 && TopP <= 1)) throw new R1SharpException("top_p must be in (0, 1]");
        if (!(MinP >= 0 && MinP < 1)) throw new R1SharpException("min_p must be in [0, 1)");
        if (!(RepetitionPenalty > 0)) throw new R1SharpException("repetition_penalty must be > 0");
        if (!(PresencePenalty is >= -2 and <= 2)) throw new R1SharpException("presence_penalty must be in [-2, 2]");
        if (!(FrequencyPenalty is >= -2 and <= 2)) throw new R1SharpException("frequency_penalty must be in [-2, 2]");
        if (MaxNewTokens < 0) throw new R1SharpException("max new tokens must be >= 0");
        if (StopStrings.Any(string.IsNullOrEmpty)) throw new R1SharpException("stop strings must not be empty");
        if (Logprobs is < 0 or > MaxTopLogprobs) throw new R1SharpException($"top logprobs must be in [0, {MaxTopLogprobs}]");
    }
}
