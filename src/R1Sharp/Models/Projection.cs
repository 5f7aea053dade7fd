using R1Sharp.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// Makes the linear layers of a model in the requested weight format.
public static class Projection
{
    /// Attention and MLP/expert projections: 8-bit in Fp8/Int8, BF16 in Bf16, float32 otherwise.
    public static nn.Module<Tensor, Tensor> Create(long inFeatures, long outFeatures, WeightFormat format, bool bias = false) =>
        format == WeightFormat.F32
            ? new DenseLinear(inFeatures, outFeatures, bias)
            : new QuantizedLinear(inFeatures, outFeatures, format, bias);

    /// Embedding-sized matrices (lm_head): float32; BF16 for bf16 and DeepSeek's FP8 (as its release keeps
    /// it); INT8 per row for the int8 and int4 formats (llama.cpp's quantizers keep the output at ≥ 6 bits).
    public static nn.Module<Tensor, Tensor> CreateHead(long inFeatures, long outFeatures, WeightFormat format) =>
        Create(inFeatures, outFeatures, format switch { WeightFormat.F32 => WeightFormat.F32, WeightFormat.Int8 or WeightFormat.Int4 => WeightFormat.Int8, _ => WeightFormat.Bf16 });

    /// A projection's weight as float32 [out, in] (a quantized one dequantized once and kept).
    public static Tensor Weight(nn.Module<Tensor, Tensor> projection) => projection switch
    {
        DenseLinear { Lora: { Enabled: true } lora } adapted => adapted.Weight + lora.B.matmul(lora.A) * lora.Scale,   // what the adapted layer computes
        DenseLinear linear => linear.Weight,
        QuantizedLinear quantized => quantized.DequantizedKept(),
        _ => throw new ArgumentException("not a projection"),
    };
}
