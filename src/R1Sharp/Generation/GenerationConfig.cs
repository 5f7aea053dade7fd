using System.Text.Json;
using System.Text.Json.Nodes;

namespace R1Sharp.Generation;

/// A model folder's `generation_config.json`: the sampling defaults and end-of-sequence ids its
/// authors chose. Missing file or keys fall back to transformers' defaults.
public sealed record GenerationConfig
{
    public bool DoSample { get; init; }
    public double Temperature { get; init; } = 1.0;
    public double TopP { get; init; } = 1.0;
    public int TopK { get; init; } = 50;
    public double MinP { get; init; }
    public double RepetitionPenalty { get; init; } = 1.0;
    public int? MaxNewTokens { get; init; }
    public int[] EosTokenIds { get; init; } = [];

    public static GenerationConfig Load(string dir)
    {
        var path = Path.Combine(dir, "generation_config.json");
        if (!File.Exists(path)) return new GenerationConfig();
        JsonObject json;
        try { json = JsonNode.Parse(InputFile.ReadText(path, 1 << 20)) as JsonObject ?? throw new R1SharpException($"{path}: not a JSON object"); }
        catch (JsonException e) { throw new R1SharpException($"{path}: not valid JSON ({e.Message})"); }
        try
        {
            return new GenerationConfig
            {
                DoSample = (bool?)json["do_sample"] ?? false,
                Temperature = (double?)json["temperature"] ?? 1.0,
                TopP = (double?)json["top_p"] ?? 1.0,
                TopK = (int?)json["top_k"] ?? 50,
                MinP = (double?)json["min_p"] ?? 0,
                RepetitionPenalty = (double?)json["repetition_penalty"] ?? 1.0,
                MaxNewTokens = (int?)json["max_new_tokens"],
                EosTokenIds = json["eos_token_id"] switch
                {
                    JsonArray a => a.Select(x => (int)x!).ToArray(),
                    JsonValue v => [(int)v],
                    _ => [],
                },
            };
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException)
        {
            throw new R1SharpException($"{path}: a value has the wrong type ({e.Message})");
        }
    }

    /// Sampling options from these defaults (greedy unless do_sample), ending at `eos`.
    public SamplingOptions ToSamplingOptions(IEnumerable<int> eos, int maxNewTokens) => new()
    {
        Temperature = DoSample ? Temperature : 0,
        TopP = TopP,
        TopK = TopK,
        MinP = MinP,
        RepetitionPenalty = RepetitionPenalty,
        MaxNewTokens = MaxNewTokens ?? maxNewTokens,
        StopTokenIds = EosTokenIds.Concat(eos).Distinct().Select(i => (long)i).ToArray(),
    };
}
