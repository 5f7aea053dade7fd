using Microsoft.Win32.SafeHandles;
using System.Text;
using System.Text.Json;
using static TorchSharp.torch;

namespace R1Sharp.Checkpoints;

/// One tensor's entry in a safetensors header. Offsets are relative to the data section.
public sealed record SafeTensorEntry(string Name, string DType, long[] Shape, long Begin, long End)
{
    public long Elements => Shape.Aggregate(1L, (a, b) => checked(a * b));
}

/// A safetensors file: the header is validated on open, and tensors are read one at a time straight into
/// tensor memory (no intermediate buffer, no mapping), so loading holds about one copy of the model.
public sealed class SafeTensorsFile : IDisposable
{
    private const long MaxHeaderBytes = 100_000_000;
    private readonly SafeFileHandle _handle;
    private readonly long _dataStart;

    public string Path { get; }
    public IReadOnlyDictionary<string, SafeTensorEntry> Entries { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    private SafeTensorsFile(string path, SafeFileHandle handle, long dataStart,
        Dictionary<string, SafeTensorEntry> entries, Dictionary<string, string> metadata)
    {
        (Path, _handle, _dataStart, Entries, Metadata) = (path, handle, dataStart, entries, metadata);
    }

    public static SafeTensorsFile Open(string path)
    {
        InputFile.RequireRegular(path);
        var (entries, metadata, dataStart) = ReadHeader(path);
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        return new SafeTensorsFile(path, handle, dataStart, entries, metadata);
    }

    private static (Dictionary<string, SafeTensorEntry>, Dictionary<string, string>, long) ReadHeader(string path)
    {
        using var stream = File.OpenRead(path);
        var fileLength = stream.Length;
        var prefix = new byte[8];
        if (fileLength < 8 || stream.Read(prefix, 0, 8) != 8)
            throw new R1SharpException($"{path}: truncated safetensors file ({fileLength} bytes, no header length)");
        var headerLength = BitConverter.ToInt64(prefix, 0);
        if (headerLength <= 0 || headerLength > MaxHeaderBytes || headerLength > fileLength - 8)
            throw new R1SharpException($"{path}: bad safetensors header length {headerLength} (file has {fileLength} bytes)");
        var header = new byte[headerLength];
        stream.ReadExactly(header);
        var dataLength = fileLength - 8 - headerLength;

        JsonElement root;
        try
        {
            // Decoded strictly first: the JSON reader would fail on a malformed name only when it is read.
            root = JsonDocument.Parse(new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(header)).RootElement;
        }
        catch (Exception e) when (e is JsonException or DecoderFallbackException or ArgumentException)
        {
            throw new R1SharpException($"{path}: safetensors header is not valid JSON ({e.Message.Split('\n')[0]})");
        }
        if (root.ValueKind != JsonValueKind.Object) throw new R1SharpException($"{path}: safetensors header is not a JSON object");

        var entries = new Dictionary<string, SafeTensorEntry>();
        var metadata = new Dictionary<string, string>();
        foreach (var property in root.EnumerateObject())
        {
            if (property.Name == "__metadata__")
            {
                if (property.Value.ValueKind == JsonValueKind.Object)
                    foreach (var m in property.Value.EnumerateObject()) metadata[m.Name] = m.Value.ToString();
                continue;
            }
            entries[property.Name] = ParseEntry(path, property.Name, property.Value, dataLength);
        }

        long previousEnd = 0;
        string? previous = null;
        foreach (var e in entries.Values.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (e.Begin < previousEnd)
                throw new R1SharpException($"{path}: tensors '{previous}' and '{e.Name}' overlap in the data section");
            (previousEnd, previous) = (Math.Max(previousEnd, e.End), e.Name);
        }
        return (entries, metadata, 8 + headerLength);
    }

    private static SafeTensorEntry ParseEntry(string path, string name, JsonElement value, long dataLength)
    {
        try
        {
            var dtype = value.GetProperty("dtype").GetString() ?? "";
            if (!SafeTensorsDType.IsKnown(dtype))
                throw new R1SharpException($"{path}: tensor '{name}' has unsupported dtype '{dtype}'");
            var shape = value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            var offsets = value.GetProperty("data_offsets").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            if (shape.Any(d => d < 0) || offsets.Length != 2)
                throw new R1SharpException($"{path}: tensor '{name}' has a malformed shape or data_offsets");
            var entry = new SafeTensorEntry(name, dtype, shape, offsets[0], offsets[1]);
            if (entry.Begin < 0 || entry.End < entry.Begin || entry.End > dataLength)
                throw new R1SharpException($"{path}: tensor '{name}' has data offsets [{entry.Begin}, {entry.End}) past the end of the data ({dataLength} bytes)");
            // In arbitrary precision: a shape such as [2^62, 4] must not wrap around to a small size.
            var bytes = shape.Aggregate((System.Numerics.BigInteger)SafeTensorsDType.ElementSize(dtype), (a, b) => a * b);
            if (entry.End - entry.Begin != bytes)
                throw new R1SharpException($"{path}: tensor '{name}' has {entry.End - entry.Begin} bytes, but {dtype} {Format(shape)} needs {bytes}");
            return entry;
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException or OverflowException)
        {
            throw new R1SharpException($"{path}: tensor '{name}' has a malformed header entry");
        }
    }

    public static string Format(long[] shape) => "[" + string.Join(", ", shape) + "]";

    /// Reads one tensor, in its stored type (F8_E4M3 as bytes).
    public Tensor Read(string name)
    {
        var entry = Entries[name];
        var result = empty(entry.Shape, SafeTensorsDType.StorageType(entry.DType));
        var flat = result.view(-1);
        long elementSize = SafeTensorsDType.ElementSize(entry.DType), chunk = (1L << 30) / elementSize;
        for (long start = 0; start < entry.Elements; start += chunk)
        {
            using var part = flat.narrow(0, start, Math.Min(chunk, entry.Elements - start));
            var target = part.bytes;
            var offset = _dataStart + entry.Begin + start * elementSize;
            while (target.Length > 0)
            {
                var read = RandomAccess.Read(_handle, target, offset);
                if (read == 0) throw new R1SharpException($"{Path}: file ended while reading tensor '{name}'");
                target = target[read..];
                offset += read;
            }
        }
        return result;
    }

    public void Dispose() => _handle.Dispose();
}
