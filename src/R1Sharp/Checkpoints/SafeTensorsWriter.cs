using System.Text;
using System.Text.Json;
using static TorchSharp.torch;

namespace R1Sharp.Checkpoints;

/// Writes safetensors files: an 8-byte header length, a JSON header (padded to 8 bytes), then the data.
public static class SafeTensorsWriter
{
    /// Tensors are written in the given order and types; each is made contiguous on the CPU first.
    /// `storedAs` names tensors whose bytes mean another dtype than their tensor type (FP8 codes held as bytes).
    public static void Write(string path, IReadOnlyList<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata = null,
        IReadOnlyDictionary<string, string>? storedAs = null)
    {
        var header = new Dictionary<string, object>();
        if (metadata is { Count: > 0 }) header["__metadata__"] = metadata;
        long offset = 0;
        foreach (var (name, t) in tensors)
        {
            var bytes = t.NumberOfElements * t.ElementSize;
            header[name] = new { dtype = storedAs?.GetValueOrDefault(name) ?? SafeTensorsDType.NameOf(t.dtype), shape = t.shape, data_offsets = new[] { offset, offset + bytes } };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        var padded = (json.Length + 7) / 8 * 8;
        AtomicFile.Write(path, tmp =>
        {
            using var stream = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
            stream.Write(BitConverter.GetBytes((long)padded));
            stream.Write(json);
            for (int i = json.Length; i < padded; i++) stream.WriteByte((byte)' ');
            foreach (var (_, t) in tensors)
            {
                using var scope = NewDisposeScope();
                var flat = t.detach().cpu().contiguous().view(-1);
                long elementSize = t.ElementSize, chunk = (1L << 30) / elementSize;
                for (long start = 0; start < flat.NumberOfElements; start += chunk)
                    stream.Write(flat.narrow(0, start, Math.Min(chunk, flat.NumberOfElements - start)).bytes);
            }
        });
    }
}
