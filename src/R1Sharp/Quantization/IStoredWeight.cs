using R1Sharp.Kernels;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Quantization;

/// A module whose `weight` [out, in] may be held in a low-precision format with its scales beside it
/// (`weight_scale_inv`, `weight_scale`): quantized projections and the embedding table. The loader fills
/// it through Assign/AssignRaw; the kernels read its View.
public interface IStoredWeight
{
    WeightFormat Format { get; }
    /// The weight's shape as a float matrix [out, in] (INT4 stores it packed).
    long[] LogicalShape { get; }
    /// Stores a float weight, quantizing it to this module's format.
    void Assign(Tensor dense);
    /// Stores already-quantized data of this module's format as is.
    void AssignRaw(Tensor codes, Tensor scale);
    /// The weight as float32 [out, in].
    Tensor Dequantized();
    WeightView View();
}
