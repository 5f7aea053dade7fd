using System.Diagnostics;
using System.Text.Json.Nodes;
using R1Sharp.Checkpoints;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Diagnostics;

/// The same weights with full attention, sliding-window attention in every layer, and local+global
/// (every other layer local): chunked prefill and decode speed and KV-cache memory at several lengths.
public static class LongContextBenchmark
{
    public sealed record Row(string Variant, int Length, double PrefillTokensPerSecond, double DecodeTokensPerSecond,
        long CacheBytes, long LocalLayerCacheBytes, long GlobalLayerCacheBytes);

    public static List<Row> Run(string dir, IReadOnlyList<int> lengths, int window, int sinks, int decodeSteps, int chunk)
    {
        var baseConfig = ModelConfig.Load(dir);
        var needed = lengths.Max() + decodeSteps + 1;
        if (needed > baseConfig.MaxPositionEmbeddings)
            throw new R1SharpException($"length {lengths.Max()} + {decodeSteps} decode steps exceeds max_position_embeddings {baseConfig.MaxPositionEmbeddings}");
        var layers = baseConfig.NumHiddenLayers;
        var variants = new (string Name, string[]? Types)[]
        {
            ("full", null),
            ("sliding_window", Enumerable.Repeat("sliding_attention", layers).ToArray()),
            ("local_global", Enumerable.Range(0, layers).Select(i => i % 2 == 0 ? "sliding_attention" : "full_attention").ToArray()),
        };
        var rows = new List<Row>();
        foreach (var (name, types) in variants)
        {
            using var model = ModelIO.Load(dir, WeightFormat.F32, WithWindow(baseConfig, types, window, sinks));
            foreach (var length in lengths) rows.Add(Measure(model, name, length, decodeSteps, chunk));
        }
        return rows;
    }

    private static ModelConfig WithWindow(ModelConfig config, string[]? types, int window, int sinks)
    {
        var json = config.Json.DeepClone().AsObject();
        foreach (var key in new[] { "sliding_window", "use_sliding_window", "max_window_layers", "layer_types", "num_sink_tokens" }) json.Remove(key);
        if (types is not null)
        {
            json["sliding_window"] = window;
            json["use_sliding_window"] = true;
            json["num_sink_tokens"] = sinks;
            json["layer_types"] = new JsonArray(types.Select(t => (JsonNode)t).ToArray());
        }
        return ModelConfig.Parse(json.ToJsonString());
    }

    private static Row Measure(CausalLM model, string variant, int length, int decodeSteps, int chunk)
    {
        using var noGrad = no_grad();
        var ids = randint(0, model.Config.VocabSize, [1, length], generator: new Generator(0), dtype: ScalarType.Int64);
        using var cache = model.CreateCache(1, length + decodeSteps + 1);
        var watch = Stopwatch.StartNew();
        var next = zeros(1, 1, dtype: ScalarType.Int64);
        for (int start = 0; start < length; start += chunk)
        {
            using var scope = NewDisposeScope();
            var logits = model.Forward(ids.narrow(1, start, Math.Min(chunk, length - start)), cache, lastOnly: true);
            next.copy_(logits[.., -1].argmax(-1, keepdim: true));
        }
        var prefill = watch.Elapsed.TotalSeconds;
        var steps = new double[decodeSteps];
        for (int i = 0; i < decodeSteps; i++)
        {
            using var scope = NewDisposeScope();
            watch.Restart();
            next.copy_(model.Forward(next, cache)[.., -1].argmax(-1, keepdim: true));
            steps[i] = watch.Elapsed.TotalSeconds;
        }
        Array.Sort(steps);
        var decode = steps[decodeSteps / 2];   // median step: robust to a noisy machine
        var perLayer = Enumerable.Range(0, cache.Layers).Select(cache.LayerBytes).ToArray();
        var local = Enumerable.Range(0, model.Config.NumHiddenLayers).Where(model.Config.IsLocalLayer).Select(l => perLayer[l]).DefaultIfEmpty(0).Max();
        var global = Enumerable.Range(0, model.Config.NumHiddenLayers).Where(l => !model.Config.IsLocalLayer(l)).Select(l => perLayer[l]).DefaultIfEmpty(0).Max();
        return new Row(variant, length, length / prefill, 1 / decode, cache.Bytes, local, global);
    }
}
