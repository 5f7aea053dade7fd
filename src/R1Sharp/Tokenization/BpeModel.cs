namespace R1Sharp.Tokenization;

/// The BPE model of a tokenizer.json: a vocabulary and ranked merges. A piece is merged as Hugging
/// Face's tokenizers library does it (`Word::merge_all`): symbols in a linked list, candidate pairs in
/// a priority queue by (rank, position), stale entries skipped when popped, so a piece of n symbols
/// takes O(n log n) however long it is.
public sealed class BpeModel
{
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabBySpan;
    private readonly Dictionary<long, (int Rank, int Id)> _merges;
    private readonly int? _unknown;

    public BpeModel(Dictionary<string, int> vocab, IReadOnlyList<(string Left, string Right)> merges, string? unknownToken, string source)
    {
        _vocab = vocab;
        _vocabBySpan = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        _merges = new Dictionary<long, (int, int)>(merges.Count, MixedHash.Instance);
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (left, right) = merges[rank];
            if (!vocab.TryGetValue(left, out var a) || !vocab.TryGetValue(right, out var b) || !vocab.TryGetValue(left + right, out var merged))
                throw new R1SharpException($"{source}: merge {rank} ('{left}' '{right}') uses or makes a token that is not in the vocabulary");
            _merges.TryAdd(Pair(a, b), (rank, merged));   // as the Rust library, the first occurrence of a pair ranks
        }
        _unknown = unknownToken is not null && vocab.TryGetValue(unknownToken, out var unk) ? unk : null;
    }

    public bool TryGetWhole(ReadOnlySpan<char> piece, out int id) => _vocabBySpan.TryGetValue(piece, out id);

    private static long Pair(int left, int right) => (long)left << 32 | (uint)right;

    /// long's own hash folds the halves with xor, so every pair (a, a) would collide: mix instead.
    private sealed class MixedHash : IEqualityComparer<long>
    {
        public static readonly MixedHash Instance = new();
        public bool Equals(long x, long y) => x == y;
        public int GetHashCode(long pair) => (int)((ulong)pair * 0x9E3779B97F4A7C15UL >> 32);
    }

    /// Appends the ids of one pre-tokenized, byte-mapped piece. (Optimised at first call: a long piece
    /// would otherwise run in unoptimised code for its whole length.)
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public void Encode(ReadOnlySpan<char> piece, List<int> output)
    {
        var n = piece.Length;
        var ids = new int[n];
        var next = new int[n];
        var previous = new int[n];
        var alive = new bool[n];
        int count = 0;
        for (int i = 0; i < n; i++)
        {
            // A character outside the vocabulary becomes the unknown token, or nothing without one (as the Rust library).
            if (!_vocabBySpan.TryGetValue(piece.Slice(i, 1), out var id))
            {
                if (_unknown is not int unk) continue;
                id = unk;
            }
            ids[count] = id;
            previous[count] = count - 1;
            next[count] = count + 1;
            alive[count] = true;
            count++;
        }
        if (count == 0) return;
        next[count - 1] = -1;

        var queue = new PriorityQueue<(int Position, int Id), (int Rank, int Position)>();
        for (int i = 0; i + 1 < count; i++)
            if (_merges.TryGetValue(Pair(ids[i], ids[i + 1]), out var m)) queue.Enqueue((i, m.Id), (m.Rank, i));
        while (queue.TryDequeue(out var top, out var priority))
        {
            var at = top.Position;
            if (!alive[at] || next[at] < 0) continue;
            var right = next[at];
            if (!_merges.TryGetValue(Pair(ids[at], ids[right]), out var current) || current.Id != top.Id || current.Rank != priority.Rank) continue;
            ids[at] = top.Id;
            alive[right] = false;
            next[at] = next[right];
            if (next[at] >= 0) previous[next[at]] = at;
            if (previous[at] >= 0 && _merges.TryGetValue(Pair(ids[previous[at]], ids[at]), out var left))
                queue.Enqueue((previous[at], left.Id), (left.Rank, previous[at]));
            if (next[at] >= 0 && _merges.TryGetValue(Pair(ids[at], ids[next[at]]), out var after))
                queue.Enqueue((at, after.Id), (after.Rank, at));
        }
        for (int i = 0; i >= 0; i = next[i]) output.Add(ids[i]);
    }
}
