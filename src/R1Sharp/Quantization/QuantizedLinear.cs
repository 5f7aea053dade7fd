using R1Sharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Quantization;

/// A linear layer (bias, if any, in float32) whose weight is held in low precision and dequantized to float32 inside
/// each forward. Buffer names follow the checkpoints: `weight` plus `weight_scale_inv` (FP8, DeepSeek's
/// 128x128 blocks) or `weight_scale` (INT8, per output channel).
public sealed class QuantizedLinear : nn.Module<Tensor, Tensor>
{
    public const int Block = 128;
    private readonly Tensor weight;
    private readonly Tensor? weight_scale_inv;
    private readonly Tensor? weight_scale;
    private readonly Tensor? bias;

    public QuantizedLinear(long inFeatures, long outFeatures, WeightFormat format, bool hasBias = false) : base(nameof(QuantizedLinear))
    {
        Format = format;
        var device = ModelDevice.Current;
        if (hasBias) bias = zeros(outFeatures, device: device);
        switch (format)
        {
            case WeightFormat.Bf16:
                weight = zeros(outFeatures, inFeatures, dtype: ScalarType.BFloat16, device: device);
                break;
            case WeightFormat.Fp8:
                weight = zeros(outFeatures, inFeatures, dtype: ScalarType.Byte, device: device);
                weight_scale_inv = ones(Fp8E4M3.ScaleShape([outFeatures, inFeatures], Block, Block), device: device);
                break;
            case WeightFormat.Int8:
                weight = zeros(outFeatures, inFeatures, dtype: ScalarType.Int8, device: device);
                weight_scale = ones(outFeatures, device: device);
                break;
            default:
                throw new ArgumentException("QuantizedLinear holds BF16, FP8 or INT8 weights", nameof(format));
        }
        RegisterComponents();
    }

    public WeightFormat Format { get; }

    /// The weight as float32 [out, in].
    public Tensor Dequantized() => Format switch
    {
        WeightFormat.Bf16 => weight.to_type(ScalarType.Float32),
        WeightFormat.Fp8 => Fp8E4M3.Dequantize(weight, weight_scale_inv!, Block, Block),
        _ => Int8Channel.Dequantize(weight, weight_scale!),
    };

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return SmallBatchLinear.Forward(x, Dequantized(), bias).MoveToOuterDisposeScope();
    }

    /// Stores a float weight [out, in], quantizing it to this layer's format.
    public void Assign(Tensor dense)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        switch (Format)
        {
            case WeightFormat.Bf16:
                weight.copy_(dense);
                break;
            case WeightFormat.Fp8:
                var (codes, scaleInv) = Fp8E4M3.Quantize(dense, Block, Block);
                weight.copy_(codes);
                weight_scale_inv!.copy_(scaleInv);
                break;
            default:
                var (q, scale) = Int8Channel.Quantize(dense);
                weight.copy_(q);
                weight_scale!.copy_(scale);
                break;
        }
    }

    /// Stores already-quantized data of this layer's format as is (no re-rounding).
    public void AssignRaw(Tensor codes, Tensor scale)
    {
        using var noGrad = no_grad();
        weight.copy_(codes);
        (weight_scale_inv ?? weight_scale)!.copy_(scale);
    }
}
