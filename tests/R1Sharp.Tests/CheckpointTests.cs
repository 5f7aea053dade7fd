using System.Text;
using R1Sharp.Checkpoints;
using R1Sharp.Quantization;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Tests;

public class CheckpointTests
{
    private static readonly Tensor Ids = tensor(new long[] { 3, 9, 27, 17, 51, 2 }).unsqueeze(0);

    [Fact]
    public void SaveThenLoadGivesIdenticalLogits()
    {
        using var model = TinyModels.Model();
        var dir = TestPaths.TempDir();
        ModelIO.Save(model, dir);
        using var loaded = ModelIO.Load(dir);
        using var _ = no_grad();
        Assert.Equal(0.0, Numerics.MaxAbsDiff(model.Forward(Ids), loaded.Forward(Ids)));
        Assert.Equal(["config.json", "model.safetensors"], Directory.GetFiles(dir).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void ShardedSaveThenLoadGivesIdenticalLogits()
    {
        using var model = TinyModels.Model();
        var dir = TestPaths.TempDir();
        ModelIO.Save(model, dir, maxShardBytes: 40_000);
        Assert.True(System.IO.File.Exists(Path.Combine(dir, "model.safetensors.index.json")));
        Assert.True(Directory.GetFiles(dir, "model-*-of-*.safetensors").Length > 2);
        using var loaded = ModelIO.Load(dir);
        using var _ = no_grad();
        Assert.Equal(0.0, Numerics.MaxAbsDiff(model.Forward(Ids), loaded.Forward(Ids)));
    }

    [Fact]
    public void Bf16CheckpointsLoadIntoFloat32AndKeepTheRouterBiasExact()
    {
        using var model = TinyModels.Model();
        var dir = TestPaths.TempDir();
        ModelIO.Save(model, dir, ScalarType.BFloat16);
        using (var file = SafeTensorsFile.Open(Path.Combine(dir, "model.safetensors")))
        {
            Assert.Equal("BF16", file.Entries["model.embed_tokens.weight"].DType);
            Assert.Equal("F32", file.Entries["model.layers.1.mlp.gate.e_score_correction_bias"].DType);
        }
        using var loaded = ModelIO.Load(dir);
        Assert.Equal(ScalarType.Float32, loaded.state_dict()["model.embed_tokens.weight"].dtype);
        var name = "model.layers.1.mlp.gate.e_score_correction_bias";
        Assert.Equal(0.0, Numerics.MaxAbsDiff(model.state_dict()[name], loaded.state_dict()[name]));
        using var _ = no_grad();
        Assert.True(Numerics.MaxAbsDiff(model.Forward(Ids), loaded.Forward(Ids)) < 0.5);
    }

    [Fact]
    public void SafeTensorsRoundTripKeepsNamesShapesTypesAndBytes()
    {
        var path = Path.Combine(TestPaths.TempDir(), "t.safetensors");
        var tensors = new List<(string, Tensor)>
        {
            ("a", arange(12, dtype: ScalarType.Float32).view(3, 4)),
            ("b", tensor(new long[] { -1, 5 })),
            ("c", arange(6, dtype: ScalarType.Float32).to_type(ScalarType.Float16).view(1, 2, 3)),
            ("scalar", tensor(2.5f)),
        };
        SafeTensorsWriter.Write(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });
        using var file = SafeTensorsFile.Open(path);
        Assert.Equal("pt", file.Metadata["format"]);
        foreach (var (name, t) in tensors)
        {
            using var read = file.Read(name);
            Assert.Equal(t.shape, read.shape);
            Assert.Equal(t.dtype, read.dtype);
            Assert.True(t.eq(read).all().item<bool>());
        }
    }

    [Fact]
    public void LoaderNamesEveryMissingUnexpectedAndMisShapedTensor()
    {
        using var model = TinyModels.Model();
        var dir = TestPaths.TempDir();
        var state = model.state_dict().Where(p => p.Key != "model.norm.weight")
            .Select(p => p.Key == "lm_head.weight" ? (p.Key, zeros(64, 31)) : (p.Key, p.Value))
            .Append(("model.layers.9.extra.weight", zeros(2))).ToList();
        model.Config.Save(dir);
        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), state);
        var error = Assert.Throws<R1SharpException>(() => ModelIO.Load(dir));
        Assert.Contains("missing: model.norm.weight", error.Message);
        Assert.Contains("unexpected: model.layers.9.extra.weight", error.Message);
        Assert.Contains("mis-shaped: lm_head.weight (checkpoint [64, 31], model [64, 32])", error.Message);
    }

    public static TheoryData<string, byte[], string> CorruptFiles() => new()
    {
        { "truncated", [1, 2, 3], "truncated" },
        { "header length past the end", [.. BitConverter.GetBytes(1000L), .. "{}"u8.ToArray()], "bad safetensors header length 1000" },
        { "header not JSON", File("not json at all"), "header is not valid JSON" },
        { "offsets past the end", File("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8), "past the end of the data" },
        { "overlapping tensors", File("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), "overlap" },
        { "unsupported dtype", File("{\"w\":{\"dtype\":\"C64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8), "unsupported dtype 'C64'" },
        { "size mismatch", File("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8), "needs 12" },
    };

    private static byte[] File(string header, int dataBytes = 0)
    {
        var json = Encoding.UTF8.GetBytes(header);
        return [.. BitConverter.GetBytes((long)json.Length), .. json, .. new byte[dataBytes]];
    }

    [Theory, MemberData(nameof(CorruptFiles))]
    public void CorruptSafeTensorsFilesGiveOneClearError(string what, byte[] bytes, string message)
    {
        var path = Path.Combine(TestPaths.TempDir(), "model.safetensors");
        System.IO.File.WriteAllBytes(path, bytes);
        var error = Assert.Throws<R1SharpException>(() => SafeTensorsFile.Open(path).Dispose());
        Assert.Contains(message, error.Message);
        Assert.Contains(path, error.Message);
        Assert.False(string.IsNullOrEmpty(what));
    }

    [Fact]
    public void Fp8DecodingFollowsTheE4M3Definition()
    {
        Assert.Equal(0f, Fp8E4M3.Decode(0x00));
        Assert.Equal(448f, Fp8E4M3.Decode(0x7E));
        Assert.Equal(-448f, Fp8E4M3.Decode(0xFE));
        Assert.True(float.IsNaN(Fp8E4M3.Decode(0x7F)));
        Assert.True(float.IsNaN(Fp8E4M3.Decode(0xFF)));
        Assert.Equal(1f, Fp8E4M3.Decode(0x38));
        Assert.Equal(MathF.Pow(2, -9), Fp8E4M3.Decode(0x01));            // smallest subnormal: 1/8 * 2^-6
        Assert.Equal(7f / 8 * MathF.Pow(2, -6), Fp8E4M3.Decode(0x07));    // largest subnormal
        Assert.Equal(MathF.Pow(2, -6), Fp8E4M3.Decode(0x08));            // smallest normal
        var finite = Enumerable.Range(0, 256).Select(b => Fp8E4M3.Decode((byte)b)).Where(float.IsFinite).ToArray();
        Assert.Equal(254, finite.Length);
        Assert.Equal(448f, finite.Max());
    }

    [Fact]
    public void Fp8BlockScalesCoverPartialEdgeBlocks()
    {
        var codes = full(200, 130, (byte)0x38, dtype: ScalarType.Byte);   // every value 1.0
        var scales = tensor(new float[] { 1, 2, 3, 4 }).view(2, 2);
        var w = Fp8E4M3.Dequantize(codes, scales, 128, 128);
        Assert.Equal(1f, w[127, 127].item<float>());
        Assert.Equal(2f, w[0, 128].item<float>());
        Assert.Equal(3f, w[128, 0].item<float>());
        Assert.Equal(4f, w[199, 129].item<float>());
    }
}
