using R1Sharp.Kernels;
using R1Sharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Quantization;

/// A linear layer (bias, if any, in float32) whose weight is held in low precision. Decoding reads the
/// stored weight directly (FewRowMatmul); larger inputs dequantize it to float32 for libtorch. Buffer
/// names follow the checkpoints: `weight` plus `weight_scale_inv` (FP8, DeepSeek's 128x128 blocks) or
/// `weight_scale` (INT8 per output channel; INT4 per group of 32, see Int4Group).
public sealed class QuantizedLinear : nn.Module<Tensor, Tensor>, IKernelProjection, IStoredWeight
{
    public const int Block = FewRowMatmul.Fp8Block;
    private readonly Tensor weight;
    private readonly Tensor? weight_scale_inv;
    private readonly Tensor? weight_scale;
    private readonly Tensor? bias;
    private readonly long _in, _out;
    private Tensor? _dequantized;

    public QuantizedLinear(long inFeatures, long outFeatures, WeightFormat format, bool hasBias = false) : base(nameof(QuantizedLinear))
    {
        Format = format;
        (_in, _out) = (inFeatures, outFeatures);
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
            case WeightFormat.Int4:
                weight = full(Int4Group.PackedShape(outFeatures, inFeatures), 0x88, dtype: ScalarType.Byte, device: device);
                weight_scale = ones(Int4Group.ScaleShape(outFeatures, inFeatures), dtype: ScalarType.BFloat16, device: device);
                break;
            default:
                throw new ArgumentException("QuantizedLinear holds BF16, FP8, INT8 or INT4 weights", nameof(format));
        }
        RegisterComponents();
    }

    public WeightFormat Format { get; }
    public Tensor? Bias => bias;
    public bool NeedsGrad => false;

    public long[] LogicalShape => [_out, _in];

    /// The weight as float32 [out, in].
    public Tensor Dequantized() => Format switch
    {
        WeightFormat.Bf16 => weight.to_type(ScalarType.Float32),
        WeightFormat.Fp8 => Fp8E4M3.Dequantize(weight, weight_scale_inv!, Block, Block),
        WeightFormat.Int8 => Int8Channel.Dequantize(weight, weight_scale!),
        _ => Int4Group.Dequantize(weight, weight_scale!, _in),
    };

    /// The dequantized weight, kept after the first call: for weights used whole every forward (MLA's
    /// kv_b_proj in the absorbed path), at the cost of their float32 size once.
    public Tensor DequantizedKept()
    {
        if (_dequantized is null)
            using (no_grad()) _dequantized = Dequantized().DetachFromDisposeScope();
        return _dequantized;
    }

    /// The stored weight as the kernels read it.
    public unsafe WeightView View() => new(
        Format switch { WeightFormat.Bf16 => StoredWeight.Bf16, WeightFormat.Fp8 => StoredWeight.Fp8, WeightFormat.Int8 => StoredWeight.Int8, _ => StoredWeight.Int4 },
        TensorMemory.Pointer(weight), (int)_out, (int)_in,
        weight_scale_inv is not null ? TensorMemory.Pointer(weight_scale_inv) : weight_scale is not null ? TensorMemory.Pointer(weight_scale) : null);

    public override Tensor forward(Tensor x)
    {
        if (KernelLinear.Applies(x, weightNeedsGrad: false)) return KernelLinear.Forward(x, View(), bias);
        using var scope = NewDisposeScope();
        return SmallBatchLinear.Forward(x, Dequantized(), bias).MoveToOuterDisposeScope();
    }

    /// Stores a float weight [out, in], quantizing it to this layer's format.
    public void Assign(Tensor dense)
    {
        Forget();
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
            case WeightFormat.Int8:
                var (q, scale) = Int8Channel.Quantize(dense);
                weight.copy_(q);
                weight_scale!.copy_(scale);
                break;
            default:
                var (packed, groupScale) = Int4Group.Quantize(dense);
                weight.copy_(packed);
                weight_scale!.copy_(groupScale);
                break;
        }
    }

    /// Stores already-quantized data of this layer's format as is (no re-rounding).
    public void AssignRaw(Tensor codes, Tensor scale)
    {
        Forget();
        using var noGrad = no_grad();
        weight.copy_(codes);
        (weight_scale_inv ?? weight_scale)!.copy_(scale);
    }

    private void Forget()
    {
        _dequantized?.Dispose();
        _dequantized = null;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) Forget();
        base.Dispose(disposing);
    }
}
