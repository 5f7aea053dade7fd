using static TorchSharp.torch;

namespace R1Sharp.Models;

/// Where model constructors put their parameters and buffers: torch's default device, or inside
/// `Meta()` the meta device (names and shapes only, nothing allocated), so that a model folder can
/// be checked and sized before its memory is taken. Thread-local, as PyTorch's
/// `with torch.device("meta"):` is, so another thread building or running a model is unaffected.
public static class ModelDevice
{
    [ThreadStatic] private static Device? _scoped;

    public static Device Current => _scoped ?? get_default_device();

    public static IDisposable Meta() => new Scope(META);

    private sealed class Scope : IDisposable
    {
        private readonly Device? _previous = _scoped;
        public Scope(Device device) => _scoped = device;
        public void Dispose() => _scoped = _previous;
    }
}
