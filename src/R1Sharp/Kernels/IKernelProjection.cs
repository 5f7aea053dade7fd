using static TorchSharp.torch;

namespace R1Sharp.Kernels;

/// A projection the kernels can read as stored: its weight view and its bias (float32 or none).
public interface IKernelProjection
{
    WeightView View();
    Tensor? Bias { get; }
    bool NeedsGrad { get; }
    /// False when the layer computes more than its stored weight (a LoRA adapter): kernels then leave it to its forward.
    bool KernelReadable => true;
}
