using static TorchSharp.torch;

namespace R1Sharp.Generation;

/// A preallocated key/value cache that the caller owns and passes into forward.
/// Each layer holds buffers shaped [batch, maxLength, ...] (for MLA: the normalised latent and the
/// rotated rope key; for grouped-query attention: keys and values); row b holds positions
/// [0, Lengths[b]) and grows independently of the other rows. `Rows(...)` gives a view of some rows
/// (a continuous-batching scheduler's running sequences) that reads and writes the same memory.
/// Local (sliding-window) layers may instead hold a ring of `RingCapacity` slots (the window, sinks included), so
/// their memory does not grow with the sequence.
public sealed class KvCache : IDisposable
{
    private readonly Tensor[][] _layers;
    private readonly long[] _lengths;
    private readonly KvCache? _parent;
    private readonly int[]? _rows;
    private readonly bool _consecutive;   // a view's rows are one run of the root's: read as a narrow view, not a copy

    public KvCache(int batchSize, int maxLength, IReadOnlyList<long[]> perTokenShapes, int layers, ScalarType dtype, Device? device = null,
        bool[]? ringLayers = null, int ringCapacity = 0)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize));
        if (maxLength < 1) throw new ArgumentOutOfRangeException(nameof(maxLength));
        BatchSize = batchSize;
        MaxLength = maxLength;
        RingCapacity = ringCapacity;
        _lengths = new long[batchSize];
        _ringLayers = Enumerable.Range(0, layers).Select(l => ringCapacity > 0 && ringLayers is not null && l < ringLayers.Length && ringLayers[l]).ToArray();
        var elementSize = dtype switch { ScalarType.Float64 => 8, ScalarType.Float32 => 4, _ => 2 };
        var tokenBytes = perTokenShapes.Sum(shape => shape.Aggregate(1.0, (a, b) => a * b)) * elementSize;
        MachineMemory.Require(_ringLayers.Sum(ring => (double)batchSize * (ring ? ringCapacity : maxLength) * tokenBytes),
            $"a KV cache of {batchSize} rows × {maxLength} tokens", "use a shorter context or fewer rows (serve: --max-context, --max-batch)");
        _layers = Enumerable.Range(0, layers)
            .Select(l => perTokenShapes.Select(s => zeros([batchSize, _ringLayers[l] ? ringCapacity : maxLength, .. s], dtype: dtype, device: device).DetachFromDisposeScope()).ToArray())
            .ToArray();
        _tokenBytes = layers == 0 ? 0 : perTokenShapes.Sum(shape => shape.Aggregate(1L, (a, b) => a * b)) * _layers[0][0].ElementSize;
    }

    private readonly bool[] _ringLayers;
    private readonly long _tokenBytes;   // bytes one token of one row takes in one layer

    /// Slots of a local layer's rolling cache (0: local layers keep every position).
    public int RingCapacity { get; }

    private KvCache(KvCache parent, int[] rows)
    {
        _parent = parent;
        _rows = rows;
        _consecutive = rows.Select((r, i) => r == rows[0] + i).All(same => same);
        _layers = parent._layers;
        _lengths = parent._lengths;
        _ringLayers = parent._ringLayers;
        _tokenBytes = parent._tokenBytes;
        RingCapacity = parent.RingCapacity;
        BatchSize = rows.Length;
        MaxLength = parent.MaxLength;
    }

    public int BatchSize { get; }
    public int MaxLength { get; }
    public int Layers => _layers.Length;
    public long Bytes => _layers.Sum(l => l.Sum(t => t.NumberOfElements * t.ElementSize));
    public long LayerBytes(int layer) => _layers[layer].Sum(t => t.NumberOfElements * t.ElementSize);

    /// Tokens held by each row of this cache (or view).
    public long[] Lengths => _rows is null ? _lengths : _rows.Select(r => _lengths[r]).ToArray();

    /// A view of some rows of the root cache, in the given order.
    public KvCache Rows(params int[] rows)
    {
        var root = _parent ?? this;
        var mapped = _rows is null ? rows : rows.Select(r => _rows[r]).ToArray();
        if (mapped.Any(r => r < 0 || r >= root.BatchSize)) throw new ArgumentOutOfRangeException(nameof(rows));
        return new KvCache(root, mapped);
    }

    /// Positions of the next `count` tokens of every row: [B, count].
    public Tensor NextPositions(long count, Device device) =>
        tensor(Lengths, device: device).unsqueeze(1) + arange(count, device: device).unsqueeze(0);

    /// Writes values [B, T, ...] at the positions given (rows and columns [B, T]) of one layer.
    public void Write(int layer, Tensor positions, params Tensor[] values)
    {
        var rows = RowIndex(positions.device).unsqueeze(1).expand_as(positions);
        for (int i = 0; i < values.Length; i++)
            _layers[layer][i].index_put_(values[i].to_type(_layers[layer][i].dtype), rows, positions);
    }

    /// The first `length` positions of a layer's buffers, for this cache's rows.
    public Tensor[] Read(int layer, long length) => _layers[layer].Select(t => OwnRows(t.narrow(1, 0, length))).ToArray();

    /// Every slot of a local layer's ring, for this cache's rows: [B, RingCapacity, ...] each.
    public Tensor[] ReadRing(int layer) => _layers[layer].Select(OwnRows).ToArray();

    /// This cache's rows of a root buffer: a view when they are consecutive (a copy per step otherwise).
    private Tensor OwnRows(Tensor buffer) =>
        _rows is null ? buffer : _consecutive ? buffer.narrow(0, _rows[0], _rows.Length) : buffer.index_select(0, RowIndex(buffer.device));

    /// Writes the kept new tokens (values [B, T, ...]) into a local layer's ring.
    public void WriteRing(int layer, Models.RingWrite write, params Tensor[] values)
    {
        var rows = RowIndex(write.Rows.device).index_select(0, write.Rows);
        for (int i = 0; i < values.Length; i++)
            _layers[layer][i].index_put_(values[i][write.Rows, write.Tokens].to_type(_layers[layer][i].dtype), rows, write.Slots);
    }

    /// Bytes one sequence of `tokens` tokens occupies: every position in global layers, at most the ring in local ones.
    public long BytesFor(long tokens) =>
        _ringLayers.Sum(ring => _tokenBytes * Math.Min(tokens, ring ? RingCapacity : MaxLength));

    private Tensor RowIndex(Device device) =>
        _rows is null ? arange(BatchSize, device: device) : tensor(_rows.Select(r => (long)r).ToArray(), device: device);

    /// Marks `counts[b]` more tokens of row b as valid after a forward.
    public void Advance(IReadOnlyList<long> counts)
    {
        for (int b = 0; b < BatchSize; b++)
        {
            var row = _rows?[b] ?? b;
            if (_lengths[row] + counts[b] > MaxLength) throw new InvalidOperationException("KV cache overflow");
            _lengths[row] += counts[b];
        }
    }

    /// Empties a row so that a new sequence can use it (older contents are masked by position).
    public void Reset(int row) => _lengths[_rows?[row] ?? row] = 0;

    /// Tokens held across all rows of the root cache.
    public long TokensInUse => _lengths.Sum();

    public void Dispose()
    {
        if (_parent is not null) return;   // a view owns nothing
        foreach (var layer in _layers) foreach (var t in layer) t.Dispose();
    }
}
