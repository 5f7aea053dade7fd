using static TorchSharp.torch;

namespace R1Sharp.Quantization;

/// INT8 weight-only quantization with one float32 scale per output channel (row), symmetric:
/// W[i, j] ~= weight[i, j] * weight_scale[i], weight in [-127, 127].
public static class Int8Channel
{
    public static (Tensor Weight, Tensor Scale) Quantize(Tensor weight)
    {
        using var scope = NewDisposeScope();
        var w = weight.to_type(ScalarType.Float32);
        var amax = w.abs().amax([1L]);
        var scale = where(amax > 0, amax / 127, ones_like(amax));
        var q = (w / scale.unsqueeze(1)).round().clamp(-127, 127).to_type(ScalarType.Int8);
        return (q.MoveToOuterDisposeScope(), scale.MoveToOuterDisposeScope());
    }

    public static Tensor Dequantize(Tensor weight, Tensor scale)
    {
        using var scope = NewDisposeScope();
        return (weight.to_type(ScalarType.Float32) * scale.to_type(ScalarType.Float32).unsqueeze(1)).MoveToOuterDisposeScope();
    }
}
