using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Kernels;

/// The address of a contiguous CPU tensor's data, for kernels that read it in place. (TorchSharp's
/// `bytes` span stops at 2 GB, less than an embedding table can hold.)
internal static partial class TensorMemory
{
    [LibraryImport("LibTorchSharp")]
    private static partial IntPtr THSTensor_data(IntPtr handle);

    public static unsafe void* Pointer(Tensor t)
    {
        if (t.device_type != DeviceType.CPU || !t.is_contiguous()) throw new ArgumentException("kernels read contiguous CPU tensors");
        return (void*)THSTensor_data(t.Handle);
    }
}
