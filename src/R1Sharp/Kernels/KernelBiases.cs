using static TorchSharp.torch;

namespace R1Sharp.Kernels;

/// Optional float32 biases as kernel pointers (null where a projection has none). Create it inside the
/// caller's dispose scope: any converted copy lives until that scope ends.
public sealed unsafe class KernelBiases(params Tensor?[] biases)
{
    private readonly Tensor?[] _tensors = biases.Select(b => b?.to_type(ScalarType.Float32).contiguous()).ToArray();

    public float* this[int i] => _tensors[i] is { } t ? (float*)TensorMemory.Pointer(t) : null;
}
