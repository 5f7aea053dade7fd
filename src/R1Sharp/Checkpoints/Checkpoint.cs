using System.Text.Json;
using R1Sharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Checkpoints;

/// The safetensors files of a Hugging Face model folder: `model.safetensors`, or shards listed in
/// `model.safetensors.index.json`. Maps every tensor name to the file that holds it.
public sealed class Checkpoint : IDisposable
{
    private readonly List<SafeTensorsFile> _files;
    private readonly Dictionary<string, SafeTensorsFile> _owner;

    private Checkpoint(List<SafeTensorsFile> files, Dictionary<string, SafeTensorsFile> owner) => (_files, _owner) = (files, owner);

    public IEnumerable<string> Names => _owner.Keys;
    public SafeTensorEntry Entry(string name) => _owner[name].Entries[name];
    public bool Contains(string name) => _owner.ContainsKey(name);
    public Tensor Read(string name) => _owner[name].Read(name);

    public static Checkpoint Open(string dir)
    {
        if (!Directory.Exists(dir)) throw new R1SharpException($"model directory not found: {dir}");
        var index = Path.Combine(dir, "model.safetensors.index.json");
        var single = Path.Combine(dir, "model.safetensors");
        var files = new List<SafeTensorsFile>();
        var owner = new Dictionary<string, SafeTensorsFile>();
        try
        {
            if (File.Exists(index))
            {
                var weightMap = ReadWeightMap(index);
                foreach (var shard in weightMap.Values.Distinct().Order())
                {
                    // Shards are plain file names in the folder: never a path that climbs out of it or leaves it.
                    if (shard.Length == 0 || shard != Path.GetFileName(shard) || shard is "." or ".." || shard.Contains('\\') || !shard.EndsWith(".safetensors", StringComparison.Ordinal))
                        throw new R1SharpException($"{index}: shard '{shard}' is not a .safetensors file name in the model folder");
                    var file = SafeTensorsFile.Open(Path.Combine(dir, shard));
                    files.Add(file);
                    foreach (var name in file.Entries.Keys)
                        if (!owner.TryAdd(name, file)) throw new R1SharpException($"{index}: tensor '{name}' is stored in more than one shard");
                }
                foreach (var (name, shard) in weightMap)
                    if (!owner.TryGetValue(name, out var file) || System.IO.Path.GetFileName(file.Path) != shard)
                        throw new R1SharpException($"{index}: tensor '{name}' is not in {shard}");
            }
            else if (File.Exists(single))
            {
                var file = SafeTensorsFile.Open(single);
                files.Add(file);
                foreach (var name in file.Entries.Keys) owner[name] = file;
            }
            else
            {
                throw new R1SharpException($"{dir}: no model.safetensors or model.safetensors.index.json");
            }
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
        return new Checkpoint(files, owner);
    }

    private static Dictionary<string, string> ReadWeightMap(string index)
    {
        try
        {
            using var doc = JsonDocument.Parse(InputFile.ReadText(index, 64 << 20));
            return doc.RootElement.GetProperty("weight_map").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? "");
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new R1SharpException($"{index}: not a valid safetensors index (needs a weight_map object)");
        }
    }

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }
}
