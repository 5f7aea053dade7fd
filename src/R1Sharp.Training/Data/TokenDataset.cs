using System.IO.MemoryMappedFiles;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace R1Sharp.Training.Data;

/// One split of a prepared dataset, memory-mapped. Training windows are packed: a window of L+1
/// consecutive tokens may span documents (separated by <|eos|>/<|bos|>). Which windows a step sees
/// depends only on (seed, step), so a resumed run sees exactly the data it would have seen.
public sealed class TokenDataset : IDisposable
{
    private readonly MemoryMappedFile _tokens, _mask;
    private readonly MemoryMappedViewAccessor _tokenView, _maskView;

    public string Directory { get; }
    public string Split { get; }
    public long Length { get; }

    private TokenDataset(string dir, string split)
    {
        (Directory, Split) = (dir, split);
        var tokens = Path.Combine(dir, split + ".tokens");
        var mask = Path.Combine(dir, split + ".mask");
        if (!File.Exists(Path.Combine(dir, DatasetPreparer.IndexFile)) || !File.Exists(tokens) || !File.Exists(mask))
            throw new R1SharpException($"{dir}: not a prepared dataset (run `r1sharp prepare` first)");
        Length = new FileInfo(tokens).Length / 4;
        if (new FileInfo(mask).Length != Length) throw new R1SharpException($"{dir}: {split}.tokens and {split}.mask disagree in length");
        if (Length == 0) throw new R1SharpException($"{dir}: the {split} split is empty");
        _tokens = MemoryMappedFile.CreateFromFile(tokens, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        _mask = MemoryMappedFile.CreateFromFile(mask, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        _tokenView = _tokens.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        _maskView = _mask.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
    }

    public static TokenDataset Open(string dir, string split) => new(dir, split);

    public static JsonObject ReadIndex(string dir)
    {
        var path = Path.Combine(dir, DatasetPreparer.IndexFile);
        if (!File.Exists(path)) throw new R1SharpException($"{dir}: not a prepared dataset (run `r1sharp prepare` first)");
        return JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new R1SharpException($"{path}: not a JSON object");
    }

    /// Copies `length` tokens (and mask bytes) starting at `start`; positions past the end wrap around.
    public (int[] Tokens, byte[] Mask) Read(long start, int length)
    {
        var tokens = new int[length];
        var mask = new byte[length];
        int done = 0;
        while (done < length)
        {
            var at = (start + done) % Length;
            var count = (int)Math.Min(length - done, Length - at);
            _tokenView.ReadArray(at * 4, tokens, done, count);
            _maskView.ReadArray(at, mask, done, count);
            done += count;
        }
        return (tokens, mask);
    }

    /// A batch of `rows` windows of `length` tokens at seeded random starts: ([rows, length] int64, [rows, length] uint8).
    public (Tensor Tokens, Tensor Mask) Sample(int rows, int length, Random random) =>
        Windows(Enumerable.Range(0, rows).Select(_ => random.NextInt64(Length)).ToList(), length);

    /// Consecutive non-overlapping windows from the start, for evaluation.
    public IEnumerable<(Tensor Tokens, Tensor Mask)> Sequential(int rows, int length, int maxBatches)
    {
        long position = 0;
        for (int b = 0; b < maxBatches && position + length <= Length; b++)
        {
            var count = (int)Math.Min(rows, (Length - position) / length);
            var starts = Enumerable.Range(0, count).Select(r => position + (long)r * length).ToList();
            position += (long)count * length;
            yield return Windows(starts, length);
        }
    }

    private (Tensor Tokens, Tensor Mask) Windows(IReadOnlyList<long> starts, int length)
    {
        var tokens = new long[starts.Count * length];
        var mask = new byte[starts.Count * length];
        for (int r = 0; r < starts.Count; r++)
        {
            var (t, m) = Read(starts[r], length);
            Array.Copy(t, 0, tokens, r * length, length);
            Array.Copy(m, 0, mask, r * length, length);
        }
        return (tensor(tokens).view(starts.Count, length), tensor(mask).view(starts.Count, length));
    }

    public void Dispose()
    {
        _tokenView.Dispose();
        _maskView.Dispose();
        _tokens.Dispose();
        _mask.Dispose();
    }
}
