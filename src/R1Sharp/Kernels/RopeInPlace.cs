using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Kernels;

/// Rotary embedding applied in place to fresh projection outputs when no gradient flows (decoding,
/// evaluation): x holds, per token, `groups` vectors of `stride` floats whose [offset, offset + width)
/// slice is rotated by that token's cos/sin rows (width/2 each). The same float32 multiplications and
/// additions as Rope's tensor path, so the same values, without its dozen ops per call.
internal static unsafe class RopeInPlace
{
    public static bool Applies(Tensor x, Tensor cos) =>
        x.dtype == ScalarType.Float32 && x.device_type == DeviceType.CPU && !x.requires_grad && x.is_contiguous()
        && cos.dtype == ScalarType.Float32 && cos.is_contiguous();

    /// DeepSeek's adjacent pairs (x[2i], x[2i+1]).
    public static void Interleaved(Tensor x, int groups, int stride, int offset, int width, Tensor cos, Tensor sin)
    {
        int half = width / 2;
        long tokens = x.NumberOfElements / ((long)groups * stride);
        float* data = (float*)TensorMemory.Pointer(x), c0 = (float*)TensorMemory.Pointer(cos), s0 = (float*)TensorMemory.Pointer(sin);
        for (long t = 0; t < tokens; t++)
        {
            float* c = c0 + t * half, s = s0 + t * half;
            for (int g = 0; g < groups; g++)
            {
                float* v = data + (t * groups + g) * stride + offset;
                for (int i = 0; i < half; i++)
                {
                    float even = v[2 * i], odd = v[2 * i + 1];
                    v[2 * i] = even * c[i] - odd * s[i];
                    v[2 * i + 1] = even * s[i] + odd * c[i];
                }
            }
        }
    }

    /// Hugging Face's rotate-half pairs (x[i], x[i + d/2]) over whole vectors of `width` floats.
    public static void RotateHalf(Tensor x, int groups, int width, Tensor cos, Tensor sin)
    {
        int half = width / 2;
        long tokens = x.NumberOfElements / ((long)groups * width);
        float* data = (float*)TensorMemory.Pointer(x), c0 = (float*)TensorMemory.Pointer(cos), s0 = (float*)TensorMemory.Pointer(sin);
        for (long t = 0; t < tokens; t++)
        {
            float* c = c0 + t * half, s = s0 + t * half;
            for (int g = 0; g < groups; g++)
            {
                float* first = data + (t * groups + g) * width, second = first + half;
                int i = 0;
                for (; i + 8 <= half; i += 8)
                {
                    Vector256<float> a = Vector256.Load(first + i), b = Vector256.Load(second + i), ci = Vector256.Load(c + i), si = Vector256.Load(s + i);
                    Vector256.Store(a * ci - b * si, first + i);
                    Vector256.Store(b * ci + a * si, second + i);
                }
                for (; i < half; i++)
                {
                    float a = first[i], b = second[i];
                    first[i] = a * c[i] - b * s[i];
                    second[i] = b * c[i] + a * s[i];
                }
            }
        }
    }
}
