using System.Text.Json.Nodes;
using R1Sharp.Checkpoints;
using R1Sharp.Models;
using R1Sharp.Quantization;
using static TorchSharp.torch;

namespace R1Sharp.Tests;

public class QuantizationTests
{
    /// Independent reference: the nearest finite E4M3 value by brute force, ties to the even code.
    private static byte ReferenceEncode(float x)
    {
        if (float.IsNaN(x)) return 0x7F;
        var sign = float.IsNegative(x) ? 0x80 : 0;
        var magnitude = Math.Min(Math.Abs(x), 448f);
        byte best = 0;
        var bestDistance = double.MaxValue;
        for (int code = 0; code < 0x7F; code++)
        {
            var distance = Math.Abs((double)Fp8E4M3.Decode((byte)code) - magnitude);
            if (distance < bestDistance || (distance == bestDistance && code % 2 == 0)) (best, bestDistance) = ((byte)code, distance);
        }
        return (byte)(best | sign);
    }

    [Fact]
    public void EncodingEveryBitPatternsValueGivesThatPatternBack()
    {
        var codes = Enumerable.Range(0, 256).Select(b => (byte)b).ToArray();
        var decoded = codes.Select(Fp8E4M3.Decode).ToArray();
        var encoded = Fp8E4M3.EncodeTensor(tensor(decoded)).data<byte>().ToArray();
        var viaTable = Fp8E4M3.DecodeTensor(tensor(codes)).data<float>().ToArray();
        for (int b = 0; b < 256; b++)
        {
            var expected = b is 0x7F or 0xFF ? (byte)0x7F : (byte)b;   // both NaN codes encode as the canonical NaN
            Assert.True(expected == encoded[b], $"code 0x{b:X2} (value {decoded[b]}) encoded as 0x{encoded[b]:X2}");
            Assert.True(decoded[b].Equals(viaTable[b]), $"table decode of 0x{b:X2}");
        }
    }

    [Fact]
    public void EncodingRoundsToNearestEvenAndSaturates()
    {
        var random = new Random(3);
        var values = new List<float> { 1000f, -1000f, 448f, 464f, 480f, -0f, 1.0625f, 1.1875f, MathF.Pow(2, -10), 3 * MathF.Pow(2, -11), 1e-9f, float.NaN };
        for (int i = 0; i < 2000; i++) values.Add((float)((random.NextDouble() * 2 - 1) * Math.Pow(2, random.Next(-12, 10))));
        for (int b = 0; b < 0x7E; b++) values.Add((Fp8E4M3.Decode((byte)b) + Fp8E4M3.Decode((byte)(b + 1))) / 2);   // exact midpoints
        var encoded = Fp8E4M3.EncodeTensor(tensor(values.ToArray())).data<byte>().ToArray();
        for (int i = 0; i < values.Count; i++)
            Assert.True(ReferenceEncode(values[i]) == encoded[i], $"{values[i]:R}: expected 0x{ReferenceEncode(values[i]):X2}, got 0x{encoded[i]:X2}");
    }

    [Fact]
    public void BlockQuantizationScalesEachBlockByItsOwnMaximumIncludingPartialEdges()
    {
        var w = randn([200, 130], generator: new Generator(1));
        w[199, 129] = tensor(-9f);
        var (codes, scaleInv) = Fp8E4M3.Quantize(w, 128, 128);
        Assert.Equal(new long[] { 2, 2 }, scaleInv.shape);
        Assert.Equal(9f / 448, scaleInv[1, 1].item<float>(), 6);
        Assert.Equal(w.narrow(0, 0, 128).narrow(1, 0, 128).abs().max().item<float>() / 448, scaleInv[0, 0].item<float>(), 6);
        var back = Fp8E4M3.Dequantize(codes, scaleInv, 128, 128);
        Assert.Equal(-9f, back[199, 129].item<float>());
        var relative = ((back - w).abs() / w.abs().clamp(min: 1e-3)).median().item<float>();
        Assert.True(relative < 0.04, $"median relative error {relative}");
    }

    [Fact]
    public void Int8QuantizationUsesOneScalePerOutputChannel()
    {
        var w = randn([5, 300], generator: new Generator(2));
        var (q, scale) = Int8Channel.Quantize(w);
        Assert.Equal(ScalarType.Int8, q.dtype);
        Numerics.AssertClose(w.abs().amax([1L]) / 127, scale, 1e-7, "per-channel scales");
        Numerics.AssertClose(w, Int8Channel.Dequantize(q, scale), scale.max().item<float>() / 2 + 1e-6, "int8 round trip");
    }

    [Fact]
    public void OfficialFp8CaseGivesTheSameLogitsWithEightBitWeightsInMemory()
    {
        var dir = Path.Combine(TestPaths.Conformance, "v3_fp8_blocks");
        using var dequantized = ModelIO.Load(dir);
        using var eightBit = ModelIO.Load(dir, WeightFormat.Fp8);
        var weights = eightBit.state_dict();
        Assert.Equal(ScalarType.Byte, weights["model.layers.1.mlp.experts.3.gate_proj.weight"].dtype);
        Assert.Equal(new long[] { 2, 2 }, weights["model.layers.0.mlp.gate_proj.weight_scale_inv"].shape);
        using var _ = no_grad();
        var ids = ConformanceTests.Ids(System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "expected.json")))
            .RootElement.GetProperty("sequences")[0].GetProperty("input_ids")).unsqueeze(0);
        var a = dequantized.Forward(ids);
        var b = eightBit.Forward(ids);
        Assert.True(Numerics.MaxAbsDiff(a, b) <= 1e-5 * a.abs().max().item<float>(), $"fp8 in memory vs dequantized: {Numerics.MaxAbsDiff(a, b)}");
    }

    public static TheoryData<string, WeightFormat> SavedFormats() => new() { { "fp8", WeightFormat.Fp8 }, { "int8", WeightFormat.Int8 }, { "int4", WeightFormat.Int4 } };

    [Theory, MemberData(nameof(SavedFormats))]
    public void QuantizedModelsSaveAndLoadBackAsTheirDequantizedTwin(string name, WeightFormat format)
    {
        // hidden 160 and intermediate 200: several blocks with partial edges in both directions
        using var original = TinyModels.Model(c => { c["hidden_size"] = 160; c["intermediate_size"] = 200; c["moe_intermediate_size"] = 136; c["q_lora_rank"] = 144; c["kv_lora_rank"] = 136; }, std: 0.05);
        var source = TestPaths.TempDir();
        ModelIO.Save(original, source);
        var target = TestPaths.TempDir();
        using (var quantized = ModelIO.Load(source, format)) ModelIO.Save(quantized, target, ScalarType.BFloat16);

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(target, "config.json")))!;
        Assert.Equal(name, (string?)config["quantization_config"]!["quant_method"]);
        using (var file = SafeTensorsFile.Open(Path.Combine(target, "model.safetensors")))
        {
            var proj = file.Entries["model.layers.0.mlp.gate_proj.weight"];
            Assert.Equal(name switch { "fp8" => "F8_E4M3", "int8" => "I8", _ => "U8" }, proj.DType);
            var scaleEntry = file.Entries["model.layers.0.mlp.gate_proj.weight" + (name == "fp8" ? "_scale_inv" : "_scale")];
            Assert.Equal(name switch { "fp8" => new long[] { 2, 2 }, "int8" => [200], _ => [200, 5] }, scaleEntry.Shape);   // int4: a scale per 32 of 160 inputs
            Assert.Equal(name == "fp8" ? "BF16" : "I8", file.Entries["model.embed_tokens.weight"].DType);   // int8 keeps the table per row too
            Assert.Equal(name == "fp8" ? "BF16" : "I8", file.Entries["lm_head.weight"].DType);
            Assert.Equal("F32", file.Entries["model.layers.1.mlp.gate.e_score_correction_bias"].DType);
        }

        using var kept = ModelIO.Load(target, format);
        using var twin = ModelIO.Load(target);
        using var _ = no_grad();
        var ids = tensor(new long[] { 3, 9, 27, 17, 51, 2, 40, 8 }).unsqueeze(0);
        var a = twin.Forward(ids);
        var b = kept.Forward(ids);
        var scale = a.abs().max().item<float>();
        // int8/int4 kernels round activations to int16 (a relative 1.5e-5 per element); fp8 reads them as float
        Assert.True(Numerics.MaxAbsDiff(a, b) <= (name == "fp8" ? 1e-5 : 1e-3) * scale, $"{name} kept vs dequantized twin: {Numerics.MaxAbsDiff(a, b)}");
        // Stated accuracy of the 8-bit weights themselves (logits of a random MoE model are dominated by
        // routing flips, so the check is per weight): relative Frobenius error <= 4% (FP8) / 1% (INT8) / 15% (INT4).
        var reference = original.state_dict();
        foreach (var (module, layer) in kept.named_modules().Where(m => m.module is QuantizedLinear { Format: not WeightFormat.Bf16 }).Select(m => (m.name, (QuantizedLinear)m.module)))
        {
            var w = reference[module + ".weight"];
            var relative = ((layer.Dequantized() - w).norm() / w.norm()).item<float>();
            Assert.True(relative <= format switch { WeightFormat.Fp8 => 0.04, WeightFormat.Int8 => 0.01, _ => 0.15 }, $"{name} {module}: relative error {relative}");
        }
    }

    [Fact]
    public void MissingOrMisShapedScalesAndUnknownMethodsAreNamed()
    {
        var source = TestPaths.TempDir();
        using (var model = TinyModels.Model()) ModelIO.Save(model, source);
        var fp8 = TestPaths.TempDir();
        using (var quantized = ModelIO.Load(source, WeightFormat.Fp8)) ModelIO.Save(quantized, fp8);
        var weights = Path.Combine(fp8, "model.safetensors");
        List<(string, Tensor)> state;
        Dictionary<string, string> storedAs;
        using (var file = SafeTensorsFile.Open(weights))
        {
            state = file.Entries.Keys.Select(k => (k, file.Read(k))).ToList();
            storedAs = file.Entries.Values.Where(e => e.DType == "F8_E4M3").ToDictionary(e => e.Name, e => e.DType);
        }

        SafeTensorsWriter.Write(weights, state.Where(p => p.Item1 != "model.layers.0.self_attn.o_proj.weight_scale_inv").ToList(), storedAs: storedAs);
        var missing = Assert.Throws<R1SharpException>(() => ModelIO.Load(fp8));
        Assert.Contains("FP8 tensor model.layers.0.self_attn.o_proj.weight has no scale tensor model.layers.0.self_attn.o_proj.weight_scale_inv", missing.Message);

        SafeTensorsWriter.Write(weights, state.Select(p => p.Item1 == "model.layers.0.self_attn.o_proj.weight_scale_inv" ? (p.Item1, ones(3, 3)) : p).ToList(), storedAs: storedAs);
        var shape = Assert.Throws<R1SharpException>(() => ModelIO.Load(fp8, WeightFormat.Fp8));
        Assert.Contains("scale tensor model.layers.0.self_attn.o_proj.weight_scale_inv has shape [3, 3], expected [1, 1]", shape.Message);

        var config = Path.Combine(fp8, "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"fp8\"", "\"awq\""));
        var method = Assert.Throws<R1SharpException>(() => ModelIO.Load(fp8));
        Assert.Contains("quant_method 'awq' is not supported", method.Message);
    }
}
