using System.Diagnostics;
using R1Sharp.Checkpoints;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Diagnostics;

/// Loads one model in several weight formats and measures each: bytes of the weights in memory, the
/// process's peak resident memory, cached decode tokens/s, and the accuracy cost against float32
/// (max and mean |Δlogit|, and the perplexity on the evaluation sequences).
public static class QuantBenchmark
{
    public sealed record Row(string Format, long WeightBytes, long ProcessPeakBytes, double DecodeTokensPerSecond,
        double MaxAbsLogitDiff, double MeanAbsLogitDiff, double Perplexity, double PerplexityChange);

    /// The first format is the reference. Formats run from the smallest weights to the largest, so the
    /// process peak read after each one is that format's peak (freed memory is reused, not returned).
    public static IReadOnlyList<Row> Run(string dir, IReadOnlyList<long[]> sequences, IReadOnlyList<WeightFormat> formats, int decodeSteps = 32)
    {
        if (formats.Count == 0) throw new R1SharpException("no formats to compare");
        if (sequences.Count == 0 || sequences.Any(s => s.Length < 2)) throw new R1SharpException("evaluation sequences need at least 2 tokens each");
        var measured = new Dictionary<WeightFormat, (long Bytes, long Peak, double Speed, List<Tensor> Logits)>();
        foreach (var format in formats.Distinct().OrderBy(BytesPerWeight))
        {
            using var model = ModelIO.Load(dir, format);
            var weightBytes = model.state_dict().Values.Sum(t => t.NumberOfElements * t.ElementSize);
            var logits = Evaluate(model, sequences);
            var speed = DecodeSpeed.TokensPerSecond(model, sequences[0], decodeSteps);
            measured[format] = (weightBytes, PeakResidentBytes(), speed, logits);
        }
        var reference = measured[formats[0]];
        var referencePerplexity = Perplexity(reference.Logits, sequences);
        var rows = formats.Distinct().Select(format =>
        {
            using var scope = NewDisposeScope();
            var m = measured[format];
            var diff = cat(m.Logits.Zip(reference.Logits, (a, b) => (a - b).abs().flatten()).ToList(), 0);
            var perplexity = Perplexity(m.Logits, sequences);
            return new Row(format.ToString().ToLowerInvariant(), m.Bytes, m.Peak, m.Speed,
                diff.max().item<float>(), diff.mean().item<float>(), perplexity, perplexity - referencePerplexity);
        }).ToList();
        foreach (var t in measured.Values.SelectMany(m => m.Logits)) t.Dispose();
        return rows;
    }

    private static double BytesPerWeight(WeightFormat format) => format switch
    {
        WeightFormat.Int4 => 0.5,
        WeightFormat.Fp8 or WeightFormat.Int8 => 1,
        WeightFormat.Bf16 => 2,
        _ => 4,
    };

    private static List<Tensor> Evaluate(CausalLM model, IReadOnlyList<long[]> sequences)
    {
        using var noGrad = no_grad();
        return sequences.Select(s =>
        {
            using var scope = NewDisposeScope();
            return model.Forward(tensor(s).unsqueeze(0))[0].MoveToOuterDisposeScope();
        }).ToList();
    }

    /// exp(mean next-token negative log-likelihood) over all sequences.
    private static double Perplexity(List<Tensor> logits, IReadOnlyList<long[]> sequences)
    {
        using var scope = NewDisposeScope();
        var losses = logits.Zip(sequences, (l, s) =>
            nn.functional.cross_entropy(l.narrow(0, 0, s.Length - 1), tensor(s[1..]), reduction: nn.Reduction.Sum)).ToList();
        var tokens = sequences.Sum(s => s.Length - 1);
        return Math.Exp(stack(losses).sum().item<float>() / tokens);
    }

    /// VmHWM: the process's peak resident set.
    public static long PeakResidentBytes() => ProcStatus("VmHWM:");

    private static long ProcStatus(string key)
    {
        const string path = "/proc/self/status";
        if (!File.Exists(path)) return 0;
        var line = File.ReadLines(path).FirstOrDefault(l => l.StartsWith(key));
        return line is null ? 0 : long.Parse(line[key.Length..].Trim().Split(' ')[0]) * 1024;
    }
}
