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

    /// Embedding-sized matrices (lm_head): float32, or BF16 whenever the model is held in low precision.
    public static nn.Module<Tensor, Tensor> CreateHead(long inFeatures, long outFeatures, WeightFormat format) =>
        Create(inFeatures, outFeatures, format == WeightFormat.F32 ? WeightFormat.F32 : WeightFormat.Bf16);

    /// A projection's weight as float32 [out, in] (a quantized one dequantized once and kept).
    public static Tensor Weight(nn.Module<Tensor, Tensor> projection) => projection switch
    {
        DenseLinear linear => linear.Weight,
        QuantizedLinear quantized => quantized.DequantizedKept(),
        _ => throw new ArgumentException("not a projection"),
    };
}
