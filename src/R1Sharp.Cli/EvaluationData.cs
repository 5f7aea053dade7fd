using System.Text.Json;
using R1Sharp;

namespace R1Sharp.Cli;

/// Token-id sequences for evaluations: from a file, or seeded random ones.
public static class EvaluationData
{
    /// JSONL lines {"ids":[…]}, or lines of comma-separated ids; blank lines are skipped.
    public static List<long[]> Read(string path)
    {
        if (!File.Exists(path)) throw new R1SharpException($"data file not found: {path}");
        var sequences = new List<long[]>();
        var number = 0;
        foreach (var line in File.ReadLines(path))
        {
            number++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                sequences.Add(line.TrimStart().StartsWith('{')
                    ? JsonDocument.Parse(line).RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt64()).ToArray()
                    : CommandRunner.ParseIds(line));
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or R1SharpException)
            {
                throw new R1SharpException($"{path}:{number}: expected {{\"ids\":[…]}} or comma-separated token ids");
            }
        }
        if (sequences.Count == 0) throw new R1SharpException($"{path}: no sequences");
        return sequences;
    }

    public static List<long[]> Random(int vocab, int length, int count, int seed = 0)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, length).Select(_ => (long)random.Next(vocab)).ToArray()).ToList();
    }
}
