using System.Text;

namespace R1Sharp.Gguf;

/// ggml tensor types R1Sharp writes (ids as in ggml.h).
public enum GgmlType { F32 = 0, F16 = 1, Q4_0 = 2, Q8_0 = 8 }

/// A GGUF v3 file as llama.cpp reads it: key-value metadata, tensor infos (dims innermost first, offsets
/// the running sum of 32-byte-aligned sizes), then the aligned data. Values are written in the types
/// llama.cpp's loader checks (u32 for counts and token ids, f32, bool, string, arrays).
public sealed class GgufWriter
{
    private const int Alignment = 32;
    private readonly List<(string Key, Action<BinaryWriter> Write)> _metadata = [];
    private readonly List<(string Name, long[] Shape, GgmlType Type, Func<byte[]> Data)> _tensors = [];

    private enum ValueType { UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7, String = 8, Array = 9 }

    public int TensorCount => _tensors.Count;

    public void Add(string key, string value) => Value(key, ValueType.String, w => Write(w, value));
    public void Add(string key, uint value) => Value(key, ValueType.UInt32, w => w.Write(value));
    public void Add(string key, float value) => Value(key, ValueType.Float32, w => w.Write(value));
    public void Add(string key, bool value) => Value(key, ValueType.Bool, w => w.Write((byte)(value ? 1 : 0)));

    public void Add(string key, IReadOnlyList<string> values) => Value(key, ValueType.Array, w =>
    {
        w.Write((int)ValueType.String);
        w.Write((ulong)values.Count);
        foreach (var v in values) Write(w, v);
    });

    public void Add(string key, IReadOnlyList<int> values) => Value(key, ValueType.Array, w =>
    {
        w.Write((int)ValueType.Int32);
        w.Write((ulong)values.Count);
        foreach (var v in values) w.Write(v);
    });

    private void Value(string key, ValueType type, Action<BinaryWriter> body)
    {
        if (_metadata.Any(m => m.Key == key)) throw new InvalidOperationException($"GGUF key {key} written twice");
        _metadata.Add((key, w => { w.Write((int)type); body(w); }));
    }

    /// `shape` as PyTorch gives it (outermost first); `data` makes the row-major bytes in `type` when the
    /// file is written, one tensor at a time.
    public void AddTensor(string name, long[] shape, GgmlType type, Func<byte[]> data)
    {
        if (Encoding.UTF8.GetByteCount(name) >= 64) throw new R1SharpException($"GGUF tensor name {name} is longer than llama.cpp's 63 bytes");
        _tensors.Add((name, shape, type, data));
    }

    public void Save(string path) => AtomicFile.Write(path, tmp =>
    {
        using var stream = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        using var w = new BinaryWriter(stream, Encoding.UTF8);
        w.Write("GGUF"u8);
        w.Write(3u);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_metadata.Count);
        foreach (var (key, write) in _metadata)
        {
            Write(w, key);
            write(w);
        }
        long offset = 0;
        foreach (var (name, shape, type, _) in _tensors)
        {
            Write(w, name);
            w.Write((uint)shape.Length);
            for (int d = shape.Length - 1; d >= 0; d--) w.Write((ulong)shape[d]);   // ggml: innermost dimension first
            w.Write((uint)type);
            w.Write((ulong)offset);
            offset += Padded(Bytes(shape, type));
        }
        Pad(w);
        foreach (var (name, shape, type, data) in _tensors)
        {
            var bytes = data();
            if (bytes.LongLength != Bytes(shape, type)) throw new InvalidOperationException($"GGUF tensor {name}: {bytes.Length} bytes, expected {Bytes(shape, type)}");
            w.Write(bytes);
            Pad(w);
        }
    });

    /// Bytes of a tensor: blocks of 32 along the innermost dimension for the quantized types.
    public static long Bytes(long[] shape, GgmlType type)
    {
        var elements = shape.Aggregate(1L, (a, b) => a * b);
        return type switch { GgmlType.F32 => elements * 4, GgmlType.F16 => elements * 2, GgmlType.Q8_0 => elements / 32 * 34, _ => elements / 32 * 18 };
    }

    private static long Padded(long bytes) => (bytes + Alignment - 1) / Alignment * Alignment;

    private static void Pad(BinaryWriter w)
    {
        w.Flush();
        var position = w.BaseStream.Position;
        for (var p = position; p < Padded(position); p++) w.Write((byte)0);
    }

    private static void Write(BinaryWriter w, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }
}
