using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Tokenization;
using R1Sharp.Training.Tasks;

namespace R1Sharp.Training.Data;

/// `prepare`: turns text files, JSONL `{"text":…}`, chat JSONL `{"messages":[…]}` and
/// `{"prompt":…,"completion":…}` (or the built-in task generators), tokenised by a `DocumentEncoder`
/// (R1Sharp's byte tokenizer or a model folder's own), into token shards: `train.tokens`/`val.tokens` (int32), `*.mask` (uint8 loss
/// mask), `*.docs` (int64 document starts) and `index.json`. Documents are shuffled deterministically
/// and split by document.
public static class DatasetPreparer
{
    public const string IndexFile = "index.json";

    public static IEnumerable<Document> ReadFile(string path, DocumentEncoder encoder)
    {
        if (!File.Exists(path)) throw new R1SharpException($"data file not found: {path}");
        if (!path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) && !path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            yield return encoder.FromText(File.ReadAllText(path));
            yield break;
        }
        var number = 0;
        foreach (var line in File.ReadLines(path))
        {
            number++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            foreach (var d in ParseLine(path, number, line, encoder)) yield return d;
        }
    }

    private static IEnumerable<Document> ParseLine(string path, int number, string line, DocumentEncoder encoder)
    {
        var where = $"{path}:{number}";
        JsonObject? node = null;
        try { node = JsonNode.Parse(line) as JsonObject; } catch (JsonException) { }
        static string? Str(JsonNode? n) => n is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
        if (node is null) throw new R1SharpException($"{where}: not a JSON object");
        if (Str(node["text"]) is { } text) return [encoder.FromText(text)];
        if (node["messages"] is JsonArray messages) return encoder.FromMessages(messages, where).ToList();
        if (Str(node["prompt"]) is { } prompt && Str(node["completion"]) is { } completion) return encoder.FromPromptCompletion(prompt, completion, where).ToList();
        throw new R1SharpException($"{where}: expected {{\"text\":…}}, {{\"messages\":[{{\"role\":…,\"content\":…}}]}} or {{\"prompt\":…,\"completion\":…}}");
    }

    /// Built-in corpus: chat examples whose assistant turn is `<think>trace</think><answer>…</answer>`.
    public static IEnumerable<Document> Builtin(string task, int count, int difficulty, int seed, DocumentEncoder encoder)
    {
        var generator = VerifiableTasks.Create(task, difficulty);
        var random = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            var p = generator.Generate(random);
            foreach (var d in encoder.FromPromptCompletion(p.Prompt, p.Completion, $"built-in {task}")) yield return d;
        }
    }

    public static JsonObject Write(IEnumerable<Document> documents, string outDir, double validationFraction, int seed, DocumentEncoder encoder, JsonObject? sources = null)
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
            ["tokenizer"] = encoder.Identity,
            ["vocab_size"] = encoder.VocabSize,
            ["seed"] = seed,
            ["sources"] = sources ?? new JsonObject(),
            ["splits"] = new JsonObject
            {
                ["train"] = WriteSplit(outDir, "train", order.Skip(validationCount).Select(i => all[i])),
                ["val"] = WriteSplit(outDir, "val", order.Take(validationCount).Select(i => all[i])),
            },
        };
        encoder.SaveTokenizer(outDir);
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
