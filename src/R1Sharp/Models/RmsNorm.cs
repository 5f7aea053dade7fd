using R1Sharp.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// RMSNorm: x * rsqrt(mean(x^2) + eps) * weight, computed in float32.
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly double _eps;

    public RmsNorm(long size, double eps) : base(nameof(RmsNorm))
    {
        weight = new Parameter(ones(size, device: ModelDevice.Current));
        _eps = eps;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        if (KernelLinear.Applies(x, weight.requires_grad) && weight.dtype == ScalarType.Float32) return Rows(x);
        using var scope = NewDisposeScope();
        var x32 = x.to_type(ScalarType.Float32);
        var normed = x32 * rsqrt(x32.pow(2).mean([-1L], keepdim: true) + _eps);
        return (normed * weight.to_type(ScalarType.Float32)).to_type(x.dtype).MoveToOuterDisposeScope();
    }

    private unsafe Tensor Rows(Tensor x)
    {
        using var scope = NewDisposeScope();
        var input = x.contiguous();
        var y = empty_like(input);
        var n = (int)x.shape[^1];
        RowNorm.Run((float*)TensorMemory.Pointer(input), (float*)TensorMemory.Pointer(weight), (int)(input.NumberOfElements / n), n, _eps, (float*)TensorMemory.Pointer(y));
        return y.MoveToOuterDisposeScope();
    }
}
