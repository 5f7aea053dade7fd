using static TorchSharp.torch;

namespace R1Sharp.Generation;

/// A preallocated key/value cache that the caller owns and passes into forward.
/// Each layer holds buffers shaped [batch, maxLength, ...] (for MLA: the normalised latent and the
/// rotated rope key); row b holds positions [0, Lengths[b]) and grows independently of the other rows.
public sealed class KvCache : IDisposable
{
    private readonly Tensor[][] _layers;

    public KvCache(int batchSize, int maxLength, IReadOnlyList<long[]> perTokenShapes, int layers, ScalarType dtype, Device? device = null)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize));
        if (maxLength < 1) throw new ArgumentOutOfRangeException(nameof(maxLength));
        BatchSize = batchSize;
        MaxLength = maxLength;
        Lengths = new long[batchSize];
        _layers = Enumerable.Range(0, layers)
            .Select(_ => perTokenShapes.Select(s => zeros([batchSize, maxLength, .. s], dtype: dtype, device: device).DetachFromDisposeScope()).ToArray())
            .ToArray();
    }

    public int BatchSize { get; }
    public int MaxLength { get; }
    public long[] Lengths { get; }
    public int Layers => _layers.Length;
    public long Bytes => _layers.Sum(l => l.Sum(t => t.NumberOfElements * t.ElementSize));

    /// Positions of the next `count` tokens of every row: [B, count].
    public Tensor NextPositions(long count, Device device) =>
        tensor(Lengths, device: device).unsqueeze(1) + arange(count, device: device).unsqueeze(0);

    /// Writes values [B, T, ...] at the positions given (rows and columns [B, T]) of one layer.
    public void Write(int layer, Tensor positions, params Tensor[] values)
    {
        var rows = arange(BatchSize, device: positions.device).unsqueeze(1).expand_as(positions);
        for (int i = 0; i < values.Length; i++)
            _layers[layer][i].index_put_(values[i].to_type(_layers[layer][i].dtype), rows, positions);
    }

    /// The first `length` positions of a layer's buffers.
    public Tensor[] Read(int layer, long length) => _layers[layer].Select(t => t.narrow(1, 0, length)).ToArray();

    /// Marks `counts[b]` more tokens of row b as valid after a forward.
    public void Advance(IReadOnlyList<long> counts)
    {
        for (int b = 0; b < BatchSize; b++)
        {
            if (Lengths[b] + counts[b] > MaxLength) throw new InvalidOperationException("KV cache overflow");
            Lengths[b] += counts[b];
        }
    }

    public void Reset(int row) => Lengths[row] = 0;

    public void Dispose()
    {
        foreach (var layer in _layers) foreach (var t in layer) t.Dispose();
    }
}
