using System.Text.Json.Nodes;
using R1Sharp.Checkpoints;
using R1Sharp.Generation;
using R1Sharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Tests;

/// Sliding-window and local+global attention with attention sinks, and the rolling KV cache, for
/// the DeepSeek family (MLA). The dense family is checked against numpy in DenseModelTests.
public class LongContextTests
{
    private static DeepSeekForCausalLM Model(int? window, int sinks = 0, int layers = 3, string[]? types = null) => TinyModels.Model(c =>
    {
        c["num_hidden_layers"] = layers;
        if (window is int w) c["sliding_window"] = w;
        c["num_sink_tokens"] = sinks;
        if (types is not null) c["layer_types"] = new JsonArray(types.Select(t => (JsonNode)t).ToArray());
    });

    private static Tensor Ids(int length, int seed = 3) => randint(0, 64, [1, length], generator: new Generator((ulong)seed), dtype: ScalarType.Int64);

    [Fact]
    public void AWindowAsLongAsTheSequenceIsFullAttention()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = Ids(20);
        using var full = Model(null);
        using var windowed = Model(20, sinks: 0);
        Numerics.AssertClose(full.Forward(ids), windowed.Forward(ids), 1e-5, "window = sequence length");
    }

    [Fact]
    public void ALocalQuerySeesOnlyItsWindowAndTheSinks()
    {
        // One layer: the output at a position depends only on the tokens it attends to.
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var model = Model(6, sinks: 2, layers: 1);
        var ids = Ids(16);
        var logits = model.Forward(ids);
        const int query = 12;                                   // sees 0, 1 (sinks) and 9..12 (6 keys in all)
        var hidden = ids.clone();
        foreach (var p in new[] { 2, 5, 8 }) hidden[0, p] = (hidden[0, p] + 7) % 64;
        Numerics.AssertClose(logits[0, query], model.Forward(hidden)[0, query], 1e-6, "tokens outside the window and sinks changed");
        foreach (var p in new[] { 1, 9 })
        {
            var visible = ids.clone();
            visible[0, p] = (visible[0, p] + 7) % 64;
            Assert.True(Numerics.MaxAbsDiff(logits[0, query], model.Forward(visible)[0, query]) > 1e-4, $"changing visible position {p} changed nothing");
        }
    }

    [Theory]
    [InlineData(AttentionMode.Absorbed, 1)]
    [InlineData(AttentionMode.Absorbed, 5)]
    [InlineData(AttentionMode.Naive, 3)]
    public void TheRollingCacheEqualsRecomputingAcrossTheWrap(AttentionMode mode, int chunk)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var model = Model(5, sinks: 2, types: ["sliding_attention", "full_attention", "sliding_attention"]);
        model.AttentionMode = mode;
        var ids = Ids(30);
        var full = model.Forward(ids);
        using var cache = model.CreateCache(1, 64);
        Assert.Equal(5, cache.RingCapacity);
        var pieces = new List<Tensor>();
        for (long start = 0; start < 30; start += chunk) pieces.Add(model.Forward(ids.narrow(1, start, Math.Min(chunk, 30 - start)), cache));
        Numerics.AssertClose(full, cat(pieces, 1), 1e-4, $"{mode}, chunks of {chunk}");
    }

    [Fact]
    public void LocalLayersHoldConstantMemory()
    {
        using var local = Model(8, sinks: 4, types: ["sliding_attention", "sliding_attention", "sliding_attention"]);
        using var mixed = Model(8, sinks: 4, types: ["sliding_attention", "full_attention", "sliding_attention"]);
        using (var small = local.CreateCache(1, 64))
        using (var large = local.CreateCache(1, 128))
            Assert.Equal(small.Bytes, large.Bytes);                 // all-local: independent of the length
        using (var small = mixed.CreateCache(1, 64))
        using (var large = mixed.CreateCache(1, 128))
        {
            Assert.True(large.Bytes > small.Bytes);                  // the global layer grows
            Assert.Equal(large.Bytes, large.BytesFor(128));          // a full row fills the cache
            Assert.True(large.BytesFor(100) > large.BytesFor(50));
        }
        using (var ring = local.CreateCache(2, 128))
        {
            Assert.Equal(ring.BytesFor(8), ring.BytesFor(100));      // what a sequence holds stops at the window
            Assert.True(ring.BytesFor(4) < ring.BytesFor(8));
            Assert.Equal(ring.Bytes, 2 * ring.BytesFor(100));
        }

        using var cache = local.CreateCache(1, 128);
        using var noGrad = no_grad();
        var token = tensor(new long[] { 5 }).view(1, 1);
        long? before = null;
        for (int step = 0; step < 100; step++)
        {
            using (var scope = NewDisposeScope()) local.Forward(token, cache);
            if (step == 10) before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        }
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        Assert.Equal(100, cache.Lengths[0]);
    }

    [Fact]
    public void WindowConfigurationIsValidatedAndQwen2FollowsTransformers()
    {
        Assert.Contains("sliding_window must be > 0", Assert.Throws<R1SharpException>(() => TinyModels.Config(c => c["sliding_window"] = 0)).Message);
        Assert.Contains("layer_types must name all", Assert.Throws<R1SharpException>(() =>
            TinyModels.Config(c => { c["sliding_window"] = 4; c["layer_types"] = new JsonArray("full_attention"); })).Message);
        var qwen = File.ReadAllText(Path.Combine(TestPaths.Fixtures, "dense", "qwen2-swa", "config.json"));
        var off = (DenseConfig)ModelConfig.Parse(qwen.Replace("\"use_sliding_window\": true", "\"use_sliding_window\": false"));
        Assert.Null(off.Window);                                     // Qwen2: sliding_window alone does nothing
        var on = (DenseConfig)ModelConfig.Parse(qwen);
        Assert.False(on.IsLocalLayer(0));                            // layers below max_window_layers are global
        Assert.True(on.IsLocalLayer(1));
    }

    [Fact]
    public void TrainingAndInspectWorkWithWindows()
    {
        var dir = TestPaths.TempDir();
        var data = Path.Combine(dir, "data");
        Assert.Equal(0, CliTests.Run("prepare", "--builtin", "arithmetic", "--examples", "200", "--out", data).Code);
        var model = TinyModels.ConfigJson(c =>
        {
            c["vocab_size"] = 272; c["max_position_embeddings"] = 128; c["sliding_window"] = 8; c["num_sink_tokens"] = 2;
            c["layer_types"] = new JsonArray("sliding_attention", "full_attention", "sliding_attention");
        });
        File.WriteAllText(Path.Combine(dir, "model.json"), model.ToJsonString());
        File.WriteAllText(Path.Combine(dir, "train.json"), """
            {"name": "local", "model": "model.json", "data": {"a": {"path": "data"}}, "steps": 4, "batch_size": 2, "seq_len": 32,
             "eval_every": 4, "checkpoint_every": 4, "plot_every": 4, "eval_batches": 1}
            """);
        var run = Path.Combine(dir, "run");
        var train = CliTests.Run("train", "--config", Path.Combine(dir, "train.json"), "--out", run);
        Assert.True(train.Code == 0, train.Stderr);
        var checkpoint = Path.Combine(run, "checkpoints", "step-000004");
        var saved = ModelConfig.Load(checkpoint);
        Assert.Equal(8, saved.Window);
        Assert.True(saved.IsLocalLayer(0) && !saved.IsLocalLayer(1));

        var inspect = CliTests.Run("inspect", checkpoint);
        Assert.True(inspect.Code == 0, inspect.Stderr);
        Assert.Contains("KV cache at 4k / 32k / 128k tokens", inspect.Stdout);
        Assert.Contains("local layers (window / sinks)", inspect.Stdout);
    }
}
