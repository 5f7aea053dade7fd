using System.Runtime.Intrinsics;

namespace R1Sharp.Kernels;

/// RMSNorm of a few float32 rows, y = x · rsqrt(mean(x²) + eps) · weight, one pass per row: at decode
/// libtorch's nine small ops per call cost far more than this arithmetic.
internal static unsafe class RowNorm
{
    public static void Run(float* x, float* weight, int rows, int n, double eps, float* y)
    {
        for (int r = 0; r < rows; r++)
        {
            float* row = x + (long)r * n, target = y + (long)r * n;
            var squares = Vector256<float>.Zero;
            int i = 0;
            for (; i + 8 <= n; i += 8)
            {
                var v = Vector256.Load(row + i);
                squares = Vector256.MultiplyAddEstimate(v, v, squares);
            }
            var sum = (double)Vector256.Sum(squares);
            for (; i < n; i++) sum += row[i] * row[i];
            var inverse = (float)(1 / Math.Sqrt(sum / n + eps));
            var factor = Vector256.Create(inverse);
            for (i = 0; i + 8 <= n; i += 8) Vector256.Store(Vector256.Load(row + i) * factor * Vector256.Load(weight + i), target + i);
            for (; i < n; i++) target[i] = row[i] * inverse * weight[i];
        }
    }
}
