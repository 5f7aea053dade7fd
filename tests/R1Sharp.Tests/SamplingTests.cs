using R1Sharp.Generation;
using static TorchSharp.torch;

namespace R1Sharp.Tests;

/// Batched sampling with per-row options against a plain per-row reference of transformers' warpers.
public class SamplingTests
{
    private static readonly double[] Logits = [2.0, 1.5, 1.2, 0.3, 0.1, -0.5, -1.0, -3.0];

    /// Reference: temperature, top-k, top-p, min-p applied in turn on doubles; returns the kept distribution.
    private static double[] Reference(SamplingOptions o)
    {
        var scaled = Logits.Select(l => l / o.Temperature).ToArray();
        var order = Enumerable.Range(0, scaled.Length).OrderByDescending(i => scaled[i]).ToArray();
        var keep = new bool[scaled.Length];
        for (int rank = 0; rank < order.Length; rank++) keep[order[rank]] = o.TopK <= 0 || rank < o.TopK;
        double[] Softmax() { var e = scaled.Select((l, i) => keep[i] ? Math.Exp(l) : 0).ToArray(); var s = e.Sum(); return e.Select(x => x / s).ToArray(); }
        var p = Softmax();
        double cumulative = 0;
        foreach (var i in order) { if (cumulative >= o.TopP) keep[i] = false; cumulative += p[i]; }
        p = Softmax();
        var top = p.Max();
        for (int i = 0; i < p.Length; i++) if (p[i] < top * o.MinP) keep[i] = false;
        return Softmax();
    }

    [Fact]
    public void EachRowFollowsItsOwnOptions()
    {
        SamplingOptions[] options =
        [
            new() { Temperature = 0 },
            new() { Temperature = 1.0, TopK = 3 },
            new() { Temperature = 0.7, TopP = 0.6 },
            new() { Temperature = 1.3, MinP = 0.15 },
            new() { Temperature = 1.0, TopK = 5, TopP = 0.9, MinP = 0.05 },
        ];
        using var scope = NewDisposeScope();
        var logits = tensor(Logits).to_type(ScalarType.Float32).unsqueeze(0).expand(options.Length, -1).contiguous();
        var rows = options.Select(o => new SamplingRow(o, null, [], [])).ToList();
        var counts = new int[options.Length, Logits.Length];
        var generator = new Generator(1);
        const int draws = 4000;
        for (int d = 0; d < draws; d++)
        {
            var ids = BatchSampler.Sample(logits, rows, generator);
            for (int r = 0; r < ids.Length; r++) counts[r, ids[r]]++;
        }
        Assert.Equal(draws, counts[0, 0]);                                   // greedy row: always the argmax
        for (int r = 1; r < options.Length; r++)
        {
            var expected = Reference(options[r]);
            for (int i = 0; i < Logits.Length; i++)
            {
                var observed = counts[r, i] / (double)draws;
                if (expected[i] == 0) Assert.True(counts[r, i] == 0, $"row {r} drew filtered token {i}");
                else Assert.True(Math.Abs(observed - expected[i]) < 0.03, $"row {r} token {i}: observed {observed:F3}, expected {expected[i]:F3}");
            }
        }
    }

    [Fact]
    public void TheCandidateWindowGivesTheFullVocabularysDistribution()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(3);
        var logits = (randn([6, 300], generator: generator) * 3).to_type(ScalarType.Float32);
        SamplingOptions[] options =
        [
            new() { Temperature = 1.0, TopK = 7 },
            new() { Temperature = 0.6, TopP = 0.3 },
            new() { Temperature = 1.0, MinP = 0.2 },
            new() { Temperature = 0.9, TopK = 12, TopP = 0.8, MinP = 0.01 },
            new() { Temperature = 0 },
            new() { Temperature = 2.0, TopP = 0.999 },      // the nucleus reaches beyond 16 tokens: the whole vocabulary is sorted
        ];
        static Tensor Dense((Tensor Probabilities, Tensor? Candidates) d, long vocab) =>
            d.Candidates is null ? d.Probabilities : zeros(d.Probabilities.shape[0], vocab).scatter(1, d.Candidates, d.Probabilities);
        foreach (var set in new[] { options[..5], options })
        {
            var rows = set.Select(o => new SamplingRow(o, null, [], [])).ToList();
            var window = BatchSampler.Distribution(logits[..set.Length], rows, window: 16);
            Assert.Equal(set.Length == 5, window.Candidates is not null);
            var full = BatchSampler.Distribution(logits[..set.Length], rows, window: 300);
            Assert.Null(full.Candidates);
            var sampled = tensor(Enumerable.Range(0, set.Length).Where(i => !set[i].Greedy).Select(i => (long)i).ToArray());   // a greedy row never samples
            Numerics.AssertClose(full.Probabilities.index_select(0, sampled), Dense(window, 300).index_select(0, sampled), 1e-6, "window vs whole vocabulary");
        }
        // Without truncation there is nothing to sort: the softmax of the scaled logits.
        var plain = BatchSampler.Distribution(logits, Enumerable.Repeat(new SamplingRow(new SamplingOptions { Temperature = 0.5 }, null, [], []), 6).ToList(), window: 16);
        Assert.Null(plain.Candidates);
        Numerics.AssertClose((logits / 0.5).softmax(-1), plain.Probabilities, 1e-6, "softmax");
    }

    [Fact]
    public void SeededRowsAreReproducibleWhateverTheirNeighbours()
    {
        using var scope = NewDisposeScope();
        var options = new SamplingOptions { Temperature = 1.5 };
        var alone = new List<long>();
        var batched = new List<long>();
        var (ownAlone, ownBatched) = (new Generator(42), new Generator(42));
        for (int step = 0; step < 50; step++)
        {
            var one = tensor(Logits).to_type(ScalarType.Float32).unsqueeze(0);
            alone.Add(BatchSampler.Sample(one, [new SamplingRow(options, ownAlone, [], [])], new Generator(7))[0]);
            var three = one.expand(3, -1).contiguous();
            var rows = new List<SamplingRow> { new(options, null, [], []), new(options, ownBatched, [], []), new(new SamplingOptions { Temperature = 0 }, null, [], []) };
            batched.Add(BatchSampler.Sample(three, rows, new Generator((ulong)step))[1]);
        }
        Assert.Equal(alone, batched);
    }

    [Fact]
    public void PenaltiesMatchTheirDefinitions()
    {
        using var scope = NewDisposeScope();
        var logits = tensor(Logits).to_type(ScalarType.Float32).unsqueeze(0);
        // frequency 0.4 x 2 occurrences + presence 0.1 moves token 0 from 2.0 to 1.1, below token 1 (1.5) and 2 (1.2).
        var penalised = new SamplingOptions { Temperature = 0, FrequencyPenalty = 0.4, PresencePenalty = 0.1 };
        Assert.Equal(1, BatchSampler.Sample(logits, [new SamplingRow(penalised, null, [0, 0], [0, 0])], new Generator(0))[0]);
        // repetition penalty 2 (transformers): 2.0 -> 1.0 and 1.5 -> 0.75, so token 2 (1.2) wins.
        var repetition = new SamplingOptions { Temperature = 0, RepetitionPenalty = 2 };
        Assert.Equal(2, BatchSampler.Sample(logits, [new SamplingRow(repetition, null, [0, 1], [])], new Generator(0))[0]);
        Assert.Contains("presence_penalty", Assert.Throws<R1SharpException>(() => new SamplingOptions { PresencePenalty = 3 }.Validate()).Message);
    }
}
