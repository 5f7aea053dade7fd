using System.Text.Json.Nodes;
using LLama;
using LLama.Common;
using LLama.Native;
using R1Sharp.Checkpoints;
using R1Sharp.Gguf;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Tests;

/// GGUF exports run in llama.cpp (LLamaSharp 0.30.0) and compute what R1Sharp computes: logits of every
/// position for qwen2, llama (llama3 rope scaling, GQA) and a DeepSeek-V3 MoE (MLA, groups, correction
/// bias), and the tokenizer's ids for a real tokenizer.
public class GgufExportTests
{
    static GgufExportTests()
    {
        // Once per process, before llama.cpp loads: the AVX2 build, CPU only, errors only.
        NativeLibraryConfig.All.WithCuda(false).WithVulkan(false).WithAvx(AvxLevel.Avx2).WithAutoFallback(false)
            .WithLogCallback((level, message) => { if (level >= LLamaLogLevel.Error) Console.Error.Write(message); });
    }

    private static ModelParams Parameters(string gguf) => new(gguf)
    {
        GpuLayerCount = 0, ContextSize = 64, BatchSize = 64, Threads = 1, BatchThreads = 1,
        TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32, FlashAttention = false,   // float32 attention, as R1Sharp's
    };

    /// llama.cpp's logits [T, V] for `ids` from the start.
    private static float[][] LlamaCppLogits(string gguf, int[] ids)
    {
        var parameters = Parameters(gguf);
        using var weights = LLamaWeights.LoadFromFile(parameters);
        using var context = weights.CreateContext(parameters);
        var batch = new LLamaBatch();
        for (int i = 0; i < ids.Length; i++) batch.Add(ids[i], i, LLamaSeqId.Zero, true);
        Assert.Equal(DecodeResult.Ok, context.Decode(batch));
        return Enumerable.Range(0, ids.Length).Select(k => context.NativeHandle.GetLogitsIth(k).ToArray()).ToArray();
    }

    /// Max |Δlogit| between llama.cpp on the export and R1Sharp, relative to R1Sharp's largest logit.
    private static double MaxDifference(string dir, GgmlType type, int[] ids)
    {
        var gguf = Path.Combine(TestPaths.TempDir(), "model.gguf");
        GgufExport.Export(dir, gguf, type);
        var theirs = LlamaCppLogits(gguf, ids);
        using var model = ModelIO.Load(dir);
        using var noGrad = no_grad();
        var ours = model.Forward(tensor(ids.Select(i => (long)i).ToArray()).view(1, -1))[0].data<float>().ToArray();
        double max = 0;
        for (int t = 0; t < ids.Length; t++)
            for (int v = 0; v < theirs[t].Length; v++) max = Math.Max(max, Math.Abs(theirs[t][v] - ours[t * theirs[t].Length + v]));
        return max / Math.Max(1, ours.Max(Math.Abs));
    }

    private static readonly int[] Ids = [1, 5, 17, 42, 3, 64, 9, 33, 71, 2];

    [Theory]
    [InlineData("qwen2")]
    [InlineData("llama3")]
    [InlineData("llama-linear")]
    [InlineData("qwen3")]
    public void DenseExportsGiveR1SharpsLogitsInLlamaCpp(string fixture)
    {
        var dir = Path.Combine(TestPaths.Fixtures, "dense", fixture);
        var f32 = MaxDifference(dir, GgmlType.F32, Ids);
        Assert.True(f32 <= 1e-3, $"f32: max |Δlogit| {f32}");
        // llama.cpp also rounds the activations it multiplies with 8- and 4-bit weights, and these small
        // random models amplify rounding; a wrong block layout would be off by the logits' whole size.
        foreach (var (type, tolerance) in new[] { (GgmlType.F16, 5e-3), (GgmlType.Q8_0, 0.1) })
        {
            var difference = MaxDifference(dir, type, Ids);
            Assert.True(difference <= tolerance, $"{type}: max |Δlogit| {difference} of the largest logit");
        }
        Assert.True(double.IsFinite(MaxDifference(dir, GgmlType.Q4_0, Ids)));   // its blocks are checked byte for byte below
    }

    [Fact]
    public void DeepSeekMoeExportGivesR1SharpsLogitsInLlamaCpp()
    {
        var dir = TestPaths.TempDir();
        using (var model = TinyModels.Model(c => { c["hidden_size"] = 64; c["moe_intermediate_size"] = 32; c["intermediate_size"] = 64; c["qk_nope_head_dim"] = 32; }))
            ModelIO.Save(model, dir);
        var f32 = MaxDifference(dir, GgmlType.F32, Ids.Select(i => i % 64).ToArray());
        Assert.True(f32 <= 1e-4, $"f32: max |Δlogit| {f32} of the largest logit");
        // Quantized, a random MoE's logits move mostly through routing flips: the files must load and run.
        foreach (var type in new[] { GgmlType.Q8_0, GgmlType.Q4_0 })
            Assert.True(double.IsFinite(MaxDifference(dir, type, Ids.Select(i => i % 64).ToArray())));
    }

    /// Bytes computed independently (numpy, following ggml's quantize_row_q8_0_ref / quantize_row_q4_0_ref).
    [Fact]
    public void BlocksAreGgmlsReferenceQuantization()
    {
        var x = Enumerable.Range(0, 32).Select(i => (float)((i * 37 % 23 - 11) / 7.0)).ToArray();
        x[5] = -2.75f;
        Assert.Equal("8b25b714d835f9811adf3b00c521e64207cb28ec490dd22ef3b714d835f9be1adf3b", Convert.ToHexStringLower(GgmlBlocks.Encode(x, GgmlType.Q8_0)));
        Assert.Equal("8035a379d69b58b07a369c68b48a46ac68c5", Convert.ToHexStringLower(GgmlBlocks.Encode(x, GgmlType.Q4_0)));
    }

    [Fact]
    public void TheTokenizerTravelsWithTheModel()
    {
        var reference = TestPaths.ReferenceTokenizer("qwen2_5");
        var tokenizer = R1Sharp.Tokenization.PretrainedTokenizer.Load(reference);
        var dir = TestPaths.TempDir();
        var config = ModelConfig.Parse(new JsonObject
        {
            ["model_type"] = "qwen2", ["vocab_size"] = tokenizer.VocabSize, ["hidden_size"] = 16, ["intermediate_size"] = 32,
            ["num_hidden_layers"] = 1, ["num_attention_heads"] = 2, ["num_key_value_heads"] = 1, ["max_position_embeddings"] = 64,
            ["tie_word_embeddings"] = true,
        }.ToJsonString());
        using (var model = ModelIO.Create(config))
        {
            ModelIO.Initialize(model, 3);
            ModelIO.Save(model, dir);
        }
        foreach (var file in new[] { "tokenizer.json", "tokenizer_config.json" }) File.Copy(Path.Combine(reference, file), Path.Combine(dir, file));
        var gguf = Path.Combine(dir, "model.gguf");
        Assert.True(GgufExport.Export(dir, gguf, GgmlType.F16).Tokenizer);
        var parameters = Parameters(gguf);
        using var weights = LLamaWeights.LoadFromFile(parameters);
        using var context = weights.CreateContext(parameters);
        foreach (var text in new[] { "Hello, world! How's it going?", "深度求索发布了推理模型 R1。", "def f(x):\n    return x ** 2  # 1234567", "<|im_start|>user\nhi<|im_end|>" })
            Assert.Equal(tokenizer.Encode(text), context.Tokenize(text, addBos: false, special: true).Select(t => (int)t).ToArray());
    }
}
