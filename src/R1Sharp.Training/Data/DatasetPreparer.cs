using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Tokenization;
using R1Sharp.Training.Tasks;

namespace R1Sharp.Training.Data;

/// `prepare`: turns text files, JSONL `{"text":…}` and chat JSONL `{"messages":[…]}` (or the built-in
/// task generators) into token shards: `train.tokens`/`val.tokens` (int32), `*.mask` (uint8 loss
/// mask), `*.docs` (int64 document starts) and `index.json`. Documents are shuffled deterministically
/// and split by document.
public static class DatasetPreparer
{
    public const string IndexFile = "index.json";

    public static IEnumerable<Document> ReadFile(string path)
    {
        if (!File.Exists(path)) throw new R1SharpException($"data file not found: {path}");
        if (!path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) && !path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            yield return Document.FromText(File.ReadAllText(path));
            yield break;
        }
        var number = 0;
        foreach (var line in File.ReadLines(path))
        {
            number++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            yield return ParseLine(path, number, line);
        }
    }

    private static Document ParseLine(string path, int number, string line)
    {
        try
        {
            var node = JsonNode.Parse(line) as JsonObject ?? throw new R1SharpException("");
            if (node["text"] is JsonValue text) return Document.FromText(text.GetValue<string>());
            if (node["messages"] is JsonArray messages)
                return Document.FromMessages(messages.Select(m => ((string)m!["role"]!, (string)m["content"]!)).ToList());
            throw new R1SharpException("");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException or R1SharpException { Message: "" })
        {
            throw new R1SharpException($"{path}:{number}: expected {{\"text\":…}} or {{\"messages\":[{{\"role\":…,\"content\":…}}]}}");
        }
    }

    /// Built-in corpus: chat examples whose assistant turn is `<think>trace</think><answer>…</answer>`.
    public static IEnumerable<Document> Builtin(string task, int count, int difficulty, int seed)
    {
        var generator = VerifiableTasks.Create(task, difficulty);
        var random = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            var p = generator.Generate(random);
            yield return Document.FromMessages([("user", p.Prompt), ("assistant", p.Completion)]);
        }
    }

    public static JsonObject Write(IEnumerable<Document> documents, string outDir, double validationFraction, int seed, JsonObject? sources = null)
    {
        if (validationFraction is < 0 or >= 1) throw new R1SharpException("validation fraction must be in [0, 1)");
        var all = documents.ToList();
        if (all.Count == 0) throw new R1SharpException("no documents to prepare");
        var random = new Random(seed);
        var order = Enumerable.Range(0, all.Count).OrderBy(_ => random.Next()).ToArray();
        var validationCount = validationFraction == 0 ? 0 : Math.Max(1, (int)Math.Round(all.Count * validationFraction));
        Directory.CreateDirectory(outDir);
        var index = new JsonObject
        {
            ["format"] = "r1sharp-tokens-v1",
            ["tokenizer"] = "byte-level",
            ["vocab_size"] = ByteTokenizer.VocabSize,
            ["seed"] = seed,
            ["sources"] = sources ?? new JsonObject(),
            ["splits"] = new JsonObject
            {
                ["train"] = WriteSplit(outDir, "train", order.Skip(validationCount).Select(i => all[i])),
                ["val"] = WriteSplit(outDir, "val", order.Take(validationCount).Select(i => all[i])),
            },
        };
        ByteTokenizer.Instance.Save(outDir);
        AtomicFile.WriteAllText(Path.Combine(outDir, IndexFile), index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        return index;
    }

    private static JsonObject WriteSplit(string dir, string split, IEnumerable<Document> documents)
    {
        long tokens = 0, learned = 0;
        var starts = new List<long>();
        AtomicFile.Write(Path.Combine(dir, split + ".tokens"), tokensPath =>
        AtomicFile.Write(Path.Combine(dir, split + ".mask"), maskPath =>
        {
            using var tokenStream = new BinaryWriter(File.Create(tokensPath));
            using var maskStream = File.Create(maskPath);
            foreach (var d in documents)
            {
                starts.Add(tokens);
                foreach (var t in d.Tokens) tokenStream.Write(t);
                maskStream.Write(d.LossMask);
                tokens += d.Tokens.Length;
                learned += d.LossMask.Count(m => m != 0);
            }
        }));
        AtomicFile.Write(Path.Combine(dir, split + ".docs"), path =>
        {
            using var writer = new BinaryWriter(File.Create(path));
            foreach (var s in starts) writer.Write(s);
        });
        return new JsonObject { ["documents"] = starts.Count, ["tokens"] = tokens, ["loss_tokens"] = learned };
    }
}
