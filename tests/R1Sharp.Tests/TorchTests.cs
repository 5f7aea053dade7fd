using static TorchSharp.torch;

namespace R1Sharp.Tests;

public class TorchTests
{
    [Fact]
    public void TorchInitialisesAndComputes()
    {
        Assert.StartsWith("2.10", __version__);
        using var a = tensor(new float[] { 1, 2, 3, 4 }).view(2, 2);
        using var product = a.matmul(a);
        Assert.Equal(new float[] { 7, 10, 15, 22 }, product.data<float>().ToArray());
    }
}
