using static TorchSharp.torch;

namespace R1Sharp.Tests;

static class Numerics
{
    /// Fails with the max and mean |difference| and the worst index when any element differs by more than `tolerance`.
    public static void AssertClose(Tensor expected, Tensor actual, double tolerance, string what = "values")
    {
        Assert.Equal(expected.shape, actual.shape);
        using var scope = NewDisposeScope();
        var diff = (expected.to_type(ScalarType.Float64) - actual.to_type(ScalarType.Float64)).abs().flatten();
        if (diff.NumberOfElements == 0) return;
        var max = diff.max().item<double>();
        if (double.IsNaN(max) || max > tolerance)
        {
            var worst = diff.argmax().item<long>();
            var mean = diff.mean().item<double>();
            var index = Unravel(worst, expected.shape);
            Assert.Fail($"{what}: max |diff| {max:E3} > {tolerance:E1} (mean {mean:E3}) at [{string.Join(", ", index)}]: expected {expected.flatten()[worst].to_type(ScalarType.Float64).item<double>()}, got {actual.flatten()[worst].to_type(ScalarType.Float64).item<double>()}");
        }
    }

    public static double MaxAbsDiff(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return (a.to_type(ScalarType.Float64) - b.to_type(ScalarType.Float64)).abs().max().item<double>();
    }

    private static long[] Unravel(long flat, long[] shape)
    {
        var index = new long[shape.Length];
        for (int i = shape.Length - 1; i >= 0; i--) { index[i] = flat % shape[i]; flat /= shape[i]; }
        return index;
    }
}
